"""Building the main window: the docks and panels, menus and shortcuts, and the dock layout kept in ``QSettings``."""

from __future__ import annotations

from typing import Optional

from PySide6.QtCore import QByteArray, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QDockWidget, QLabel, QMessageBox

from ui.cameras import CamerasPanel
from ui.identities import IdentitiesPanel
from ui.live import LivePanel
from ui.player import PlayerPanel
from ui.results import ResultsPanel

#: Version of the dock layout ``saveState`` remembers (2: the cameras share the bottom with the identities).
LAYOUT_VERSION = 2


class WindowLayout:
    """Part of :class:`ui.main_window.MainWindow` (a mixin of its methods; the window holds the state)."""

    def _build(self) -> None:
        self.player = PlayerPanel(self)
        self.setCentralWidget(self.player)
        self.cameras_panel = CamerasPanel(self)
        self.results_panel = ResultsPanel(self)
        self.identities_panel = IdentitiesPanel(self)
        self.results_panel.setMinimumWidth(280)
        self.results_dock = self._dock("Matches", self.results_panel, Qt.DockWidgetArea.RightDockWidgetArea)
        self.identities_dock = self._dock("Identities", self.identities_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        # the cameras share the bottom with the identities (a tab each): the player gets the window's whole width
        # and the cameras table room for every column
        self.cameras_dock = self._dock("Cameras", self.cameras_panel, Qt.DockWidgetArea.BottomDockWidgetArea)
        self.tabifyDockWidget(self.cameras_dock, self.identities_dock)
        self.identities_dock.raise_()
        self.live_panel = LivePanel(self)
        self.live_dock = self._dock("Live", self.live_panel, Qt.DockWidgetArea.TopDockWidgetArea)
        self.live_dock.hide()
        self.live_session = None
        self._pending_moment: Optional[tuple[str, float]] = None
        self.live_panel.playbackRequested.connect(self.show_camera_moment)
        self.live_panel.alertActivated.connect(lambda camera, when, _track: self.show_camera_moment(camera, when))
        self.live_panel.alertRaised.connect(self._alert_raised)

        self.player.personClicked.connect(lambda track, _sighting: self.search(track))
        self.player.overlayWanted.connect(self._load_overlay)
        self.results_panel.resultActivated.connect(self._show_result)
        self.results_panel.searchRequested.connect(self.search)
        self.results_panel.feedbackGiven.connect(self.give_feedback)
        self.identities_panel.seekRequested.connect(self.player.show_moment)
        self.identities_panel.searchRequested.connect(self.search)
        self.identities_panel.thumbnailsWanted.connect(self._load_identity_thumbnails)
        self.identities_panel.identitySelected.connect(self._identity_selected)
        self.identities_panel.labelRequested.connect(self.label_identity)
        self.identities_panel.mergeRequested.connect(self.merge_identities)
        self.identities_panel.splitRequested.connect(self.split_identity)
        self.identities_panel.exportRequested.connect(self.export_evidence)
        self.player.positionChanged.connect(self.identities_panel.set_playhead)
        self._progress.connect(lambda text: self.statusBar().showMessage(text))
        self.cameras_panel.addVideosRequested.connect(self.add_videos)
        self.cameras_panel.cancelRequested.connect(self.cancel_ingest)
        self.cameras_panel.cameraActivated.connect(lambda cid: self.player.show_moment(cid, self.player.position))

        self._build_menus()
        #: The last change a feedback action made, kept in view after the next search's message replaces the
        #: temporary one (the full text is its tooltip).
        self.unconfirmed_box: Optional[QMessageBox] = None  # the warning after exporting unconfirmed links
        self.change_label = QLabel("", self)
        self.change_label.setObjectName("lastChange")
        self.change_label.setMaximumWidth(520)
        self.statusBar().addPermanentWidget(self.change_label)
        self.db_label = QLabel("no database", self)
        self.device_label = QLabel(f"device: {self.services.device}", self)
        self.statusBar().addPermanentWidget(self.db_label)
        self.statusBar().addPermanentWidget(self.device_label)
        for runner in (self.jobs, self.background):
            runner.busyChanged.connect(
                lambda _busy: self.setCursor(
                    Qt.CursorShape.BusyCursor
                    if self.jobs.pending or self.background.pending
                    else Qt.CursorShape.ArrowCursor
                )
            )
        self.resize(1400, 900)
        # the player gets most of the window (a saved layout, restored later, wins)
        self.resizeDocks([self.results_dock], [380], Qt.Orientation.Horizontal)
        self.resizeDocks([self.identities_dock], [250], Qt.Orientation.Vertical)

    def _dock(self, title: str, widget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(f"{title.lower()}-dock")
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _action(self, menu, text: str, slot, shortcut=None, tip: str = "", checkable: bool = False) -> QAction:
        action = QAction(text, self)
        if shortcut is not None:
            action.setShortcuts(shortcut if isinstance(shortcut, list) else [QKeySequence(shortcut)])
        action.setStatusTip(tip)
        action.setCheckable(checkable)
        (action.toggled if checkable else action.triggered).connect(slot)
        menu.addAction(action)
        self.addAction(action)  # shortcuts work whichever panel has the focus
        return action

    def _build_menus(self) -> None:
        bar = self.menuBar()
        file = bar.addMenu("&File")
        self._action(
            file, "&New database…", self.new_database, QKeySequence.StandardKey.New, "Create an empty database"
        )
        self._action(
            file,
            "&Open database…",
            self.choose_database,
            QKeySequence.StandardKey.Open,
            "Open another reid-app database",
        )
        self.add_action = self._action(
            file, "&Add videos…", self.add_videos, "Ctrl+I", "Ingest video files, one per camera"
        )
        self._action(
            file,
            "Search by &image…",
            self.choose_query_image,
            "Ctrl+Shift+F",
            "Search every camera for the person in an image file (a crop of one person)",
        )
        self.watch_action = self._action(
            file,
            "&Watch live cameras…",
            self.choose_site,
            "Ctrl+L",
            "Open a site file (TOML) and watch its live cameras: live view, recording, watchlist alerts",
        )
        self.stop_watch_action = self._action(
            file, "S&top watching", self.stop_watching, None, "Stop the live cameras (the last sightings are stored)"
        )
        self.stop_watch_action.setEnabled(False)
        file.addSeparator()
        self._action(file, "&Quit", self.close, QKeySequence.StandardKey.Quit)

        edit = bar.addMenu("&Edit")
        self.undo_action = self._action(
            edit,
            "&Undo last feedback",
            self.undo_feedback,
            QKeySequence.StandardKey.Undo,
            "Take back the newest confirm, reject, merge or split",
        )
        edit.addSeparator()
        self._action(
            edit,
            "Mark &overlapping cameras…",
            self.edit_overlaps,
            None,
            "Say which cameras see a common area (one person may be in them at the same instant)",
        )

        site = bar.addMenu("&Site")
        self.adapt_action = self._action(
            site,
            "&Adapt model…",
            self.adapt_model,
            None,
            "Fine-tune the re-id model on this site's own footage, without labels (a new, checked model version)",
        )
        self._action(
            site, "Model &versions…", self.show_model_versions, None, "The re-id model versions; switch or roll back"
        )

        play = bar.addMenu("&Playback")
        self._action(play, "Play / pause", self.player.toggle_play, "Space")
        self._action(play, "Next frame", lambda: self.player.step(1), [QKeySequence("Right"), QKeySequence(".")])
        self._action(play, "Previous frame", lambda: self.player.step(-1), [QKeySequence("Left"), QKeySequence(",")])
        self._action(play, "Forward 5 s", lambda: self.player.jump(5), "Shift+Right")
        self._action(play, "Back 5 s", lambda: self.player.jump(-5), "Shift+Left")
        self._action(play, "Go to start", lambda: self.player.seek(self.player.start), "Home")
        self._action(play, "Go to end", lambda: self.player.seek(self.player.end), "End")

        view = bar.addMenu("&View")
        self.grid_action = self._action(
            view,
            "All cameras in a grid",
            self.player.set_grid_mode,
            "G",
            "Show every camera, or only the active one",
            checkable=True,
        )
        self.grid_action.setChecked(True)
        self.skeleton_action = self._action(
            view, "Skeletons", self.player.set_skeletons, "K", "Draw COCO-17 keypoints over people", checkable=True
        )
        self.skeleton_action.setChecked(True)
        view.addSeparator()
        for dock in (self.cameras_dock, self.results_dock, self.identities_dock, self.live_dock):
            view.addAction(dock.toggleViewAction())
        view.addSeparator()
        self._action(view, "Refresh", self.refresh, QKeySequence.StandardKey.Refresh)

        matches = bar.addMenu("&Matches")
        self._action(matches, "Same person", lambda: self.results_panel.feedback_on_selected("same"), "Ctrl+Y")
        self._action(matches, "Not this person", lambda: self.results_panel.feedback_on_selected("different"), "Ctrl+D")

        help_menu = bar.addMenu("&Help")
        self._action(help_menu, "About reid-app", self._about)

    def _restore_layout(self) -> None:
        geometry = self.settings.value("window/geometry")
        state = self.settings.value("window/state")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state, LAYOUT_VERSION)  # a layout saved by an older version is not restored
        grid = self.settings.value("player/grid", True)
        self.grid_action.setChecked(grid not in (False, "false"))
        skeletons = self.settings.value("player/skeletons", True)
        self.skeleton_action.setChecked(skeletons not in (False, "false"))

    def save_layout(self) -> None:
        """Remember the window geometry, docks and player options."""
        self.settings.setValue("window/geometry", self.saveGeometry())
        self.settings.setValue("window/state", self.saveState(LAYOUT_VERSION))
        self.settings.setValue("player/grid", self.grid_action.isChecked())
        self.settings.setValue("player/skeletons", self.skeleton_action.isChecked())
        if self.db is not None:  # a URL with a password is never written to the settings file
            if self.db.location == self.db.url:
                self.settings.setValue("database/last", self.db.location)
            else:
                self.settings.remove("database/last")
        self.settings.sync()
