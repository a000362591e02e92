"""One process of the multi-process soak (``test_soak.py``): a writer re-ingesting a video in a loop, a reader
reopening the database and searching, or a reviewer rejecting and forgetting pairs, for a bounded time.

Usage: ``python -m tests.reliability.soak_worker writer|searcher|feedback DB SECONDS [VIDEO]``; prints one JSON
line ``{"ok": N, "failed": M, "errors": [...]}`` at the end.
"""

from __future__ import annotations

import json
import random
import sys
import threading
import time


def _cam1_tracks(db) -> list[int]:
    from sqlalchemy import select

    from storage.schema import Camera, Track

    with db.session() as session:
        return list(
            session.scalars(
                select(Track.id)
                .join(Camera, Track.camera_id == Camera.id)
                .where(Camera.name == "cam1", Track.descriptor.is_not(None))
            )
        )


def _writer(path: str, video: str) -> None:
    from common.settings import load_settings
    from pipelines.ingest.files import IngestJob, IngestProgress
    from reid_app.ingest_runner import IngestChoices, prepare_ingest
    from storage.database import open_database
    from tests.conftest import OSNET, POSE_DETECTOR

    prepared = prepare_ingest(
        IngestChoices(detector=str(POSE_DETECTOR), reid=str(OSNET), analysis_fps=2, duration_s=3, force=True),
        load_settings(),
    )

    def once() -> None:
        db = open_database(path)
        try:
            (summary,) = prepared.run(db, [IngestJob(video)], IngestProgress(), threading.Event())
            if summary.status != "done":
                raise RuntimeError(f"ingest {summary.status}: {summary.message}")
        finally:
            db.close()

    return once


def _on_reopened_db(path: str, action):
    """One operation: reopen the database (as the app does on every File > Open), run ``action(db)``, close."""
    from storage.database import open_database

    def once() -> None:
        db = open_database(path, create=False)
        try:
            action(db)
        finally:
            db.close()

    return once


def _searcher(path: str):
    from pipelines.matching.identities import summarise_identities
    from pipelines.matching.search import Searcher
    from pipelines.matching.similarity import make_scorer

    def search(db) -> None:
        results = Searcher(db, make_scorer("exact", "cpu")).by_track(random.choice(_cam1_tracks(db)))
        if not results:
            raise RuntimeError("a search returned nothing")
        summarise_identities(db)

    return _on_reopened_db(path, search)


def _feedback(path: str):
    from pipelines.matching.feedback import forget, reject

    def review(db) -> None:
        a, b = sorted(random.sample(_cam1_tracks(db), 2))
        reject(db, a, b)  # (a confirmation of two people seen at once in cam1 would be refused, rightly)
        forget(db, a, b)

    return _on_reopened_db(path, review)


def main(argv: list[str]) -> None:
    mode, path, seconds = argv[0], argv[1], float(argv[2])
    once = {
        "writer": lambda: _writer(path, argv[3]),
        "searcher": lambda: _searcher(path),
        "feedback": lambda: _feedback(path),
    }[mode]()
    ok, errors = 0, []
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            once()
            ok += 1
        except Exception as exc:  # every failure is counted; the test demands none
            errors.append(f"{type(exc).__name__}: {exc}"[:300])
    print(json.dumps({"ok": ok, "failed": len(errors), "errors": errors[:10]}))


if __name__ == "__main__":
    main(sys.argv[1:])
