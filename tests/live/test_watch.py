"""``reid-app watch`` against a real RTSP server: a person of cam0 on the watchlist, cam1 streamed live, an alert for
that person only (the lab calibration says who is who), the webhook received by a local HTTP server, a camera
that cannot be reached, and a clean SIGTERM shutdown."""

from __future__ import annotations

import base64
import json
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import av
import cv2
import numpy as np
import pytest

from tests.conftest import LAB, OSNET, POSE_DETECTOR, _require, copy_db, free_port, run_cli
from tests.lab_geometry import same_person_pairs
from tests.webhook import WebhookReceiver

pytestmark = pytest.mark.slow


def _watched_track(db_path: Path) -> tuple[int, int, list[int]]:
    """(cam0 track, its cam1 twin, the other cam1 tracks) of the ingested lab footage, by the calibration."""
    pairs = same_person_pairs(db_path, LAB)
    with sqlite3.connect(db_path) as con:
        camera = dict(con.execute("SELECT t.id, c.name FROM tracks t JOIN cameras c ON c.id = t.camera_id"))
        embedded = {t for (t,) in con.execute("SELECT id FROM tracks WHERE num_embeddings >= 5")}
    same = [
        (a, b)
        for (a, b), s in pairs.items()
        if s and camera[a] == "cam0" and camera[b] == "cam1" and a in embedded and b in embedded
    ]
    assert same, "the lab footage shows one person in cam0 and cam1"
    watched, twin = same[0]
    others = [t for t in embedded if camera[t] == "cam1" and t != twin]
    return watched, twin, others


def _sightings(con, video_ids) -> list[tuple[int, int, np.ndarray]]:
    marks = ",".join("?" * len(video_ids))
    return [
        (t, f, np.array(box))
        for t, f, *box in con.execute(
            f"SELECT track_id, frame_index, x1, y1, x2, y2 FROM sightings WHERE video_id IN ({marks})", video_ids
        )
    ]


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def _offline_twins(con, live_videos, offline_video) -> dict[int, int]:
    """Live track -> the offline cam1 track of the same person, matched by box overlap at the same moment of the
    clip (the live stream starts a few frames into it: the offset is found first)."""
    live = _sightings(con, live_videos)
    offline: dict[int, list[tuple[int, np.ndarray]]] = {}
    for t, f, box in _sightings(con, [offline_video]):
        offline.setdefault(f, []).append((t, box))

    def matches(offset):
        out = []
        for t, f, box in live:
            near = offline.get(f + offset, []) + offline.get(f + offset + 1, [])
            best = max(near, key=lambda o: _iou(box, o[1]), default=None)
            if best is not None and _iou(box, best[1]) >= 0.5:
                out.append((t, best[0]))
        return out

    offset = max(range(-5, 60), key=lambda o: len(matches(o)))
    votes: dict[int, dict[int, int]] = {}
    for live_track, offline_track in matches(offset):
        votes.setdefault(live_track, {}).setdefault(offline_track, 0)
        votes[live_track][offline_track] += 1
    return {t: max(v, key=v.get) for t, v in votes.items() if sum(v.values()) >= 3}


