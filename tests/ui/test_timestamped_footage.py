"""The app on footage whose containers carry a real start time (``home_2cam``, as CCTV exports do): positions are
wall-clock seconds of 2024, which once overflowed the seek slider's 32-bit range and left the app empty."""

from __future__ import annotations

import json

import pytest
from PySide6.QtCore import QPointF, Qt

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


def test_an_investigation_on_timestamped_footage(qtbot, make_window, home_db, tmp_path):
    """Click a person, jump to the match, seek on the ruler and the identity timeline, export the evidence: all
    with 2024 wall-clock times, shown with their zone."""
    import av

    from common.timefmt import zone_label

    window = make_window(copy_db(home_db, tmp_path / "db"))
    player = window.player
    track = min(window.identities_panel.model.items(), key=lambda i: i.first_timestamp).track_ids[0]
    from storage.reads import get_tracks

    info = get_tracks(window.db, [track])[track]
    camera_id = next(c.id for c in window.cameras if c.name == info.camera)
    player.show_moment(camera_id, (info.first_timestamp + info.last_timestamp) / 2)
    view = player.views[camera_id]
    qtbot.waitUntil(lambda: view.image_frame == view.frame_index and bool(view.visible_people()), timeout=20000)
    assert zone_label() in view.caption_text() and "2024-06-18" in view.caption_text()
    hit = next(r for t, _, r in view.visible_people() if t == track)
    with qtbot.waitSignal(window.searchFinished, timeout=30000) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=hit.center().toPoint())
    assert blocker.args[0] == track
    results = window.results_panel.items()
    assert results and all(r.timestamp > 1.7e9 for r in results)

    match = results[0]
    window.results_panel.resultActivated.emit(match.camera_id, match.timestamp, match.track_id)
    assert player.active_camera == match.camera_id and player.position == pytest.approx(match.timestamp)

    ruler = player.ruler
    wanted = player.start + 0.25 * (player.end - player.start)
    qtbot.mouseClick(
        ruler, Qt.MouseButton.LeftButton, pos=QPointF(ruler.x_of(wanted), ruler.row_rect(0).center().y()).toPoint()
    )
    assert player.position == pytest.approx(wanted, abs=2 * (player.end - player.start) / ruler.width())
    assert ruler.playhead == pytest.approx(player.position)

    panel = window.identities_panel
    identity = next(i for i in panel.model.items() if track in i.track_ids)
    assert panel.select_identity(identity.id)
    bar = panel.timeline.bars[0]
    qtbot.mouseClick(panel.timeline, Qt.MouseButton.LeftButton, pos=panel.timeline.bar_rect(bar).center().toPoint())
    assert bar.start - 1e-3 <= player.position <= bar.end + 1e-3 and player.active_camera == bar.camera_id
    assert panel.timeline.playhead == pytest.approx(player.position)

    with qtbot.waitSignal(window.exportFinished, timeout=300000) as exported:
        window.export_evidence(identity.id, str(tmp_path / "case"), True)
    report = exported.args[0]
    summary = json.loads(report.json_path.read_text())
    assert '"1970-' not in report.json_path.read_text() and "2024-06-18" in report.html_path.read_text()
    assert summary["identity"] == identity.id
    with av.open(str(report.clips[0])) as container:
        assert container.streams.video[0].codec_context.name == "h264"
