"""Why this match on real footage ingested with the shipped model: each result's part similarities are the
cosines of the stored descriptors' part slices, shown where keypoints show the part, in search, CLI and evidence."""

import json

import numpy as np
import pytest
from sqlalchemy import select

from pipelines.evidence.export import export_identity
from pipelines.matching.identities import cluster_identities
from pipelines.matching.search import Searcher, SearchOptions
from storage.database import open_database
from storage.feedback import set_overlap
from storage.identities import load_identities
from storage.model_registry import model_layout
from storage.schema import Track
from storage.videos import camera_ids_by_name
from tests.conftest import copy_db, run_cli

PART_NAMES = ["head", "upper body", "lower body", "legs"]


@pytest.fixture
def db(lab_default_db, tmp_path):
    database = open_database(copy_db(lab_default_db, tmp_path))
    yield database
    database.close()


def _best_track(db) -> Track:
    with db.session() as s:
        return s.scalars(
            select(Track).where(Track.descriptor.is_not(None)).order_by(Track.num_embeddings.desc())
        ).first()


@pytest.mark.slow
def test_search_results_carry_part_similarities_of_the_descriptor_slices(db):
    query = _best_track(db)
    layout = model_layout(db, query.descriptor_model_id)
    assert [p["name"] for p in layout] == ["global", *PART_NAMES]
    results = Searcher(db).by_track(query.id, SearchOptions(top_k=5, audit=False))
    assert results
    q = np.frombuffer(query.descriptor, "<f4")
    compared = 0
    with db.session() as s:
        for r in results:
            assert [p.name for p in r.parts] == PART_NAMES
            m = np.frombuffer(s.get(Track, r.track_id).descriptor, "<f4")
            for part, spec in zip(r.parts, layout[1:]):
                if part.similarity is None:
                    continue
                a, b = q[spec["start"] : spec["stop"]], m[spec["start"] : spec["stop"]]
                assert part.similarity == pytest.approx(float(a @ b / np.linalg.norm(a) / np.linalg.norm(b)), abs=1e-4)
                compared += 1
    assert compared > 0  # people walking through the lab show their upper body at least


@pytest.mark.slow
def test_cli_search_and_the_evidence_report_say_why(db, tmp_path):
    query = _best_track(db)
    found = run_cli("search", "--db", db.location, "--track", str(query.id), "--top-k", "3")
    assert found.code == 0, found.stderr
    why = found.stdout.split("Why they match")[1].splitlines()[1:]
    assert len(why) == 3 and all(line.strip().startswith(f"{n}. track ") for n, line in enumerate(why, 1))
    assert all(("upper body" in line) and ("legs" in line) for line in why)
    set_overlap(db, camera_ids_by_name(db).values())  # the lab's cameras see the same room at the same time
    cluster_identities(db)
    identity = max(load_identities(db), key=lambda i: len(i.track_ids))
    assert len(identity.track_ids) >= 2
    report = export_identity(db, identity.id, tmp_path / "case")
    tracks = [t for c in json.loads(report.json_path.read_text())["cameras"] for t in c["tracks"]]
    matches = [t["match"] for t in tracks if t["match"]]
    assert sum(m["reference"] for m in matches) == 1
    linked = [m for m in matches if not m["reference"]]
    assert linked and all(m["explanation"] for m in linked)
    assert all({p["name"] for p in m["parts"]} == set(PART_NAMES) for m in linked)
    html = report.html_path.read_text()
    assert "why linked" in html and linked[0]["explanation"].split(",")[0] in html
