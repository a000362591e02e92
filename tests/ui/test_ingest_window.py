"""Ingest from the window: per-camera progress, completion, a failing video reported while the others finish,
cancel, and bad weights reported as a message. Real footage and weights."""

from __future__ import annotations

import time

import pytest
from PySide6.QtCore import Qt, QTimer

from reid_app.ingest_runner import IngestChoices
from storage.catalog import list_cameras
from storage.reads import count_rows
from tests.conftest import LAB, _require
from tests.ui.conftest import real_choices

pytestmark = pytest.mark.slow


def _record(worker):
    events = {"started": [], "advanced": [], "finished": []}
    worker.cameraStarted.connect(lambda c, n: events["started"].append((c, n)))
    worker.cameraAdvanced.connect(lambda c, n: events["advanced"].append((c, n)))
    worker.cameraFinished.connect(lambda c, s, m: events["finished"].append((c, s, m)))
    return events


def test_ingest_from_the_window_shows_progress_and_completes(qtbot, make_window, tmp_path):
    videos = [_require(LAB / "cam0.mp4"), _require(LAB / "cam1.mp4")]
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    window = make_window(tmp_path / "new.db")
    assert window.cameras_panel.model.rowCount() == 0

    ticks = []
    heartbeat = QTimer(window)
    heartbeat.timeout.connect(lambda: ticks.append(1))
    heartbeat.start(50)
    started = time.monotonic()
    window.start_ingest([*videos, broken], ["cam0", "cam1", "broken"], real_choices(duration_s=2.0))
    worker = window.ingest_worker
    events = _record(worker)
    panel = window.cameras_panel
    assert panel.cancel_button.isVisible() and not panel.add_button.isEnabled()
    with qtbot.waitSignal(window.overviewLoaded, timeout=300000):
        with qtbot.waitSignal(worker.completed, timeout=300000) as done:
            pass
    heartbeat.stop()
    elapsed = time.monotonic() - started

    summaries, report = done.args
    status = {s.camera: s.status for s in summaries}
    assert status == {"cam0": "done", "cam1": "done", "broken": "failed"}
    assert {c for c, _ in events["started"]} == {"cam0", "cam1"}
    for camera in ("cam0", "cam1"):
        frames = [n for c, n in events["advanced"] if c == camera]
        assert frames and frames == sorted(frames) and frames[-1] == 10  # 2 s at 5 frames/s
        bar = panel.progress[camera].bar
        assert bar.value() == bar.maximum() == 10
        assert panel.progress[camera].state.text().startswith("done")  # and the summary note, if any
    failed = panel.progress["broken"].state.text()
    assert failed.startswith("failed: ") and "broken.mp4" in failed and "Traceback" not in failed
    assert "Ingest finished" in panel.ingest_status.text()
    assert report is not None and report.tracks > 0
    assert [c.name for c in panel.model.items()] == ["cam0", "cam1"]
    assert all(c.state == "complete" for c in list_cameras(window.db))
    assert set(window.player.views) == {c.id for c in panel.model.items()}
    assert panel.add_button.isEnabled() and not panel.cancel_button.isVisible()
    # the GUI thread kept running its event loop all along: a 50 ms timer fired at least half as often as it would
    # in an idle loop, however long the ingest took on this machine
    assert len(ticks) >= max(5, 0.5 * elapsed / 0.05), (len(ticks), elapsed)


def test_cancel_stops_the_ingest_and_keeps_the_database_consistent(qtbot, make_window, tmp_path):
    video = _require(LAB / "cam2.mp4")
    window = make_window(tmp_path / "cancel.db")
    window.start_ingest([video], ["cam2"], real_choices())
    worker = window.ingest_worker
    events = _record(worker)
    qtbot.waitUntil(lambda: len(events["advanced"]) >= 2, timeout=120000)
    with qtbot.waitSignal(worker.completed, timeout=120000) as done:
        qtbot.mouseClick(window.cameras_panel.cancel_button, Qt.MouseButton.LeftButton)
    summaries, _ = done.args
    assert [s.status for s in summaries] == ["interrupted"]
    qtbot.waitUntil(lambda: window.ingest_worker is None, timeout=10000)
    assert "Add the same videos again" in window.cameras_panel.ingest_status.text()
    cameras = list_cameras(window.db)
    assert [v.status for c in cameras for v in c.videos] == ["ingesting"]  # completed by the next ingest
    qtbot.waitUntil(lambda: window.cameras_panel.model.rowCount() == 1, timeout=10000)  # the refresh is a job
    assert window.cameras_panel.model.items()[0].state == "incomplete"


def test_bad_weights_are_reported_without_a_traceback(qtbot, make_window, tmp_path):
    window = make_window(tmp_path / "weights.db")
    window.start_ingest(
        [_require(LAB / "cam0.mp4")],
        ["cam0"],
        IngestChoices(detector=str(tmp_path / "missing.pt"), reid=str(tmp_path / "x.onnx")),
    )
    # the failure can come before a waitSignal would be connected: wait for what the window shows instead
    qtbot.waitUntil(
        lambda: (
            window.ingest_worker is None and window.cameras_panel.ingest_status.text().startswith("Ingest failed: ")
        ),
        timeout=60000,
    )
    message = window.cameras_panel.ingest_status.text()[len("Ingest failed: ") :]
    assert "missing.pt" in message or "x.onnx" in message
    assert "Traceback" not in message
    assert "--detector" not in message and "--reid" not in message  # the app's words, not the CLI's
    row = window.cameras_panel.progress["cam0"]
    assert row.state.text().startswith("not ingested: ")  # before: "waiting" for ever
    assert count_rows(window.db)["videos"] == 0


def test_add_videos_defaults_to_the_detector_the_database_was_built_with(make_window, lab_db, tmp_path):
    from tests.conftest import POSE_DETECTOR, copy_db

    window = make_window(copy_db(lab_db, tmp_path / "db"))
    window.services.default_choices = IngestChoices(detector="yolov8n-pose", reid=None)  # the settings' default
    choices = window._default_choices()
    assert choices.detector == str(POSE_DETECTOR.resolve())  # recorded by the ingest that made lab_db