def test_watch_alerts_for_the_watched_person_only_posts_the_webhook_and_stops_cleanly_on_sigterm(
    rtsp_server, cam1_live_clip, lab4_db, tmp_path
):
    db_path = copy_db(lab4_db, tmp_path)
    watched, twin, others = _watched_track(db_path)
    added = run_cli(
        "watchlist", "add", "Person of interest", "--track", str(watched), "--db", db_path, "--note", "seen at the door"
    )
    assert added.code == 0, added.stderr
    server = rtsp_server((), files={"cam1": cam1_live_clip}, user="viewer", password="s3cret")
    hook = WebhookReceiver()
    site = tmp_path / "site.toml"
    site.write_text(f"""
[site]
segment = "60s"
webhook = "{hook.url.replace("http://", "http://hook:s3cret@")}"

[[camera]]
name = "cam1"
url = "{server.url("cam1", "viewer:s3cret@")}"

[[camera]]
name = "door"
url = "rtsp://127.0.0.1:{free_port()}/user=viewer&password=s3cret&channel=1&stream=0.sdp"
""")
    recordings = tmp_path / "recordings"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reid_app.cli",
            "watch",
            "--site",
            str(site),
            "--db",
            str(db_path),
            "--recordings",
            str(recordings),
            "--detector",
            str(_require(POSE_DETECTOR)),
            "--reid",
            str(_require(OSNET)),
            "--status-every",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True).start()
    try:
        deadline = time.monotonic() + 90
        while not any(" cam1 " in f" {line}" and " live " in line for line in lines):
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines) + process.stderr.read()
            time.sleep(0.2)
        time.sleep(18)  # 18 s of the clip, within the 15 s ingested offline plus the stream's offset
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
        hook.close()
    stdout = "".join(lines)
    assert process.returncode == 0, stdout + stderr
    assert "SIGTERM: stopping" in stderr
    assert "s3cret" not in stdout + stderr
    assert any(" door " in f" {line}" and "refused" in line for line in lines), stdout  # said, and the rest went on
    assert "ALERT" in stdout and "'Person of interest' on cam1" in stdout

    con = sqlite3.connect(db_path)
    try:
        for blob in (db_path.read_bytes(), *(p.read_bytes() for p in tmp_path.glob("*.db-wal"))):
            assert b"s3cret" not in blob
        live_videos = [v for (v,) in con.execute("SELECT id FROM videos WHERE path LIKE ?", (f"{recordings}%",))]
        assert live_videos
        statuses = [
            s
            for (s,) in con.execute(
                f"SELECT status FROM videos WHERE id IN ({','.join('?' * len(live_videos))})", live_videos
            )
        ]
        assert statuses == ["complete"] * len(live_videos)  # SIGTERM closed the open segment and finished its row
        offline_cam1 = con.execute(
            "SELECT v.id FROM videos v JOIN cameras c ON c.id = v.camera_id "
            "WHERE c.name = 'cam1' AND v.path NOT LIKE ?",
            (f"{recordings}%",),
        ).fetchone()[0]
        twins = _offline_twins(con, live_videos, offline_cam1)
        alerts = con.execute(
            "SELECT id, watchlist_id, camera, track_id, sighting_id, similarity, delivered FROM alerts"
        ).fetchall()
        assert alerts
        for _, _, camera, track, _, similarity, delivered in alerts:
            assert camera == "cam1" and similarity >= 0.75 and delivered == "console, webhook 200"
            assert twins.get(track) == twin, (
                f"alert for live track {track}, which shows offline track "
                f"{twins.get(track)}, not the watched person ({twin})"
            )
        others_live = [t for t, o in twins.items() if o in others]
        assert others_live, "the other people were seen live too"
        assert not {a[3] for a in alerts} & set(others_live)
        # incremental matching gave the live tracks identities: the watched person's live track joined theirs
        identity_of = dict(con.execute("SELECT track_id, identity_id FROM identity_tracks"))
        assert identity_of.get(alerts[0][3]) == identity_of.get(twin)
        audit = [json.loads(d) for (d,) in con.execute("SELECT details FROM audit_log WHERE action = 'alert'")]
        assert [a["alert_id"] for a in audit] == [a[0] for a in alerts]
        segment, duration = con.execute(
            "SELECT path, duration_s FROM videos WHERE id = ?", (live_videos[0],)
        ).fetchone()
    finally:
        con.close()
    with av.open(segment) as container:  # the recording plays
        assert abs(float(container.duration / 1e6) - duration) < 0.5

    assert len(hook.received) == len(alerts)
    assert all(h["Authorization"] == "Basic " + base64.b64encode(b"hook:s3cret").decode() for h in hook.headers)
    path, body = hook.received[0]
    assert path == "/hooks/reid"
    assert body["name"] == "Person of interest" and body["note"] == "seen at the door" and body["camera"] == "cam1"
    assert body["alert_id"] == alerts[0][0] and body["track_id"] == alerts[0][3]
    thumbnail = cv2.imdecode(np.frombuffer(base64.b64decode(body["thumbnail_jpeg_base64"]), np.uint8), cv2.IMREAD_COLOR)
    assert thumbnail is not None and thumbnail.shape[0] == 128

    listed = run_cli("alerts", "--db", db_path)
    assert listed.code == 0 and "'Person of interest' on cam1" in listed.stdout


