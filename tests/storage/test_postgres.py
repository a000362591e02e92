"""PostgreSQL as the database: a real PostgreSQL 15 server (``tests/postgres.py``), the same schema, and the real
ingest, search, identities, feedback, watchlist and retention giving the same results as on SQLite."""

from __future__ import annotations

import pytest
from sqlalchemy import func, select, text

from storage.database import open_database
from storage.reads import count_rows
from storage.schema import SCHEMA_VERSION, Camera, Track
from tests.conftest import LAB, copy_db, real_weights_args, run_cli


def test_a_new_postgresql_database_gets_the_schema_and_is_opened_again(pg_url):
    db = open_database(pg_url)
    assert db.engine.dialect.name == "postgresql" and db.path is None
    with db.engine.connect() as con:
        meta = dict(con.execute(text("SELECT key, value FROM reid_meta")).all())
    assert meta == {"app": "reid-app", "schema_version": str(SCHEMA_VERSION)}
    assert count_rows(db) == {"cameras": 0, "videos": 0, "tracks": 0, "sightings": 0, "embeddings": 0}
    db.close()
    again = open_database(pg_url, create=False)
    assert again.url == pg_url and again.location == "postgresql://***@" + pg_url.split("@", 1)[1]
    with again.engine.begin() as con:
        con.execute(text(f"UPDATE reid_meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'"))
    again.close()
    refused = run_cli("cameras", "--db", pg_url)
    assert refused.code == 2 and "not a reid-app database of schema" in refused.stderr


def test_an_unreachable_server_is_one_line(postgres_server):
    url = postgres_server.url("nothing_here")
    result = run_cli("cameras", "--db", url)
    assert result.code == 2 and len(result.error_lines) == 1 and "nothing_here" in result.stderr


def _tracks_by_name(db) -> dict[tuple[str, int], int]:
    with db.session() as session:
        return {
            (cam, local): tid
            for tid, cam, local in session.execute(
                select(Track.id, Camera.name, Track.local_track_id).join(Camera, Track.camera_id == Camera.id)
            )
        }


def _search(db_arg, track_id: int) -> list[tuple[str, str, str]]:
    result = run_cli("search", "--db", db_arg, "--track", str(track_id), "--top-k", "5")
    assert result.code == 0, result.stderr
    rows = [line.split("│")[1:-1] for line in result.stdout.splitlines() if line.startswith("│")]
    return [(r[1].strip(), r[3].strip(), r[-2].strip()) for r in rows if r[0].strip()]  # camera, local id, score


@pytest.mark.slow
def test_ingest_search_identities_and_feedback_on_postgresql_match_sqlite(pg_url, lab_db, tmp_path):
    lab_db = copy_db(lab_db, tmp_path)  # searches are audited: the session's shared database stays as made
    ingested = run_cli(
        "ingest", LAB / "cam0.mp4", LAB / "cam1.mp4", "--db", pg_url, "--duration", "4", *real_weights_args()
    )
    assert ingested.code == 0, ingested.stderr
    pg, lite = open_database(pg_url), open_database(lab_db)
    try:
        assert count_rows(pg) == count_rows(lite)
        pg_tracks, lite_tracks = _tracks_by_name(pg), _tracks_by_name(lite)
        assert set(pg_tracks) == set(lite_tracks)
        for name in sorted(pg_tracks)[:3]:
            on_pg, on_lite = _search(pg_url, pg_tracks[name]), _search(lab_db, lite_tracks[name])
            assert [r[:2] for r in on_pg] == [r[:2] for r in on_lite]
            assert all(abs(float(a[2]) - float(b[2])) < 2e-3 for a, b in zip(on_pg, on_lite))

        def members(db, ids):
            by_id = {v: k for k, v in ids.items()}
            with db.session() as session:
                rows = session.execute(text("SELECT identity_id, track_id FROM identity_tracks")).all()
            groups: dict[int, set] = {}
            for identity, track in rows:
                groups.setdefault(identity, set()).add(by_id[track])
            return sorted(map(sorted, groups.values()))

        assert members(pg, pg_tracks) == members(lite, lite_tracks)

        again = run_cli("ingest", LAB / "cam0.mp4", "--db", pg_url, "--duration", "4", *real_weights_args())
        assert again.code == 0 and "already ingested" in again.stdout + again.stderr  # leases and fingerprints
        a, b, c = pg_tracks[("cam0", 1)], pg_tracks[("cam1", 1)], pg_tracks[("cam1", 2)]
        assert run_cli("cameras", "--db", pg_url, "--overlap", "cam0,cam1").code == 0  # the lab views overlap
        for verb, other in (("confirm", b), ("reject", c)):
            given = run_cli("feedback", verb, str(a), str(other), "--db", pg_url)
            assert given.code == 0 and "saved" in given.stdout, given.stderr
        assert run_cli("feedback", "undo", "--db", pg_url).code == 0
        with pg.session() as session:
            verdicts = session.execute(text("SELECT verdict FROM pair_feedback")).scalars().all()
            actions = session.execute(text("SELECT action FROM audit_log ORDER BY id")).scalars().all()
        assert verdicts == ["same"]  # the rejection was undone, the confirmation stands
        assert {"search", "cluster", "overlap", "confirm", "reject", "undo"} <= set(actions)
        watched = run_cli("watchlist", "add", "Visitor", "--track", str(a), "--db", pg_url)
        assert watched.code == 0, watched.stderr
        purge = run_cli("retention", "--db", pg_url, "--older-than", "1s")
        assert purge.code == 0 and "removed 0 video(s)" in purge.stdout  # the lab clips have no start time
        with pg.session() as session:
            assert session.scalar(select(func.count()).select_from(Track)) == len(pg_tracks)
    finally:
        pg.close()
        lite.close()


def _open_and_close(location: str) -> str:
    try:
        open_database(location).close()
        return "ok"
    except Exception as exc:  # noqa: BLE001 - reported to the test
        return f"{type(exc).__name__}: {exc}"


def test_processes_opening_a_new_or_old_database_at_once_all_succeed(pg_url, tmp_path):
    """Creation and migration are serialised: four processes at once on a new PostgreSQL database, then on an
    old-schema SQLite file, all open it; the schema is made once."""
    import multiprocessing

    from tests.conftest import sqlite_execute

    context = multiprocessing.get_context("spawn")
    with context.Pool(4) as pool:
        assert pool.map(_open_and_close, [pg_url] * 4) == ["ok"] * 4
    old = tmp_path / "old.db"
    open_database(old).close()
    sqlite_execute(
        old,
        "DROP TABLE alembic_version",
        "DROP TABLE webhook_outbox",
        "DROP TABLE recorded_files",
        "DROP TABLE alerts",
        "DROP TABLE watchlist",
        "UPDATE reid_meta SET value = '3' WHERE key = 'schema_version'",
    )
    with context.Pool(4) as pool:
        assert pool.map(_open_and_close, [str(old)] * 4) == ["ok"] * 4
    db = open_database(old)
    with db.engine.connect() as con:
        assert con.exec_driver_sql("SELECT value FROM reid_meta WHERE key = 'schema_version'").scalar() == str(
            SCHEMA_VERSION
        )
    db.close()
