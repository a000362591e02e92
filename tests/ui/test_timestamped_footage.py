"""The app on footage whose containers carry a real start time (``home_2cam``, as CCTV exports do): positions are
wall-clock seconds of 2024, which once overflowed the seek slider's 32-bit range and left the app empty."""

from __future__ import annotations

import pytest
from PySide6.QtCore import Qt

from tests.conftest import VIDEOS, _require, copy_db, real_weights_args, run_cli

pytestmark = pytest.mark.slow

HOME = VIDEOS / "home_2cam"


@pytest.fixture(scope="session")
def home_db(tmp_path_factory):
    videos = [_require(HOME / "cam1.mp4"), _require(HOME / "cam2.mp4")]
    db = tmp_path_factory.mktemp("home") / "home.db"
    result = run_cli("ingest", *videos, "--db", db, *real_weights_args())
    assert result.code == 0, result.stderr
    return db


def test_timestamped_footage_loads_plays_to_its_last_frame_and_searches(qtbot, make_window, home_db, tmp_path):
    window = make_window(copy_db(home_db, tmp_path / "db"))
    player = window.player
    assert player.start > 1.7e9  # 2024-06-18, from the containers' creation_time
    assert set(player.views) and window.identities_panel.model.rowCount() >= 1
    slider = player.slider
    assert 0 <= slider.value() <= slider.maximum() < 2**31
    assert slider.maximum() == pytest.approx((player.end - player.start) * 1000, abs=2)
    window.activateWindow()
    qtbot.keyClick(window, Qt.Key.Key_End)
    assert player.position == pytest.approx(player.end)
    assert slider.value() == slider.maximum()
    last = max((v for c in window.cameras for v in c.videos), key=lambda v: v.time_of(v.frame_count - 1))
    view = next(view for view in player.views.values() if view.camera.id == last.camera_id)
    assert view.camera.video_at(player.position) is not None  # the last frame, not "no footage"
    assert view.video is not None and view.video.frame_at(player.position) == last.frame_count - 1
    track_id = window.identities_panel.model.items()[0].track_ids[0]
    with qtbot.waitSignal(window.searchFinished, timeout=30000) as blocker:
        window.search(track_id)
    assert blocker.args[0] == track_id
    assert window.results_panel.isVisible()
