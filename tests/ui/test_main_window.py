"""The main window on a real two-camera lab ingest: click a person, see the matches, jump to them, give feedback,
follow an identity's timeline; shortcuts and remembered layout. Offscreen Qt with synthesised input events."""

from __future__ import annotations

import pytest
from PySide6.QtCore import QPoint, Qt

from storage.feedback import DIFFERENT, SAME, load_verdicts, set_overlap
from storage.reads import get_tracks

pytestmark = pytest.mark.slow


def _camera_id(window, name: str) -> int:
    return next(c.id for c in window.cameras if c.name == name)


def _view_with_people(qtbot, window, camera: str):
    """The view of ``camera`` once its frame and boxes are drawn, and the people in it that can be searched."""
    view = window.player.views[_camera_id(window, camera)]
    qtbot.waitUntil(
        lambda: view.image is not None and view.image_video == view.video.id and bool(view.visible_people()),
        timeout=20000,
    )
    people = view.visible_people()
    tracks = get_tracks(window.db, [t for t, _, _ in people])
    return view, [(t, s, r) for t, s, r in people if tracks[t].descriptor is not None]


def _click_first_person(qtbot, window, camera: str = "cam0"):
    window.player.seek(window.player.start + 2.0)
    view, people = _view_with_people(qtbot, window, camera)
    assert people, "no encoded person visible on cam0 2 s in"
    track_id, _, rect = people[0]
    with qtbot.waitSignal(window.searchFinished, timeout=30000) as blocker:
        qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    assert blocker.args[0] == track_id
    return track_id


def test_clicking_a_box_fills_the_gallery_with_the_other_camera(qtbot, lab_window):
    window = lab_window
    assert [c.name for c in window.cameras_panel.model.items()] == ["cam0", "cam1"]
    track_id = _click_first_person(qtbot, window)

    panel = window.results_panel
    assert panel.query.track_id == track_id and panel.query.camera == "cam0"
    items = panel.items()
    assert items, "the search returned nothing"
    assert track_id not in [i.track_id for i in items]
    other = [i for i in items if i.camera == "cam1"]
    assert other, f"no match from the other camera: {[(i.camera, i.track_id) for i in items]}"
    assert all(i.thumbnail for i in other)
    scores = [i.score for i in items]
    assert scores == sorted(scores, reverse=True)
    assert panel.view.model().rowCount() == len(items)
    assert "cam1" in panel.view.model().index(items.index(other[0]), 0).data()


def test_double_clicking_a_result_moves_the_player_there(qtbot, lab_window):
    window = lab_window
    _click_first_person(qtbot, window)
    player = window.player
    assert player.active_camera == _camera_id(window, "cam0")
    before = player.position
    panel = window.results_panel
    row, target = next((r, i) for r, i in enumerate(panel.items()) if i.camera == "cam1")
    rect = panel.view.visualRect(panel.proxy.index(row, 0))
    qtbot.mouseClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())  # a double-click's press
    qtbot.mouseDClick(panel.view.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())

    assert player.active_camera == _camera_id(window, "cam1")
    assert player.position == pytest.approx(target.timestamp, abs=1e-3)
    assert player.position != pytest.approx(before, abs=1e-3)
    view = player.views[player.active_camera]
    assert view.frame_index == view.video.frame_at(target.timestamp)
    qtbot.waitUntil(lambda: view.image_frame == view.frame_index, timeout=10000)
    assert target.track_id in [t for t, _, _ in view.visible_people()]


def test_gallery_filters_by_camera_and_time(qtbot, lab_window):
    window = lab_window
    _click_first_person(qtbot, window)
    panel = window.results_panel
    everything = panel.items()
    panel.camera_filter.setCurrentText("cam1")
    assert panel.items() and all(i.camera == "cam1" for i in panel.items())
    panel.camera_filter.setCurrentText("All cameras")
    assert panel.items() == everything

    late = max(everything, key=lambda i: i.first_timestamp)
    panel.after_edit.setDateTime(
        panel.after_edit.dateTime().addSecs(int(late.first_timestamp - min(i.first_timestamp for i in everything)))
    )
    panel.time_filter.setChecked(True)
    after = panel.after_edit.dateTime().toMSecsSinceEpoch() / 1000
    shown = panel.items()
    assert late in shown
    assert all(i.last_timestamp >= after for i in shown)
    assert len(shown) == sum(i.last_timestamp >= after for i in everything)


