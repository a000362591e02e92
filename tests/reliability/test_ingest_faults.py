"""``reid-app ingest`` with the real models on damaged, odd and contended footage, a full disk and broken models
(issue 12: defects 1, 4, 5, 6, 9, 12 and 13). Each runs real ingests in separate processes: slow."""

from __future__ import annotations

import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import time

import pytest

from tests.conftest import LAB, ROOT, copy_db, dead_owner, real_weights_args, run_cli, sqlite_execute
from tests.reliability.cli import assert_clean_outcome, assert_one_error
from tests.reliability.damage import broken_reid_onnx, damage_packets, variable_rate_mkv

pytestmark = pytest.mark.slow


def _videos(db) -> list[dict]:
    con = sqlite3.connect(db)
    con.row_factory = sqlite3.Row
    try:
        return [
            dict(r)
            for r in con.execute(
                "SELECT v.*, c.name AS camera FROM videos v JOIN cameras c ON c.id = v.camera_id ORDER BY v.id"
            )
        ]
    finally:
        con.close()


def _row(result, camera: str) -> list[str]:
    line = next(line for line in result.stdout.splitlines() if line.startswith(f"│ {camera} "))
    return [c.strip() for c in line.split("│")[1:-1]]


def test_damaged_packets_lose_only_their_frames_and_heavy_damage_is_marked(tmp_path, lab_cam0):
    light = damage_packets(lab_cam0, tmp_path / "light.mp4", [40, 120, 200])
    heavy = damage_packets(lab_cam0, tmp_path / "heavy.mp4", range(5, 268, 9))  # 30 of 268 packets
    db = tmp_path / "d.db"
    result = run_cli("ingest", light, heavy, "--db", db, "--fps", "2", *real_weights_args())
    assert_clean_outcome(result, 0)
    assert "3 damaged frames" in result.stdout  # the summary's note
    videos = {v["camera"]: v for v in _videos(db)}
    assert videos["light"]["status"] == "complete" and videos["light"]["frames_lost"] == 3
    assert videos["light"]["frames_analysed"] >= 50  # 26.8 s at 2 frames/s; before: 11 frames, then "done"
    assert videos["heavy"]["status"] == "damaged" and videos["heavy"]["frames_lost"] >= 25
    again = run_cli("ingest", heavy, "--db", db, "--fps", "2", *real_weights_args())
    assert_clean_outcome(again, 0)
    assert "already ingested" in again.stderr and "damaged" in again.stderr


def test_a_longer_duration_extends_the_ingest_and_a_full_one_completes_it(tmp_path, lab_cam0):
    db = tmp_path / "x.db"
    args = ["--db", db, "--fps", "2", *real_weights_args()]
    assert_clean_outcome(run_cli("ingest", lab_cam0, "--duration", "2", *args), 0)
    longer = run_cli("ingest", lab_cam0, "--duration", "4", *args)
    assert_clean_outcome(longer, 0)
    assert "analysed to 2 s before; analysing it to 4 s now" in longer.stderr
    assert [(v["frames_analysed"], v["analysed_until_s"]) for v in _videos(db)] == [(8, 4.0)]
    full = run_cli("ingest", lab_cam0, *args)
    assert_clean_outcome(full, 0)
    assert "analysing it to the end now" in full.stderr
    assert [(v["frames_analysed"], v["analysed_until_s"]) for v in _videos(db)] == [(54, None)]
    shorter = run_cli("ingest", lab_cam0, "--duration", "3", *args)
    assert "already ingested" in shorter.stderr and _row(shorter, "cam0")[1] == "skipped"


_THROTTLED_INGEST = """
import sys, threading, time
from pipelines.ingest.files import IngestJob, IngestProgress
from reid_app.ingest_runner import IngestChoices, prepare_ingest
from common.settings import load_settings
from storage.database import open_database
from tests.conftest import OSNET, POSE_DETECTOR

class Throttle(IngestProgress):  # a slow camera: the first ingest is surely still running when the second starts
    def on_advance(self, camera, frames_analysed):
        time.sleep(0.15)

prepared = prepare_ingest(IngestChoices(detector=str(POSE_DETECTOR), reid=str(OSNET), duration_s=10),
                          load_settings())
db = open_database(sys.argv[1])
(summary,) = prepared.run(db, [IngestJob(sys.argv[2])], Throttle(), threading.Event())
print(summary.status, summary.frames_analysed)
"""