def test_recordings_of_a_killed_watch_play_and_are_finished_by_the_next_one(rtsp_server, cam1_live_clip, tmp_path):
    from pipelines.ingest.video import FrameReader
    from pipelines.live.watch import recover_abandoned
    from storage.database import open_database

    server = rtsp_server((), files={"cam1": cam1_live_clip})
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nsegment = "60s"\n\n[[camera]]\nname = "cam1"\nurl = "{server.url("cam1")}"\n')
    db_path, recordings = tmp_path / "live.db", tmp_path / "recordings"
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reid_app.cli",
            "watch",
            "--site",
            str(site),
            "--db",
            str(db_path),
            "--recordings",
            str(recordings),
            "--detector",
            str(_require(POSE_DETECTOR)),
            "--reid",
            str(_require(OSNET)),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )

    def stored() -> tuple[int, float]:
        if not db_path.exists():
            return 0, 0.0
        with sqlite3.connect(db_path) as con:
            row = con.execute(
                "SELECT count(s.id), max(v.duration_s) FROM videos v LEFT JOIN sightings s ON s.video_id = v.id"
            ).fetchone()
        return row[0] or 0, row[1] or 0.0

    try:
        deadline = time.monotonic() + 90
        while not (stored()[0] >= 20 and stored()[1] >= 6.0):  # sightings, and the open segment's row has grown
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.5)
    finally:
        process.kill()  # kill -9: no clean shutdown at all
        process.wait(30)
    with sqlite3.connect(db_path) as con:
        ((video_id, path, status, duration),) = con.execute("SELECT id, path, status, duration_s FROM videos")
        sighting_time = con.execute("SELECT max(time_s) FROM sightings WHERE video_id = ?", (video_id,)).fetchone()[0]
    assert status == "ingesting"
    reader = FrameReader(path)  # fragmented MP4: it plays although its writer was killed mid-segment
    try:
        assert reader.read(int(round(min(sighting_time, duration - 2.0) * 10))) is not None
    finally:
        reader.close()
    db = open_database(db_path)
    try:
        assert recover_abandoned(db, recordings) == 1
        assert recover_abandoned(db, recordings) == 0
    finally:
        db.close()
    with sqlite3.connect(db_path) as con:
        status, duration_after, frames = con.execute("SELECT status, duration_s, frame_count FROM videos").fetchone()
        sightings = con.execute("SELECT count(*) FROM sightings").fetchone()[0]
        latest = con.execute("SELECT max(time_s) FROM sightings").fetchone()[0]
    assert status == "complete" and duration_after >= duration - 2.5 and frames >= 10 * (duration_after - 1.5)
    assert latest < duration_after  # nothing kept of frames past the end of the playable file
    assert sightings >= 20  # what was stored before the kill is kept


def test_retention_runs_on_its_schedule_while_watching(rtsp_server, cam1_live_clip, tmp_path):
    server = rtsp_server((), files={"cam1": cam1_live_clip})
    site = tmp_path / "site.toml"
    site.write_text(
        f'[site]\nsegment = "3s"\nretention = "4s"\nretention_every = "2s"\n\n'
        f'[[camera]]\nname = "cam1"\nurl = "{server.url("cam1")}"\n'
    )
    db_path, recordings = tmp_path / "live.db", tmp_path / "recordings"
    result = run_cli(
        "watch",
        "--site",
        site,
        "--db",
        db_path,
        "--recordings",
        recordings,
        "--stop-after",
        "16",
        "--detector",
        _require(POSE_DETECTOR),
        "--reid",
        _require(OSNET),
        timeout=120,
    )
    assert result.code == 0, result.stderr
    with sqlite3.connect(db_path) as con:
        purges = [json.loads(d) for (d,) in con.execute("SELECT details FROM audit_log WHERE action = 'retention'")]
        kept = [(p, s) for p, s in con.execute("SELECT path, start_time + duration_s FROM videos")]
        last_end = con.execute("SELECT max(timestamp) FROM sightings").fetchone()[0]
    purged = sum(len(p["videos"]) for p in purges)
    assert len(purges) >= 2 and purged >= 2  # runs every 2 s: the first segments aged out while the camera was watched
    files = sorted(recordings.rglob("*.mp4"))
    assert sorted(Path(p) for p, _ in kept) == files  # a purged segment's file went with its row
    assert all(end >= last_end - 4.0 - 3.5 for _, end in kept)  # only the newest footage is left


