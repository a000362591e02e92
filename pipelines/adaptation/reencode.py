"""Re-encoding a site's sightings with a new model version (issue 31): every sighting the current model encoded is
cut again from its source footage and encoded by the new version, a batch at a time, each batch committed on its
own. A run that stops (Ctrl-C, kill -9, a full disk) loses at most the batch in flight; the next run asks the
database what is still missing and encodes only that, so no sighting is encoded twice or missed."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from common.errors import InputVideoError
from models.encoders import ReIDEncoder
from pipelines.adaptation.crops import cut_crops
from storage.database import Database
from storage.model_versions import add_embeddings, pending_sightings, videos_to_encode

log = logging.getLogger(__name__)

#: Sightings encoded and committed together (one transaction each).
BATCH = 256


@dataclass
class ReencodeReport:
    """What :func:`reencode_site` did.

    Attributes:
        encoded: embeddings stored by this run. already: sightings the target had before this run.
        total: sightings of the source model. unreadable: ``{video path: sightings}`` that could not be cut
            (the file is missing or cannot be opened, or the frame is gone). stopped: the run was asked to stop.
        seconds: wall time.
    """

    encoded: int = 0
    already: int = 0
    total: int = 0
    unreadable: dict[str, int] = field(default_factory=dict)
    stopped: bool = False
    seconds: float = 0.0

    @property
    def complete(self) -> bool:
        """Every sighting of the source model has an embedding of the target."""
        return not self.stopped and self.already + self.encoded >= self.total


def reencode_site(
    db: Database,
    encoder: ReIDEncoder,
    source_model: int,
    target_model: int,
    progress: Callable[[int, int], None] = lambda done, total: None,
    stop: Callable[[], bool] = lambda: False,
) -> ReencodeReport:
    """Encode with ``encoder`` (the model ``target_model``) every sighting ``source_model`` encoded and it has not.

    Args:
        progress: called with (sightings the target has, sightings in all) after every batch.
        stop: polled between batches; True ends the run after the batch in flight was committed.

    Returns:
        A :class:`ReencodeReport`; :attr:`ReencodeReport.complete` says whether the target may be made current.
    """
    started = time.perf_counter()
    videos = videos_to_encode(db, source_model, target_model)
    report = ReencodeReport(
        total=sum(v.sightings for v in videos), already=sum(min(v.encoded, v.sightings) for v in videos)
    )
    done = report.already
    progress(done, report.total)
    for video in videos:
        if video.encoded >= video.sightings:
            continue
        pending = pending_sightings(db, video.id, source_model, target_model)
        if not pending:
            continue
        batch_ids, batch_crops, batch_boxes = [], [], []
        cut = 0

        def flush() -> None:
            nonlocal done
            if not batch_ids:
                return
            vectors = encoder.encode(batch_crops, np.stack(batch_boxes))
            stored = add_embeddings(db, target_model, list(zip(batch_ids, vectors)))
            report.encoded += stored
            done += stored
            batch_ids.clear(), batch_crops.clear(), batch_boxes.clear()
            progress(done, report.total)

        try:
            for crop in cut_crops(video.path, pending):
                batch_ids.append(crop.sighting.id)
                batch_crops.append(crop.image)
                batch_boxes.append(crop.part_boxes(encoder.num_parts))
                cut += 1
                if len(batch_ids) >= BATCH:
                    flush()
                    if stop():
                        report.stopped = True
                        break
            else:
                flush()
        except InputVideoError as exc:
            log.warning("%s", exc)
        if len(pending) > cut and not report.stopped:
            report.unreadable[video.path] = len(pending) - cut
        if report.stopped or stop():
            report.stopped = True
            break
    report.seconds = time.perf_counter() - started
    return report