def test_two_ingests_of_the_same_video_at_once_leave_the_first_alone(tmp_path, lab_cam0, lab_cam1):
    db = tmp_path / "x.db"
    env = dict(os.environ, YOLO_VERBOSE="False")
    first = subprocess.Popen(
        [sys.executable, "-c", _THROTTLED_INGEST, str(db), str(lab_cam0)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=ROOT,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (db.exists() and any(v["owner"] for v in _videos(db))):
        time.sleep(0.2)
    second = run_cli("ingest", lab_cam0, lab_cam1, "--duration", "2", "--db", db, *real_weights_args())
    out, err = first.communicate(timeout=300)
    assert first.returncode == 0, err
    assert out.split() == ["done", "50"]  # 10 s at 5 frames/s, 7.5 s or more of it throttled
    assert_clean_outcome(second, 1)
    assert "being ingested right now by another reid-app process" in second.stderr
    assert _row(second, "cam0")[1] == "failed" and _row(second, "cam1")[1] == "done"
    videos = {v["camera"]: v for v in _videos(db)}
    assert videos["cam0"]["status"] == "complete" and videos["cam0"]["frames_analysed"] == 50
    assert videos["cam1"]["status"] == "complete"


def test_a_plain_rerun_removes_what_a_killed_forced_reingest_left(tmp_path, lab_db):
    db = copy_db(lab_db, tmp_path / "db")
    fingerprint = next(v["fingerprint"] for v in _videos(db) if v["camera"] == "cam0")
    sqlite_execute(
        db,
        "INSERT INTO videos (camera_id, path, fingerprint, fps, frame_count, width, height, "
        "duration_s, start_time, analysis_fps, frames_analysed, status, owner, heartbeat_at, "
        f"ingested_at) SELECT camera_id, path, fingerprint, fps, frame_count, width, height, "
        f"duration_s, start_time, analysis_fps, 3, 'ingesting', '{dead_owner()}', {time.time()}, ingested_at "
        f"FROM videos WHERE fingerprint = '{fingerprint}'",
    )
    assert len(_videos(db)) == 3
    result = run_cli("ingest", LAB / "cam0.mp4", "--db", db, "--duration", "4", *real_weights_args())
    assert_clean_outcome(result, 0)
    assert "already ingested" in result.stderr
    assert sorted(v["status"] for v in _videos(db)) == ["complete", "complete"]


@pytest.mark.parametrize("kind,words", [("nan", "NaN or infinite"), ("huge", "pixel inputs")])
def test_broken_reid_models_stop_the_ingest_before_anything_is_stored(tmp_path, lab_cam0, kind, words):
    model = broken_reid_onnx(tmp_path / f"{kind}.onnx", kind)
    detector = real_weights_args()[1]
    result = run_cli("ingest", lab_cam0, "--db", tmp_path / "x.db", "--detector", detector, "--reid", model)
    assert_one_error(result, str(model), words)
    assert not (tmp_path / "x.db").exists()


def test_a_garbage_detector_is_one_line(tmp_path, lab_cam0):
    garbage = tmp_path / "detector.onnx"
    garbage.write_bytes(b"not a model" * 100)
    result = run_cli(
        "ingest", lab_cam0, "--db", tmp_path / "x.db", "--detector", garbage, "--reid", real_weights_args()[3]
    )
    assert_one_error(result, "detector.onnx", "could not be loaded")


def test_a_variable_frame_rate_mkv_is_stored_with_its_real_rate(tmp_path, lab_cam0):
    vfr = variable_rate_mkv(lab_cam0, tmp_path / "vfr.mkv")
    result = run_cli("ingest", vfr, "--db", tmp_path / "x.db", *real_weights_args())
    assert_clean_outcome(result, 0)
    assert "truncated" not in result.stdout
    (video,) = _videos(tmp_path / "x.db")
    assert 5 < video["fps"] < 8 and video["frame_count"] == 40  # before: fps 1000


def _file_size_limit(limit_bytes: int):
    def apply():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    return apply


def test_a_write_failure_mid_ingest_is_one_line_and_a_clean_exit(tmp_path, lab_cam0, lab_cam1):
    db = tmp_path / "x.db"
    cmd = [
        sys.executable,
        "-m",
        "reid_app.cli",
        "ingest",
        str(lab_cam0),
        str(lab_cam1),
        "--db",
        str(db),
        "--duration",
        "10",
        *map(str, real_weights_args()),
    ]  # 10 s of both cameras: about 560 KiB
    env = dict(os.environ, YOLO_VERBOSE="False", COLUMNS="200")
    proc = subprocess.run(
        cmd, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300, preexec_fn=_file_size_limit(520 * 1024)
    )  # the database may not grow past 520 KiB
    assert proc.returncode == 2, proc.stderr  # before: a SQLAlchemy traceback, then SIGABRT (134)
    errors = [line for line in proc.stderr.splitlines() if line.startswith("reid-app: error:")]
    assert len(errors) == 1 and "cannot write to database" in errors[0] and "I/O error" in errors[0], proc.stderr
    assert "Traceback" not in proc.stderr and "terminate called" not in proc.stderr
    con = sqlite3.connect(db)
    assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    con.close()
    rerun = run_cli(
        "ingest", lab_cam0, lab_cam1, "--db", db, "--duration", "10", *real_weights_args()
    )  # room again: it completes
    assert_clean_outcome(rerun, 0)
    assert sorted(v["status"] for v in _videos(db)) == ["complete", "complete"]


@pytest.fixture
def small_disk(tmp_path):
    """A 2 MiB tmpfs (needs root); skipped where it cannot be mounted."""
    mount = tmp_path / "disk"
    mount.mkdir()
    if (
        shutil.which("mount") is None
        or subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(mount)], capture_output=True
        ).returncode
        != 0
    ):
        pytest.skip("cannot mount a small tmpfs here (needs root); the RLIMIT_FSIZE test covers write failures")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True)


def test_a_full_disk_is_one_line_and_leaves_no_half_made_database(small_disk, lab_cam0):
    (small_disk / "filler").write_bytes(b"\0" * (2 * 1024 * 1024 - 8192))
    db = small_disk / "new.db"
    result = run_cli("ingest", lab_cam0, "--db", db, *real_weights_args())
    assert_one_error(result, "disk is full")
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler"]  # before: a half-made file, refused forever
    (small_disk / "filler").unlink()
    (small_disk / "filler").write_bytes(b"\0" * (1024 * 1024 + 512 * 1024))
    midway = run_cli("ingest", lab_cam0, "--db", db, *real_weights_args())
    assert_one_error(midway, "disk is full")
    assert "terminate called" not in midway.stderr
    (small_disk / "filler").unlink()
    assert_clean_outcome(run_cli("ingest", lab_cam0, "--db", db, *real_weights_args()), 0)
    assert [v["status"] for v in _videos(db)] == ["complete"]
