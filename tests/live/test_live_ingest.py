"""``reid-app ingest URL --duration S`` against a real RTSP server on loopback: live cameras are recorded, the
recordings ingested with wall-clock times, one unreachable camera fails alone, a server that dies and comes back
gives a second recording and nothing twice, and credentials reach neither the output nor the database."""

from __future__ import annotations

import re
import sqlite3
import threading
import time

import numpy as np
import pytest

from pipelines.ingest.video import FrameReader
from tests.conftest import free_port, real_weights_args, run_cli


def _rows(db, sql):
    con = sqlite3.connect(db)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()


def test_a_stream_without_duration_is_refused_in_one_line_without_its_password(tmp_path):
    result = run_cli("ingest", "rtsp://admin:s3cret@127.0.0.1:9/cam0", "--db", tmp_path / "x.db")
    assert result.code == 2 and "--duration" in result.stderr and "rtsp://***@127.0.0.1:9/cam0" in result.stderr
    assert "s3cret" not in result.stderr and not (tmp_path / "x.db").exists()


@pytest.mark.slow
def test_two_live_cameras_one_unreachable_are_recorded_and_ingested_with_wall_clock_times(
    rtsp_server, short_gop_clip, tmp_path
):
    server = rtsp_server((), files={"cam0": short_gop_clip}, user="viewer", password="s3cret")
    db = tmp_path / "live.db"
    before = time.time()
    result = run_cli(
        "ingest",
        server.url("cam0", "viewer:s3cret@"),
        f"rtsp://viewer:s3cret@127.0.0.1:{free_port()}/door",
        "--duration",
        "5",
        "--db",
        db,
        "--stream-timeout",
        "3",
        *real_weights_args(),
    )
    after = time.time()
    assert result.code == 1, result.stderr  # one camera failed, the other was ingested
    assert "s3cret" not in result.stdout + result.stderr and "rtsp://***@127.0.0.1" in result.stdout
    videos = _rows(
        db,
        "SELECT c.name, v.path, v.status, v.start_time, v.duration_s, v.id FROM videos v "
        "JOIN cameras c ON c.id = v.camera_id",
    )
    assert [(name, status) for name, _, status, *_ in videos] == [("cam0", "complete")]
    _, path, _, start, duration, video_id = videos[0]
    assert path.startswith(str(tmp_path / "recordings" / "cam0")) and before <= start <= after
    assert 4.0 <= duration <= 6.5
    sightings = _rows(
        db, f"SELECT frame_index, time_s, timestamp FROM sightings WHERE video_id = {video_id} ORDER BY timestamp"
    )
    assert len(sightings) >= 10
    stamps = np.array([s[2] for s in sightings])
    assert start <= stamps.min() and stamps.max() <= start + duration + 0.5
    reader = FrameReader(path)  # the sightings play back from the recording, like an ingested file's
    assert all(reader.read(frame) is not None for frame, _, _ in sightings[::5])
    reader.close()
    stored = b"".join(p.read_bytes() for p in tmp_path.glob("live.db*"))
    assert b"s3cret" not in stored and b"viewer" not in stored


@pytest.mark.slow
def test_a_server_that_dies_and_comes_back_gives_two_recordings_and_nothing_twice(
    rtsp_server, short_gop_clip, tmp_path
):
    server = rtsp_server((), files={"cam0": short_gop_clip})  # a keyframe every second, as cameras send
    db = tmp_path / "live.db"

    def outage():  # 2 s after the recording began
        deadline = time.monotonic() + 120
        while not list(tmp_path.glob("recordings/cam0/*.mp4")) and time.monotonic() < deadline:
            time.sleep(0.1)
        time.sleep(2)
        server.kill()
        time.sleep(1.5)
        server.start()

    threading.Thread(target=outage, daemon=True).start()
    result = run_cli(
        "ingest", server.url("cam0"), "--duration", "8", "--db", db, "--stream-timeout", "10", *real_weights_args()
    )
    assert result.code == 0, result.stderr
    assert re.search(r"recorded 2 segment\(s\) after \d+ reconnection", result.stderr), result.stderr
    videos = _rows(db, "SELECT v.start_time, v.duration_s, v.status, v.id FROM videos v ORDER BY v.start_time")
    assert len(videos) == 2 and {v[2] for v in videos} == {"complete"}
    (start0, duration0, _, first), (start1, _, _, second) = videos
    assert start1 >= start0 + duration0 + 1.0  # the outage is a gap: no frame recorded twice
    for video_id, start in ((first, start0), (second, start1)):
        stamps = [s[0] for s in _rows(db, f"SELECT timestamp FROM sightings WHERE video_id = {video_id}")]
        assert stamps and min(stamps) >= start


@pytest.mark.slow
def test_ctrl_c_while_recording_leaves_playable_recordings_and_an_untouched_database(
    rtsp_server, short_gop_clip, tmp_path
):
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    server = rtsp_server((), files={"cam0": short_gop_clip})
    db = tmp_path / "live.db"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reid_app.cli",
            "ingest",
            server.url("cam0"),
            "--duration",
            "60",
            "--db",
            str(db),
            *map(str, real_weights_args()),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env=dict(os.environ, YOLO_VERBOSE="False"),
    )
    deadline = time.monotonic() + 120
    while not list(tmp_path.glob("recordings/cam0/*.mp4")) and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(3)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted while recording" in err and str(tmp_path / "recordings") in err and "Traceback" not in err
    (recording,) = tmp_path.glob("recordings/cam0/*.mp4")
    reader = FrameReader(recording)
    assert all(reader.read(i) is not None for i in (0, 10, 20))  # closed properly: 2-3 s of it play
    reader.close()
    assert _rows(db, "SELECT count(*) FROM videos") == [(0,)]