def test_confirm_and_reject_buttons_record_feedback(qtbot, lab_window):
    window = lab_window
    set_overlap(window.db, [c.id for c in window.cameras])  # the lab cameras see one room
    query = _click_first_person(qtbot, window)
    panel = window.results_panel
    items = panel.items()
    query_info = get_tracks(window.db, [query])[query]
    # one person cannot be two tracks of one camera at the same time
    impossible = [
        r
        for r, i in enumerate(items)
        if i.camera == query_info.camera
        and i.first_timestamp <= query_info.last_timestamp
        and i.last_timestamp >= query_info.first_timestamp
    ]
    possible = [r for r in range(len(items)) if r not in impossible]
    assert possible and impossible
    panel.view.setCurrentIndex(panel.proxy.index(impossible[0], 0))
    qtbot.mouseClick(panel.confirm_button, Qt.MouseButton.LeftButton)  # refused, with the reason shown
    qtbot.waitUntil(lambda: "Not recorded" in window.statusBar().currentMessage(), timeout=30000)
    assert "seen at the same time" in window.statusBar().currentMessage()
    confirmed, rejected = items[possible[-1]], items[impossible[0]]
    panel.view.setCurrentIndex(panel.proxy.index(possible[-1], 0))
    with qtbot.waitSignal(window.searchFinished, timeout=30000):
        qtbot.mouseClick(panel.confirm_button, Qt.MouseButton.LeftButton)
    assert panel.items()[0].track_id == confirmed.track_id and panel.items()[0].confirmed

    row = next(r for r, i in enumerate(panel.items()) if i.track_id == rejected.track_id)
    panel.view.setCurrentIndex(panel.proxy.index(row, 0))
    with qtbot.waitSignal(window.searchFinished, timeout=30000):
        qtbot.mouseClick(panel.reject_button, Qt.MouseButton.LeftButton)
    assert rejected.track_id not in [i.track_id for i in panel.items()]
    # what the reject changed stays in view after the search that followed it replaced the temporary message
    assert "matches for" in window.statusBar().currentMessage()
    lo, hi = sorted((query, rejected.track_id))
    assert window.change_label.toolTip().startswith(f"Changed: tracks {lo} and {hi} rejected")
    assert window.change_label.isVisible() and window.change_label.text()

    verdicts = {(v.track_a, v.track_b): v.verdict for v in load_verdicts(window.db, [query])}
    assert verdicts[tuple(sorted((query, confirmed.track_id)))] == SAME
    assert verdicts[tuple(sorted((query, rejected.track_id)))] == DIFFERENT


def test_identity_timeline_bar_seeks_the_player(qtbot, lab_window):
    window = lab_window
    panel = window.identities_panel
    identities = panel.model.items()
    assert identities
    encoded = [t for t in get_tracks(window.db, range(1, 1000)).values() if t.descriptor is not None]
    assert sorted(t for i in identities for t in i.track_ids) == sorted(t.id for t in encoded)
    target = identities[-1]
    assert panel.select_identity(target.id)
    qtbot.waitUntil(lambda: len(panel.thumbnails.items()) > 0, timeout=10000)
    assert {t.track_id for t in panel.thumbnails.items()} <= set(target.track_ids)

    bar = panel.timeline.bars[0]
    rect = panel.timeline.bar_rect(bar)
    qtbot.mouseClick(panel.timeline, Qt.MouseButton.LeftButton, pos=rect.center().toPoint())
    player = window.player
    assert player.active_camera == bar.camera_id
    assert bar.start - 1e-3 <= player.position <= bar.end + 1e-3


def test_playback_shortcuts(qtbot, lab_window):
    window = lab_window
    player = window.player
    window.activateWindow()
    player.seek(player.start + 1.0)
    video = player.active_video()
    start = player.position
    qtbot.keyClick(window, Qt.Key.Key_Right)
    assert player.position == pytest.approx(start + 1 / video.fps, abs=1e-3)
    qtbot.keyClick(window, Qt.Key.Key_Left)
    assert player.position == pytest.approx(start, abs=1e-3)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert player.playing
    qtbot.waitUntil(lambda: player.position > start + 0.3, timeout=5000)
    qtbot.keyClick(window, Qt.Key.Key_Space)
    assert not player.playing
    qtbot.keyClick(window, Qt.Key.Key_G)
    assert not player.grid_mode
    assert [v.isVisible() for v in player.views.values()].count(True) == 1


