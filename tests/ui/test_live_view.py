"""The app's live view against a real RTSP server: the newest frames with boxes, status lines, a watchlist alert
that jumps to its camera and moment, and a clean stop."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from PySide6.QtCore import Qt

from tests.conftest import copy_db, run_cli

pytestmark = pytest.mark.slow


def test_the_live_view_shows_cameras_alerts_and_jumps_to_the_moment(
    make_window, qtbot, rtsp_server, cam1_live_clip, lab4_db, tmp_path
):
    db_path = copy_db(lab4_db, tmp_path / "db")
    with sqlite3.connect(db_path) as con:  # the cam0 track most like a cam1 track: one person in both views
        watched = con.execute(
            "SELECT t.id FROM tracks t JOIN cameras c ON c.id = t.camera_id WHERE c.name = 'cam0' "
            "ORDER BY t.num_embeddings DESC LIMIT 1"
        ).fetchone()[0]
    assert run_cli("watchlist", "add", "Visitor", "--track", str(watched), "--db", db_path).code == 0
    server = rtsp_server((), files={"cam1": cam1_live_clip})
    site = tmp_path / "site.toml"
    site.write_text(
        f'[site]\nsegment = "60s"\nrecordings = "rec"\n\n[[camera]]\nname = "cam1"\nurl = "{server.url("cam1")}"\n'
    )
    window = make_window(db_path)
    try:
        window.start_watching(str(site))
        qtbot.waitUntil(lambda: window.live_session is not None, timeout=60000)
        panel = window.live_panel
        assert window.live_dock.isVisible() and list(panel.tiles) == ["cam1"]
        qtbot.waitUntil(
            lambda: panel.tiles["cam1"].pixmap() is not None and not panel.tiles["cam1"].pixmap().isNull(),
            timeout=30000,
        )
        qtbot.waitUntil(lambda: "cam1: live" in panel.status_labels["cam1"].text(), timeout=10000)
        qtbot.waitUntil(lambda: panel.alerts.count() > 0, timeout=40000)
        assert "Visitor on cam1" in panel.alerts.item(0).text()
        assert "ALERT: Visitor on cam1" in window.statusBar().currentMessage()
        window.grab().save(str(tmp_path / "live.png"))
        # a click on the camera plays its recording from 5 s back: the segment still being written
        tile = panel.tiles["cam1"]
        qtbot.waitUntil(lambda: window.live_session.statuses()[0].frames >= 45, timeout=30000)  # 9 s recorded
        with qtbot.waitSignal(window.overviewLoaded, timeout=30000):
            qtbot.mouseClick(tile, Qt.MouseButton.LeftButton)
        active = window.player.active_video()
        assert active is not None and str(Path(active.path).parent).endswith("rec/cam1") and not active.finished
        assert abs(window.player.position - (tile.shown_at - 5.0)) < 1.0
        qtbot.wait(1500)
        window.grab().save(str(tmp_path / "playback.png"))
        # the alert's double-click plays the recording at the alert's moment
        with qtbot.waitSignal(window.overviewLoaded, timeout=30000):
            panel.alerts.itemDoubleClicked.emit(panel.alerts.item(0))
        camera, when, _ = panel.alerts.item(0).data(0x0100)
        active = window.player.active_video()
        assert camera == "cam1" and active is not None and str(Path(active.path).parent).endswith("rec/cam1")
        assert abs(window.player.position - when) < 1.0
        session = window.live_session
        window.stop_watching()
        assert not session.running and window.live_session is None
    finally:
        window.stop_watching()  # never leave the cameras running into the next test
    with sqlite3.connect(db_path) as con:
        statuses = {s for (s,) in con.execute("SELECT status FROM videos WHERE path LIKE ?", (f"%{Path('rec')}%",))}
    assert statuses == {"complete"}
