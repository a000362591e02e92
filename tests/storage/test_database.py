import hashlib

import pytest

from common.errors import DatabaseError
from storage.database import HEAD_REVISION, integrity_problems, open_database
from storage.schema import SCHEMA_VERSION
from tests.conftest import sqlite_execute


def _digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_new_database_uses_wal_foreign_keys_and_records_schema(tmp_path):
    db = open_database(tmp_path / "sub" / "new.db")
    with db.engine.connect() as con:
        assert con.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"
        assert con.exec_driver_sql("PRAGMA foreign_keys").scalar() == 1
        meta = dict(con.exec_driver_sql("SELECT key, value FROM reid_meta").all())
    assert meta == {"app": "reid-app", "schema_version": str(SCHEMA_VERSION)}
    db.close()
    open_database(tmp_path / "sub" / "new.db").close()  # reopening our own database works


def test_database_of_another_program_is_refused_and_left_intact(tmp_path):
    path = tmp_path / "other.db"
    sqlite_execute(
        path, "CREATE TABLE invoices (id INTEGER PRIMARY KEY, amount REAL)", "INSERT INTO invoices VALUES (1, 9.5)"
    )
    before = _digest(path)
    with pytest.raises(DatabaseError, match="another program.*invoices"):
        open_database(path)
    assert _digest(path) == before
    assert not (tmp_path / "other.db-wal").exists()


def test_newer_schema_is_refused(tmp_path):
    path = tmp_path / "future.db"
    open_database(path).close()
    sqlite_execute(path, f"UPDATE reid_meta SET value = '{SCHEMA_VERSION + 1}' WHERE key = 'schema_version'")
    before = _digest(path)
    with pytest.raises(DatabaseError, match="newer"):
        open_database(path)
    assert _digest(path) == before


def test_non_sqlite_file_is_refused(tmp_path):
    path = tmp_path / "notes.db"
    path.write_text("these are my notes, not a database\n")
    with pytest.raises(DatabaseError, match="not a SQLite file"):
        open_database(path)
    assert path.read_text() == "these are my notes, not a database\n"


def test_directory_and_unwritable_locations_are_refused(tmp_path):
    with pytest.raises(DatabaseError, match="is a directory"):
        open_database(tmp_path)
    blocker = tmp_path / "plain-file"
    blocker.write_text("x")
    with pytest.raises(DatabaseError, match="cannot create"):
        open_database(blocker / "reid.db")
    with pytest.raises(DatabaseError, match="cannot create"):
        open_database("/proc/reid-app-test.db")


def test_missing_database_is_an_error_when_not_creating(tmp_path):
    with pytest.raises(DatabaseError, match="does not exist"):
        open_database(tmp_path / "absent.db", create=False)
    assert not (tmp_path / "absent.db").exists()


_SCHEMA_3_COLUMNS = ("owner", "heartbeat_at", "analysed_until_s", "frames_lost")


@pytest.mark.parametrize("old_version", [1, 2, 3])
def test_older_schema_is_upgraded_in_place_keeping_its_rows(tmp_path, old_version):
    """Databases made before Alembic migrations (no ``alembic_version``) of schemas 1-3 are brought to schema 3 in
    place, stamped, then migrated to the newest revision."""
    path = tmp_path / "old.db"
    open_database(path).close()
    dropped_tables = ("alembic_version", "webhook_outbox", "recorded_files", "alerts", "watchlist") + (
        ("identity_tracks", "identities", "pair_feedback", "audit_log", "camera_overlaps") if old_version == 1 else ()
    )
    dropped_columns = (
        []
        if old_version == 3
        else [f"ALTER TABLE videos DROP COLUMN {c}" for c in _SCHEMA_3_COLUMNS]
        + ["ALTER TABLE tracks DROP COLUMN static"]
    )
    sqlite_execute(
        path,
        *dropped_columns,
        "INSERT INTO cameras (id, name, created_at) VALUES (1, 'door', '2026-01-01')",
        "INSERT INTO videos (id, camera_id, path, fingerprint, fps, frame_count, width, height, duration_s,"
        " start_time, analysis_fps, frames_analysed, status, ingested_at) VALUES (1, 1, '/v.mp4', 'f', 10,"
        " 100, 64, 48, 10, 0, 5, 50, 'complete', '2026-01-01')",
        *[f"DROP TABLE {t}" for t in dropped_tables],
        f"UPDATE reid_meta SET value = '{old_version}' WHERE key = 'schema_version'",
    )
    db = open_database(path, create=False)
    with db.engine.connect() as con:
        assert con.exec_driver_sql("SELECT value FROM reid_meta WHERE key = 'schema_version'").scalar() == str(
            SCHEMA_VERSION
        )
        assert con.exec_driver_sql("SELECT name FROM cameras").scalar() == "door"
        assert con.exec_driver_sql("SELECT count(*) FROM identities").scalar() == 0
        row = con.exec_driver_sql(
            "SELECT status, frames_analysed, owner, analysed_until_s, frames_lost FROM videos"
        ).one()
    assert tuple(row) == ("complete", 50, None, None, 0)
    with db.engine.connect() as con:
        assert "static" in {r[1] for r in con.exec_driver_sql("PRAGMA table_info(tracks)")}
        assert con.exec_driver_sql("SELECT version_num FROM alembic_version").scalar() == HEAD_REVISION
        assert con.exec_driver_sql("SELECT count(*) FROM watchlist").scalar() == 0
        assert "ix_alerts_track_id" in {r[1] for r in con.exec_driver_sql("PRAGMA index_list(alerts)")}
    db.close()
    assert integrity_problems(path) == []