def test_layout_and_options_are_remembered(qtbot, make_window, lab_window, lab_db, tmp_path):
    window = lab_window
    # the offscreen screen is 800x800 and restoring clamps to it: a size that fits (or the minimum width)
    size = (max(700, window.minimumSizeHint().width()), max(600, window.minimumSizeHint().height()))
    window.resize(*size)
    window.grid_action.setChecked(False)
    window.identities_dock.hide()
    window.close()
    again = make_window(lab_db, wait=False)
    # the width may be clamped to the 800-pixel screen again; the default size is 1400x900
    assert again.height() == size[1] and again.width() <= max(size[0], again.minimumSizeHint().width())
    assert not again.player.grid_mode
    assert not again.identities_dock.isVisible()


def test_status_bar_shows_database_and_device(lab_window):
    assert lab_window.db.location in lab_window.db_label.text()
    assert lab_window.device_label.text() == "device: cpu"


def test_a_database_of_another_program_is_refused_with_a_message(qtbot, make_window, tmp_path):
    other = tmp_path / "notes.db"
    other.write_bytes(b"plain text, not a database")
    window = make_window(other, wait=False)
    window.open_database(other)
    qtbot.waitUntil(lambda: "could not be opened" in window.statusBar().currentMessage(), timeout=10000)
    assert "not a SQLite file" in window.statusBar().currentMessage()
    assert window.db is None
    assert other.read_bytes() == b"plain text, not a database"


def test_clicking_empty_space_searches_nothing(qtbot, lab_window):
    window = lab_window
    window.player.seek(window.player.start + 2.0)
    view, _ = _view_with_people(qtbot, window, "cam0")
    found = []
    window.searchFinished.connect(lambda *a: found.append(a))
    corner = QPoint(2, view.height() - 2)
    assert view.person_at(corner.toPointF()) is None
    qtbot.mouseClick(view, Qt.MouseButton.LeftButton, pos=corner)
    qtbot.wait(300)
    assert not found and window.results_panel.query is None


def test_a_search_does_not_wait_behind_slow_background_work(qtbot, lab_window):
    import threading

    window = lab_window
    release = threading.Event()
    window.background.submit(release.wait, 60)  # e.g. the re-clustering of a feedback action on a large site
    try:
        started = window.background.pending
        with qtbot.waitSignal(window.searchFinished, timeout=30000):
            window.search(1)
        assert started == 1 and window.background.pending == 1  # the search came back while the slow job ran
    finally:
        release.set()
        window.background.wait()


def test_the_default_window_shows_every_column_caption_and_the_query_identity(qtbot, lab_window):
    from storage.identities import identities_of_tracks

    window = lab_window  # the default 1400 x 900 window
    panel = window.results_panel
    # before any search the time filter says so instead of showing Qt's default date (2000-01-01)
    assert panel.after_edit.text() == "after a search" and not panel.time_filter.isEnabled()
    query = _click_first_person(qtbot, window)
    identity = identities_of_tracks(window.db, [query]).get(query)
    words = f"identity {identity}" if identity is not None else "in no identity"
    assert f"Track {query}</b> on cam0, {words}" in panel.query_label.text()
    assert panel.time_filter.isEnabled() and "2000" not in panel.after_edit.text() + panel.before_edit.text()
    # the cameras table has room for every column, state included
    window.cameras_dock.raise_()
    table = window.cameras_panel.table
    qtbot.waitUntil(lambda: table.isVisible() and table.viewport().width() > 0, timeout=5000)
    header = table.horizontalHeader()
    last = header.logicalIndex(header.count() - 1)
    assert header.sectionViewportPosition(last) + 40 <= table.viewport().width()
    # an identity's thumbnails show whole, captions included
    window.identities_dock.raise_()
    view = window.identities_panel.thumbnail_view
    qtbot.waitUntil(view.isVisible, timeout=5000)
    assert view.viewport().height() >= view.gridSize().height()
    # a tile's caption never runs past the tile
    tile = window.player.views[_camera_id(window, "cam0")]
    assert tile.caption_rect().right() <= tile.width()
