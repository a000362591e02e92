"""Retention (pipelines.evidence.retention, storage.retention, ``reid-app retention``) on copies of a real lab database
with a clock the test controls: old footage goes with everything found in it, in one audited transaction; newer
footage, footage of unknown age and files outside the recordings folder stay."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from pipelines.evidence.retention import apply_retention
from storage.database import open_database
from tests.conftest import LAB, copy_db, run_cli, sqlite_execute

DAY = 86400.0
NOW = 1_790_000_000.0  # 2026-09-21


def _count(db, sql) -> int:
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchone()[0]
    finally:
        con.close()


def _counts(db, camera) -> tuple[int, int, int]:
    where = f"FROM videos v JOIN cameras c ON c.id = v.camera_id WHERE c.name = '{camera}'"
    return (
        _count(db, f"SELECT count(*) FROM tracks WHERE video_id IN (SELECT v.id {where})"),
        _count(db, f"SELECT count(*) FROM sightings WHERE video_id IN (SELECT v.id {where})"),
        _count(
            db,
            f"SELECT count(*) FROM embeddings e JOIN sightings s ON s.id = e.sighting_id "
            f"WHERE s.video_id IN (SELECT v.id {where})",
        ),
    )


@pytest.fixture
def aged_db(lab_db, tmp_path):
    """The lab database with cam0 recorded 40 days before NOW into the recordings folder, cam1 a day before NOW
    from its original file."""
    db = copy_db(lab_db, tmp_path / "db")
    recording = tmp_path / "recordings" / "cam0" / "cam0-old.mp4"
    recording.parent.mkdir(parents=True)
    shutil.copyfile(LAB / "cam0.mp4", recording)
    sqlite_execute(
        db,
        f"UPDATE videos SET start_time = {NOW - 40 * DAY}, path = '{recording}' WHERE camera_id = "
        f"(SELECT id FROM cameras WHERE name = 'cam0')",
        f"INSERT INTO recorded_files (path, camera, created_at) VALUES ('{recording}', 'cam0', '2026-01-01')",
    )  # as the recorder lists what it writes
    sqlite_execute(
        db, f"UPDATE videos SET start_time = {NOW - DAY} WHERE camera_id = (SELECT id FROM cameras WHERE name = 'cam1')"
    )
    return db, recording


def test_old_footage_goes_with_what_was_found_in_it_and_the_rest_stays(aged_db, tmp_path):
    path, recording = aged_db
    old, kept = _counts(path, "cam0"), _counts(path, "cam1")
    assert old[1] > 0 and old[2] > 0 and kept[1] > 0
    db = open_database(path)
    dry = apply_retention(db, 30 * DAY, tmp_path / "recordings", dry_run=True, clock=lambda: NOW)
    assert (dry.purge.tracks, dry.purge.sightings, dry.purge.embeddings) == old and recording.exists()
    assert dry.files_deleted == [str(recording)]  # the dry run lists the files it would delete
    report = apply_retention(db, 30 * DAY, tmp_path / "recordings", clock=lambda: NOW)
    db.close()
    assert [p for _, p in report.purge.videos] == [str(recording)]
    assert (report.purge.tracks, report.purge.sightings, report.purge.embeddings) == old
    assert _counts(path, "cam0") == (0, 0, 0) and _counts(path, "cam1") == kept
    assert report.files_deleted == [str(recording)] and not recording.exists()
    assert (
        _count(
            path,
            "SELECT count(*) FROM identities i WHERE NOT EXISTS "
            "(SELECT 1 FROM identity_tracks t WHERE t.identity_id = i.id)",
        )
        == 0
    )
    assert _count(path, "SELECT count(*) FROM audit_log WHERE action = 'retention'") == 1
    con = sqlite3.connect(path)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    assert con.execute("PRAGMA foreign_key_check").fetchall() == []
    con.close()
    # a day later cam1 is old too: its rows go, its file (outside the recordings folder) stays
    db = open_database(path)
    later = apply_retention(db, 0.5 * DAY, tmp_path / "recordings", clock=lambda: NOW + DAY)
    db.close()
    assert len(later.purge.videos) == 1 and later.files_deleted == [] and (LAB / "cam1.mp4").exists()
    assert _count(path, "SELECT count(*) FROM sightings") == 0


def test_footage_without_a_known_start_is_never_removed(lab_db, tmp_path):
    path = copy_db(lab_db, tmp_path / "db")  # the lab clips carry no creation time: start_time 0
    before = _count(path, "SELECT count(*) FROM sightings")
    db = open_database(path)
    report = apply_retention(db, 1.0, tmp_path / "recordings", clock=lambda: NOW)
    db.close()
    assert report.purge.videos == [] and _count(path, "SELECT count(*) FROM sightings") == before


def test_the_command_reports_and_audits_and_refuses_a_bad_age(aged_db, tmp_path):
    path, recording = aged_db
    bad = run_cli("retention", "--db", path, "--older-than", "soon")
    assert bad.code == 2 and "--older-than must be a duration such as 30s, 10m, 2h or 30d, got 'soon'" in bad.stderr
    both = tuple(a + b for a, b in zip(_counts(path, "cam0"), _counts(path, "cam1")))
    dry = run_cli("retention", "--db", path, "--older-than", "30d", "--dry-run")  # the real clock: both are old
    assert dry.code == 0 and "would remove 2 video(s)" in dry.stdout
    assert f"{both[0]} tracks, {both[1]} sightings, {both[2]} embeddings" in dry.stdout and recording.exists()
    assert _count(path, "SELECT count(*) FROM audit_log WHERE action = 'retention'") == 0
    done = run_cli("retention", "--db", path, "--older-than", "30d", "--recordings", tmp_path / "recordings")
    assert done.code == 0 and "removed 2 video(s)" in done.stdout and "1 recording file(s) deleted" in done.stdout
    assert not recording.exists() and (LAB / "cam1.mp4").exists()
    audit = run_cli("audit", "--db", path, "--action", "retention")
    assert audit.code == 0 and f'"sightings": {both[1]}' in audit.stdout


def test_footage_a_user_put_into_the_recordings_folder_is_never_deleted(aged_db, tmp_path):
    """A file copied into ``recordings/manual/`` and ingested is the user's: its rows age out, the file stays,
    and the dry run does not list it."""
    path, recording = aged_db
    manual = tmp_path / "recordings" / "manual" / "cam1.mp4"
    manual.parent.mkdir(parents=True)
    shutil.copyfile(LAB / "cam1.mp4", manual)
    sqlite_execute(
        path,
        f"UPDATE videos SET start_time = {NOW - 40 * DAY}, path = '{manual}' WHERE camera_id = "
        f"(SELECT id FROM cameras WHERE name = 'cam1')",
    )
    dry = run_cli(
        "retention", "--db", path, "--older-than", "30d", "--dry-run", "--recordings", tmp_path / "recordings"
    )
    assert dry.code == 0 and "would delete 1 recording file(s)" in dry.stdout and str(recording) in dry.stdout
    assert str(manual) not in dry.stdout
    done = run_cli("retention", "--db", path, "--older-than", "30d", "--recordings", tmp_path / "recordings")
    assert done.code == 0 and "removed 2 video(s)" in done.stdout and "1 recording file(s) deleted" in done.stdout
    assert manual.exists() and not recording.exists()


def test_an_age_beyond_the_epoch_is_refused_in_one_line(aged_db):
    path, _ = aged_db
    result = run_cli("retention", "--db", path, "--older-than", "400000000000d")
    assert result.code == 2 and "reaches back before 1970" in result.stderr and "Traceback" not in result.stderr
    assert _count(path, "SELECT count(*) FROM audit_log WHERE action = 'retention'") == 0
