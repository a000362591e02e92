"""``reid-app adapt`` end to end on a real lab ingest with the shipped model (issue 31): stopped and resumed, a
version saved beside the database and registered, the held-out check measured, the result loadable by ingest."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from common.errors import UsageError
from pipelines.adaptation.adapt import adapt_site
from pipelines.adaptation.options import AdaptOptions, AdaptProgress
from pipelines.adaptation.versions import list_versions
from storage.database import open_database
from tests.conftest import copy_db

pytestmark = pytest.mark.slow


class _StopAfter(AdaptProgress):
    """Stops training after ``batches`` batches; records the stages seen."""

    def __init__(self, batches: int):
        self.batches, self.stages, self.training = batches, [], False
        self.done = 0

    def stage(self, text, total=None):
        self.stages.append(text)
        self.training = text == "adapting"

    def advance(self, done, fields=None):
        if self.training:
            self.done = done

    def stop(self) -> bool:
        return self.training and self.done >= self.batches


def test_adapt_stops_resumes_and_registers_a_checked_version(lab_default_db, tmp_path):
    path = copy_db(lab_default_db, tmp_path / "db")
    db = open_database(path)
    options = replace(AdaptOptions(), iterations=6, minutes=10)
    first = _StopAfter(2)
    stopped = adapt_site(db, options, first, first.stop)
    assert stopped.stopped and stopped.version_model is None
    assert first.stages[:3] == [
        "reading the site's tracklets",
        "cutting crops from the footage",
        "encoding the crops with the starting model",
    ]
    work = tmp_path / "db" / "lab-default-models"
    assert (next(work.glob("work-from-model-*")) / "train.pt").is_file()
    with pytest.raises(UsageError, match="other tracks, verdicts or settings"):
        adapt_site(db, replace(options, lr=1e-3), resume=True)

    second = _StopAfter(10**6)
    report = adapt_site(db, options, second, lambda: False, resume=True)
    assert not report.stopped and 0 < report.iterations <= options.iterations
    assert "encoding the crops with the starting model" not in second.stages  # its teacher embeddings are reused
    assert report.tracklets >= 4 and report.images >= 2 * report.tracklets
    assert report.before.measured and report.after.measured  # cam0 and cam1 do not overlap: rule pairs held out
    pt, xml = (
        tmp_path / "db" / "lab-default-models" / n
        for n in ("jointloss-osnet0286-cuhk-site1.pt", "jointloss-osnet0286-cuhk-site1.xml")
    )
    assert pt.is_file() and xml.is_file() and not list(work.glob("work-from-model-*"))
    versions = list_versions(db)
    assert [v.id for v in versions][-1] == report.version_model
    made = versions[-1]
    assert made.info["adapted_from"] == versions[0].id and made.info["check_after"]["negatives"] > 0
    assert made.current == (report.made_current is not None and report.made_current.switch is not None)
    if not made.current:
        assert report.not_current_because

    from models.encoders import load_encoder

    encoder = load_encoder(xml)
    vector = encoder.encode([np.full((256, 128, 3), 90, np.uint8)])
    assert vector.shape == (1, encoder.dims) and abs(float(np.linalg.norm(vector)) - 1) < 1e-4
    db.close()