def _migrated_from_nothing_differs_from_the_models(url: str) -> list:
    """Run every migration on an empty database, then compare the result with the models (Alembic's autogenerate
    comparison): the differences, none when the migrations and ``storage.schema`` agree."""
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext
    from sqlalchemy import create_engine

    from storage.database import _alembic
    from storage.schema import Base

    engine = create_engine(url)
    try:
        with engine.begin() as con:
            _alembic(con, "upgrade", HEAD_REVISION)
        with engine.connect() as con:
            return compare_metadata(MigrationContext.configure(con), Base.metadata)
    finally:
        engine.dispose()


def test_the_migrations_make_exactly_the_models_schema_on_sqlite(tmp_path):
    assert _migrated_from_nothing_differs_from_the_models(f"sqlite:///{tmp_path / 'migrated.db'}") == []


def test_the_migrations_make_exactly_the_models_schema_on_postgresql(pg_url):
    assert (
        _migrated_from_nothing_differs_from_the_models(pg_url.replace("postgresql://", "postgresql+psycopg://")) == []
    )


def test_the_migrations_go_back_down_to_nothing(tmp_path):
    from sqlalchemy import create_engine, inspect

    from storage.database import _alembic

    engine = create_engine(f"sqlite:///{tmp_path / 'down.db'}")
    with engine.begin() as con:
        _alembic(con, "upgrade", HEAD_REVISION)
        _alembic(con, "downgrade", "base")
    assert set(inspect(engine).get_table_names()) == {"alembic_version"}
    engine.dispose()


def test_upgrading_to_schema_5_lists_the_segments_an_older_watch_recorded(tmp_path):
    """Retention deletes only files in ``recorded_files``; the upgrade lists an older watch's segments (known by
    their live fingerprint) and never a user's file."""
    import hashlib

    path = tmp_path / "old.db"
    open_database(path).close()
    segment = str(tmp_path / "recordings" / "cam1" / "cam1-20260101T000000.000000Z.mp4")
    live = hashlib.sha256(f"live:{segment}".encode()).hexdigest()
    columns = (
        "(id, camera_id, path, fingerprint, fps, frame_count, width, height, duration_s, start_time, "
        "analysis_fps, frames_analysed, status, ingested_at)"
    )
    sqlite_execute(
        path,
        "DROP TABLE webhook_outbox",
        "DROP TABLE recorded_files",
        "UPDATE alembic_version SET version_num = '0002_watchlist_alerts'",
        "UPDATE reid_meta SET value = '4' WHERE key = 'schema_version'",
        "INSERT INTO cameras (id, name, created_at) VALUES (1, 'cam1', '2026-01-01')",
        f"INSERT INTO videos {columns} VALUES (1, 1, '{segment}', '{live}', 10, 100, 64, 48, 10, 1, 5, 50, "
        f"'complete', '2026-01-01')",
        f"INSERT INTO videos {columns} VALUES (2, 1, '{tmp_path}/recordings/manual/mine.mp4', 'abc', 10, "
        f"100, 64, 48, 10, 1, 5, 50, 'complete', '2026-01-01')",
    )
    db = open_database(path)
    with db.engine.connect() as con:
        listed = con.exec_driver_sql("SELECT path, camera FROM recorded_files").all()
    db.close()
    assert [tuple(r) for r in listed] == [(segment, "cam1")]
