"""Static false positives: the empty office chair of lab cam0 (motionless for 24.8 s) is tracked and posed by the
detector; it is marked static, kept out of identities and searches, and shown on request."""

from __future__ import annotations

import sqlite3

import pytest

from pipelines.matching.identities import summarise_identities
from pipelines.matching.search import Searcher, SearchFilters, SearchOptions
from pipelines.matching.similarity import make_scorer
from storage.database import open_database
from storage.track_checks import static_track_ids
from tests.conftest import LAB, _require, real_weights_args, run_cli

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def chair_db(tmp_path_factory):
    db = tmp_path_factory.mktemp("chair") / "chair.db"
    result = run_cli("ingest", _require(LAB / "cam0.mp4"), "--db", db, "--fps", "2", *real_weights_args())
    assert result.code == 0, result.stderr
    assert "static track" in result.stdout  # the summary's note
    return db


def _motion(db, track_id):
    con = sqlite3.connect(db)
    try:
        return con.execute(
            "SELECT max(time_s) - min(time_s), max((x1 + x2) / 2) - min((x1 + x2) / 2), "
            "avg(y2 - y1) FROM sightings WHERE track_id = ?",
            (track_id,),
        ).fetchone()
    finally:
        con.close()


def test_the_empty_chair_is_static_and_people_are_not(chair_db):
    db = open_database(chair_db)
    static = static_track_ids(db)
    assert len(static) == 1
    (chair,) = static
    duration, moved, height = _motion(chair_db, chair)
    assert duration > 20 and moved < 0.05 * height
    summaries = summarise_identities(db)
    assert summaries and all(chair not in s.track_ids for s in summaries)
    assert all(len(s.track_ids) for s in summaries)
    people = [t for s in summaries for t in s.track_ids]
    searcher = Searcher(db, make_scorer("exact", "cpu"))
    hidden = searcher.by_track(people[0], SearchOptions(top_k=50))
    assert chair not in [r.track_id for r in hidden]
    shown = searcher.by_track(people[0], SearchOptions(top_k=50), SearchFilters(include_static=True))
    assert chair in [r.track_id for r in shown]
    db.close()


def test_identities_say_how_many_static_tracks_were_left_out(chair_db):
    listing = run_cli("identities", "--db", chair_db)
    assert listing.code == 0 and "1 static track (boxes that never moved" in listing.stdout