def test_a_second_watch_of_the_same_cameras_is_refused(rtsp_server, cam1_live_clip, tmp_path):
    server = rtsp_server((), files={"cam1": cam1_live_clip})
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nsegment = "60s"\n\n[[camera]]\nname = "cam1"\nurl = "{server.url("cam1")}"\n')
    args = [
        "watch",
        "--site",
        str(site),
        "--db",
        str(tmp_path / "live.db"),
        "--recordings",
        str(tmp_path / "rec"),
        "--detector",
        str(_require(POSE_DETECTOR)),
        "--reid",
        str(_require(OSNET)),
    ]
    first = subprocess.Popen(
        [sys.executable, "-m", "reid_app.cli", *args], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "rec" / "cam1" / ".watch.lock").exists():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.2)
        second = run_cli(*args)
        assert second.code == 2 and "camera cam1 is already watched by another reid-app" in second.stderr
        assert len(second.error_lines) == 1
    finally:
        first.send_signal(signal.SIGTERM)
        first.wait(60)
    assert first.returncode == 0


@pytest.mark.slow
def test_a_postgresql_outage_does_not_stop_the_watch_and_nothing_analysed_is_lost(
    rtsp_server, cam1_live_clip, postgres_server, tmp_path
):
    import psycopg

    url = postgres_server.new_database()
    server = rtsp_server((), files={"cam1": cam1_live_clip})
    site = tmp_path / "site.toml"
    site.write_text(f'[site]\nsegment = "8s"\n\n[[camera]]\nname = "cam1"\nurl = "{server.url("cam1")}"\n')
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "reid_app.cli",
            "watch",
            "--site",
            str(site),
            "--db",
            url,
            "--recordings",
            str(tmp_path / "rec"),
            "--detector",
            str(_require(POSE_DETECTOR)),
            "--reid",
            str(_require(OSNET)),
            "--status-every",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    lines: list[str] = []
    threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True).start()

    def sightings() -> int:
        try:
            with psycopg.connect(url) as con:
                return con.execute("SELECT count(*) FROM sightings").fetchone()[0]
        except psycopg.Error:  # not made yet
            return 0

    try:
        deadline = time.monotonic() + 90
        while sightings() < 5:
            assert process.poll() is None and time.monotonic() < deadline, "".join(lines) + process.stderr.read()
            time.sleep(0.5)
        postgres_server.pause()
        try:
            time.sleep(12)  # longer than a segment: one closes while the database is down
            assert process.poll() is None, "the watch stopped with the database: " + process.stderr.read()
            assert any("database unavailable" in line for line in lines[-5:]), "".join(lines[-5:])
        finally:
            postgres_server.resume()
        before = sightings()
        deadline = time.monotonic() + 60
        while sightings() <= before + 5:
            assert process.poll() is None and time.monotonic() < deadline, process.stderr.read()
            time.sleep(0.5)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=60)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, stderr
    assert "the database cannot be written" in stderr and "the database is back" in stderr
    with psycopg.connect(url) as con:
        statuses = [s for (s,) in con.execute("SELECT status FROM videos ORDER BY id")]
        twice = con.execute("SELECT count(*) - count(DISTINCT (track_id, frame_index)) FROM sightings").fetchone()[0]
    assert len(statuses) >= 2 and set(statuses) == {"complete"}  # every segment's row finished, none lost
    assert twice == 0  # what waited for the database was stored once
