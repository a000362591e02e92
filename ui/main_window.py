"""The main window: the player in the middle, cameras on the left, search results on the right, identities
below; menus, keyboard shortcuts, a status bar with the database and the device, layout kept in ``QSettings``.

Investigations happen here: click a person (or open an image) to search, confirm/reject matches (a conflicting
verdict is asked about, not silently applied), name, merge and split identities, undo (Ctrl+Z), mark overlapping
cameras and export evidence; every change is said in the status bar.

Every database read, search, feedback and ingest runs off the GUI thread (:mod:`ui.jobs`): reads and searches on
one queue, slow work (feedback and its re-clustering, exports, starting live cameras) on another, so a search never
waits behind it.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QByteArray, QSettings, Qt, Signal
from PySide6.QtGui import QAction, QCloseEvent, QKeySequence
from PySide6.QtWidgets import QApplication, QDockWidget, QFileDialog, QLabel, QMainWindow, QMessageBox

from pipelines.ingest.choices import IngestChoices
from ui.cameras import VIDEO_FILTER, CamerasPanel, IngestDialog, OverlapDialog
from ui.identities import IdentitiesPanel
from ui.item_models import ResultItem, ThumbnailItem
from ui.jobs import IngestWorker, JobRunner
from ui.live import LivePanel
from ui.player import PlayerPanel
from ui.results import QueryInfo, ResultsPanel

#: Version of the dock layout ``saveState`` remembers (2: the cameras share the bottom with the identities).
LAYOUT_VERSION = 2

log = logging.getLogger(__name__)

#: Matches fetched per search; the gallery filters them by camera and time.
SEARCH_TOP_K = 50


@dataclass
class AppServices:
    """What the composition root (``reid_app.cli``) gives the app.

    Attributes:
        prepare_ingest: ``IngestChoices -> PreparedIngest`` (loads the models of an ingest).
        device: where searches run (``cpu`` or ``cuda:N``), shown in the status bar.
        default_choices: the ``IngestChoices`` the "Add videos" dialog starts from.
        scorer_kind: ``auto``, ``exact`` or ``ann`` (``pipelines.matching.similarity.make_scorer``).
        load_query_encoder: ``Database -> ReIDEncoder`` for searches by an image file (the database's model);
            None: the app cannot search by image.
        start_watch: ``(site file, database location, IngestChoices, on_alert) -> live session`` (see
            ``reid_app.live_session.LiveSession``; slow: loads the models); None: the app cannot watch live cameras.
    """

    prepare_ingest: Callable
    device: str = "cpu"
    default_choices: IngestChoices = field(default_factory=IngestChoices)
    scorer_kind: str = "auto"
    load_query_encoder: Optional[Callable] = None
    start_watch: Optional[Callable] = None


# -- background work (no Qt) ---------------------------------------------------------------------------------


def _open(path: str):
    from pipelines.matching.service import open_investigation

    return open_investigation(path)


def _overview(db):
    from pipelines.matching.service import overview

    return overview(db)


def _search(searcher, db, track_id: int):
    from pipelines.matching.service import identities_of_tracks, search_track

    found = search_track(searcher, db, track_id, SEARCH_TOP_K)
    q = found.query
    query = QueryInfo(
        track_id,
        q.camera,
        q.first_timestamp,
        q.last_timestamp,
        found.query_thumbnail,
        identities_of_tracks(db, [track_id]).get(track_id),
    )
    return query, [ResultItem.from_result(r) for r in found.results], found.elapsed_ms


def _identity_thumbnails(db, identity_id: int, track_ids):
    from pipelines.matching.service import identity_thumbnails

    return identity_id, [
        ThumbnailItem(t.track_id, t.camera, t.timestamp, t.jpeg) for t in identity_thumbnails(db, track_ids)
    ]


IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp);;All files (*)"


def _asking(action: Callable, *args):
    """Run a feedback action; a refusal the user can be asked about comes back as the ``VerdictConflict``
    (the result) instead of an error."""
    from pipelines.matching.service import VerdictConflict

    try:
        return action(*args)
    except VerdictConflict as conflict:
        return conflict


def _feedback(db, verdict: str, track_a: int, track_b: int, resolution: str = "", cameras=()):
    """``resolution``: "" (plain), ``replace`` (replace the earlier verdict) or ``overlap`` (mark ``cameras``
    (names) as overlapping first)."""
    from pipelines.matching import service

    if resolution == "replace":
        return _asking(service.replace_verdict, db, track_a, track_b, verdict)
    if resolution == "overlap":
        service.set_camera_overlap(db, list(cameras), True)
    return _asking(service.give_verdict, db, verdict, track_a, track_b)


def _identity_action(name: str, db, *args):
    from pipelines.matching import service

    return _asking(getattr(service, name), db, *args)


def _label(db, identity_id: int, name: str, note: str):
    from pipelines.matching.service import label

    return label(db, identity_id, name or None, note)


def _export(db, identity_id: int, folder: str, clips: bool, progress: Callable[[str], None], redact: bool = True):
    from pipelines.matching.service import export_identity

    return export_identity(db, identity_id, Path(folder), clips=clips, on_progress=progress, redact=redact)


def _overlap(db, cameras, overlapping: bool):
    from pipelines.matching.service import camera_overlaps, set_camera_overlap

    report = set_camera_overlap(db, cameras, overlapping)
    return report, camera_overlaps(db)


class _EncoderCache:
    """The image-query encoder of the open database, loaded on first use (seconds) and kept."""

    def __init__(self, loader: Callable):
        self.loader = loader
        self.encoder = None
        self.db = None

    def get(self, db):
        if self.encoder is None or self.db is not db:
            self.encoder, self.db = self.loader(db), db
        return self.encoder


def _search_image(searcher, db, image_path: str, encoders: _EncoderCache):
    from pipelines.matching.service import search_image

    encoder = encoders.get(db)
    found = search_image(searcher, image_path, encoder, SEARCH_TOP_K)
    try:
        picture = Path(image_path).read_bytes()
    except OSError:
        picture = None
    query = QueryInfo(None, Path(image_path).name, 0.0, 0.0, picture)
    return query, [ResultItem.from_result(r) for r in found.results], found.elapsed_ms


class MainWindow(QMainWindow):
    """The reid-app main window.

    Args:
        services: see :class:`AppServices`.
        settings: where the layout and last database are remembered (default: the user's ``QSettings``).

    Signals:
        overviewLoaded(): cameras and identities were (re)loaded from the database.
        searchFinished(query_track_id, results): a search's results are in the gallery.
    """

    overviewLoaded = Signal()
    searchFinished = Signal(int, int)
    #: A change made by feedback, naming, undo or overlap marking, as said in the status bar.
    changeMade = Signal(str)
    #: An evidence export finished: its ``EvidenceReport``.
    exportFinished = Signal(object)
    _progress = Signal(str)

    def __init__(self, services: AppServices, settings: Optional[QSettings] = None):
        super().__init__()
        self.services = services
        self.settings = settings or QSettings()
        self.db = None
        self.searcher = None
        self.ingest_models: dict[str, str] = {}
        self.cameras = []
        self.model_source: Optional[str] = None
        self.ingest_worker: Optional[IngestWorker] = None
        self.last_summaries: list = []
        self.overlaps: dict[str, list[str]] = {}
        self.labels: dict[int, tuple[str, str]] = {}
        self._encoders = _EncoderCache(services.load_query_encoder) if services.load_query_encoder else None
        self.jobs = JobRunner(self)
        #: Slow work (feedback and its re-clustering, overlaps, evidence export, starting live cameras) runs on a
        #: queue of its own, so that searches and reads never wait behind it.
        self.background = JobRunner(self)
        self.setWindowTitle("reid-app")
        self._build()
        self._restore_layout()

    # -- construction --------------------------------------------------------------------------------------

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

    # -- layout memory -------------------------------------------------------------------------------------

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

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.ingest_worker is not None:
            answer = QMessageBox.question(
                self,
                "Ingest running",
                "An ingest is running. Stop it and quit? Unfinished videos are completed when you add them again.",
            )
            if answer != QMessageBox.StandardButton.Yes:
                event.ignore()
                return
            self.ingest_worker.cancel()
            self.ingest_worker.wait()
        self.stop_watching()
        self.save_layout()
        self.player.shutdown()
        self.jobs.wait()
        self.background.wait()
        if self.db is not None:
            self.db.close()
        event.accept()

    # -- database ------------------------------------------------------------------------------------------

    def open_database(self, path) -> None:
        """Open (or create) the database at ``path`` in the background; errors are shown, nothing is lost."""
        if self.ingest_worker is not None:
            self._warn("An ingest is running; wait for it or cancel it before switching databases.")
            return
        self.statusBar().showMessage(f"Opening {path}…")
        self.jobs.submit(
            _open,
            str(path),
            on_done=self._database_opened,
            on_error=lambda msg: self._warn(f"The database could not be opened: {msg}"),
        )

    def _database_opened(self, db) -> None:
        from pipelines.matching.service import make_searcher

        if self.db is not None:
            self.db.close()
        self.db = db
        self.searcher = make_searcher(db, self.services.scorer_kind, self.services.device)
        self.db_label.setText(f"database: {db.location}")
        self.setWindowTitle(f"reid-app — {Path(db.location).name if '://' not in db.location else db.location}")
        self.results_panel.model.set_items([])
        self.statusBar().showMessage(f"Opened {db.location}", 5000)
        self.refresh()

    def new_database(self) -> None:
        path, _ = QFileDialog.getSaveFileName(self, "New database", "reid.db", "reid-app databases (*.db)")
        if path:
            self.open_database(path)

    def choose_database(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Open database", "", "reid-app databases (*.db);;All files (*)")
        if path:
            self.open_database(path)

    def refresh(self) -> None:
        """Reload cameras and identities from the database."""
        if self.db is not None:
            self.jobs.submit(_overview, self.db, on_done=self._show_overview, on_error=self._warn)

    def _show_overview(self, overview) -> None:
        cameras, identities, model_source = overview.cameras, overview.identities, overview.model_source
        self.cameras = cameras
        self.model_source = model_source
        self.ingest_models = overview.ingest_models
        self.overlaps = overview.overlaps
        self.labels = overview.labels
        self.cameras_panel.set_cameras(cameras)
        self.player.set_cameras(cameras)
        videos = [v for c in cameras for v in c.videos]
        span = (min(v.start_time for v in videos), max(v.end_time for v in videos)) if videos else (0.0, 1.0)
        coverage = {c.id: [(v.start_time, v.end_time) for v in c.videos] for c in cameras}
        self.identities_panel.set_identities(
            identities, {c.name: c.id for c in cameras}, span, overview.labels, coverage
        )
        if self.identities_panel.selected() is None:
            self.player.set_person_ranges([])
        if not cameras:
            self.statusBar().showMessage("This database is empty: File ▸ Add videos… ingests footage.")
            self.cameras_dock.raise_()  # where Add videos… is
        if self._pending_moment is not None:
            camera, when = self._pending_moment
            self._pending_moment = None
            entry = next((c for c in cameras if c.name == camera), None)
            if entry is not None:
                self.player.show_moment(entry.id, when)
        self.overviewLoaded.emit()

    def _load_overlay(self, video_id: int) -> None:
        from pipelines.matching.service import video_overlay

        if self.db is not None:
            self.jobs.submit(video_overlay, self.db, video_id, on_done=self.player.set_overlay, on_error=self._warn)

    # -- search and feedback -------------------------------------------------------------------------------

    def search(self, track_id: int) -> None:
        """Search every camera for the person of track ``track_id``; results fill the gallery."""
        if self.searcher is None:
            return
        self.results_dock.show()
        self.results_dock.raise_()
        self.results_panel.set_busy(f"Searching every camera for track {track_id}…")
        self.player.highlight_tracks([track_id])
        self.jobs.submit(
            _search,
            self.searcher,
            self.db,
            track_id,
            on_done=self._show_results,
            on_error=lambda msg: self.results_panel.set_busy(f"Search failed: {msg}"),
        )

    def _show_results(self, found) -> None:
        query, items, elapsed_ms = found
        self.results_panel.show_results(query, items, elapsed_ms)
        what = f"track {query.track_id}" if query.track_id is not None else f"image {query.camera}"
        self.player.highlight_tracks(
            ([query.track_id] if query.track_id is not None else []) + [i.track_id for i in items if i.confirmed]
        )
        self.statusBar().showMessage(f"{len(items)} matches for {what} in {elapsed_ms:.0f} ms", 8000)
        self.searchFinished.emit(-1 if query.track_id is None else query.track_id, len(items))

    def choose_query_image(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Search by image (a crop of one person)", "", IMAGE_FILTER)
        if path:
            self.search_image(path)

    def search_image(self, image_path: str) -> None:
        """Search every camera for the person in ``image_path`` (encoded by the database's re-id model)."""
        if self.searcher is None:
            return
        if self._encoders is None:
            self._warn("This window cannot load a re-id model, so it cannot search by image.")
            return
        self.results_dock.show()
        self.results_dock.raise_()
        self.results_panel.set_busy(f"Searching every camera for the person in {Path(image_path).name}…")
        self.jobs.submit(
            _search_image,
            self.searcher,
            self.db,
            str(image_path),
            self._encoders,
            on_done=self._show_results,
            on_error=lambda msg: self.results_panel.set_busy(f"Search failed: {msg}"),
        )

    def _identity_selected(self, identity_id: int, track_ids: list, bars: list) -> None:
        self.player.highlight_tracks(track_ids)
        self.player.set_person_ranges(bars)

    def _show_result(self, camera_id: int, timestamp: float, track_id: int) -> None:
        query = self.results_panel.query
        self.player.highlight_tracks([track_id] + ([query.track_id] if query else []))
        self.player.show_moment(camera_id, timestamp)

    def give_feedback(
        self, verdict: str, query_track: int, result_track: int, resolution: str = "", cameras=()
    ) -> None:
        """Record that two tracks are the same person (``same``) or not (``different``), then search again.
        A verdict that conflicts with an earlier one, or a confirmation of two tracks seen at one instant on two
        cameras, is asked about (:meth:`_ask_about`); ``resolution`` is the answer (``replace``/``overlap``)."""
        if self.db is None:
            return
        word = "the same person as" if verdict == "same" else "not the same person as"
        self.statusBar().showMessage(f"Recording: track {result_track} is {word} track {query_track}…")

        def done(result):
            if self._ask_about(
                result, lambda answer: self.give_feedback(verdict, query_track, result_track, answer, result.cameras)
            ):
                return
            self._changed(result, f"track {result_track} is {word} track {query_track}")
            self.search(query_track)

        self.background.submit(
            _feedback,
            self.db,
            verdict,
            query_track,
            result_track,
            resolution,
            tuple(cameras),
            on_done=done,
            on_error=lambda msg: self._warn(f"Not recorded: {msg}"),
        )

    def _ask_about(self, result, retry: Optional[Callable[[str], None]] = None) -> bool:
        """When ``result`` is a ``VerdictConflict``, ask the user what to do and run ``retry(answer)`` if they
        choose to go on (without ``retry``: only say why nothing changed); True when it was a conflict."""
        from pipelines.matching.service import VerdictConflict

        if not isinstance(result, VerdictConflict):
            return False
        self.statusBar().showMessage(f"Not recorded: {result}", 10000)
        if retry is None:
            self._warn(f"Not recorded: {result}")
            return True
        if result.kind == "contradiction":
            earlier = "the same person" if result.earlier == "same" else "different people"
            question = (
                f"Tracks {result.track_a} and {result.track_b} were marked as {earlier} earlier.\n\n"
                f"Replace that verdict? (Edit ▸ Undo takes it back.)"
            )
            answer = "replace"
        elif result.kind == "simultaneous" and result.cameras:
            question = (
                f"Tracks {result.track_a} and {result.track_b} are seen at the same moment on "
                f"{result.cameras[0]} and {result.cameras[1]}. One person can be in both only if these "
                f"cameras see a common area.\n\nMark {result.cameras[0]} and {result.cameras[1]} as "
                f"overlapping and record it?"
            )
            answer = "overlap"
        else:
            self._warn(f"Not recorded: {result}")
            return True
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "reid-app: conflicting feedback",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(
            lambda code: (
                retry(answer)
                if code == QMessageBox.StandardButton.Yes
                else self.statusBar().showMessage("Nothing changed.", 5000)
            )
        )
        self.conflict_box = box
        box.open()
        return True

    def _changed(self, report, what: str) -> None:
        """Say what an action changed (``report.changes`` of a ``ClusteringReport``), then reload."""
        changes = "; ".join(getattr(report, "changes", []) or [what])
        identities = getattr(report, "identities", None)
        text = f"Changed: {changes}" + (f". {identities} identities now." if identities is not None else ".")
        self.statusBar().showMessage(text, 15000)
        metrics = self.change_label.fontMetrics()
        self.change_label.setText(
            metrics.elidedText(text, Qt.TextElideMode.ElideRight, self.change_label.maximumWidth())
        )
        self.change_label.setToolTip(text)
        self.changeMade.emit(text)
        self.refresh()

    def undo_feedback(self) -> None:
        """Take back the newest feedback action (confirm, reject, forget, merge, split) not yet undone."""
        if self.db is None:
            return
        query = self.results_panel.query

        def done(report):
            self._changed(report, "undone")
            if query is not None and query.track_id is not None:
                self.search(query.track_id)

        self.background.submit(
            _identity_action, "undo", self.db, on_done=done, on_error=lambda msg: self._warn(f"Nothing undone: {msg}")
        )

    def label_identity(self, identity_id: int, name: str, note: str) -> None:
        """Name identity ``identity_id`` ("" removes the name) with a note."""
        if self.db is not None:
            self.background.submit(
                _label,
                self.db,
                identity_id,
                name,
                note,
                on_done=lambda line: self._changed(None, line),
                on_error=lambda msg: self._warn(f"Not named: {msg}"),
            )

    def merge_identities(self, identity_a: int, identity_b: int) -> None:
        """Merge two identities into one person (their tracks confirmed as one)."""
        if self.db is not None:
            self.background.submit(
                _identity_action,
                "merge",
                self.db,
                identity_a,
                identity_b,
                on_done=lambda r: self._ask_about(r) or self._changed(r, "merged"),
                on_error=lambda msg: self._warn(f"Not merged: {msg}"),
            )

    def split_identity(self, identity_id: int, track_ids: list) -> None:
        """Split ``track_ids`` off identity ``identity_id`` into an identity of their own."""
        if self.db is not None:
            self.background.submit(
                _identity_action,
                "split",
                self.db,
                identity_id,
                list(track_ids),
                on_done=lambda r: self._ask_about(r) or self._changed(r, "split"),
                on_error=lambda msg: self._warn(f"Not split: {msg}"),
            )

    def export_evidence(self, identity_id: int, folder: str, clips: bool, redact: bool = True) -> None:
        """Export identity ``identity_id``'s evidence into ``folder`` (case report, crops, manifest; clips;
        ``redact``: bystanders blurred)."""
        if self.db is None:
            return
        self.statusBar().showMessage(f"Exporting the evidence of identity {identity_id} to {folder}…")

        def done(report):
            notes = f" ({'; '.join(report.notes)})" if report.notes else ""
            self.statusBar().showMessage(
                f"Exported identity {identity_id}: case report {report.html_path}, "
                f"{len(report.clips)} clips, manifest with SHA-256{notes}",
                20000,
            )
            if report.unconfirmed_warning:  # said where it cannot be missed, as the report's first page does
                box = QMessageBox(
                    QMessageBox.Icon.Warning,
                    "reid-app",
                    f"Identity {identity_id} exported. {report.unconfirmed_warning}.",
                    QMessageBox.StandardButton.Ok,
                    self,
                )
                box.setWindowModality(Qt.WindowModality.WindowModal)
                self.unconfirmed_box = box
                box.open()
            self.exportFinished.emit(report)

        self.background.submit(
            _export,
            self.db,
            identity_id,
            folder,
            clips,
            self._progress.emit,
            redact,
            on_done=done,
            on_error=lambda msg: self._warn(f"The evidence could not be exported: {msg}"),
        )

    def edit_overlaps(self) -> None:
        """Ask which cameras see a common area and store it."""
        if self.db is None or len(self.cameras) < 2:
            self._warn("Overlapping cameras need a database with two or more cameras.")
            return
        dialog = OverlapDialog([c.name for c in self.cameras], self.overlaps, self)
        if dialog.exec():
            self.set_overlap(dialog.chosen(), dialog.overlapping())

    def set_overlap(self, cameras, overlapping: bool) -> None:
        """Mark (or unmark) ``cameras`` (names) as overlapping; identities are re-clustered."""
        if self.db is None:
            return
        word = "overlapping" if overlapping else "not overlapping"

        def done(result):
            report, self.overlaps = result
            self._changed(report, f"cameras {', '.join(cameras)} marked as {word}")

        self.background.submit(
            _overlap,
            self.db,
            list(cameras),
            overlapping,
            on_done=done,
            on_error=lambda msg: self._warn(f"Not changed: {msg}"),
        )

    def _load_identity_thumbnails(self, identity_id: int) -> None:
        identity = self.identities_panel.selected()
        if self.db is None or identity is None:
            return
        self.jobs.submit(
            _identity_thumbnails,
            self.db,
            identity_id,
            list(identity.track_ids),
            on_done=lambda r: self.identities_panel.set_thumbnails(*r),
            on_error=self._warn,
        )

    # -- ingest --------------------------------------------------------------------------------------------

    def add_videos(self) -> None:
        """Ask for video files and the camera names, then ingest them."""
        if self.db is None or self.ingest_worker is not None:
            return
        paths, _ = QFileDialog.getOpenFileNames(self, "Add videos (one per camera)", "", VIDEO_FILTER)
        if not paths:
            return
        dialog = IngestDialog([Path(p) for p in paths], self._default_choices(), self)
        if dialog.exec():
            self.start_ingest([Path(p) for p in paths], dialog.cameras(), dialog.result_choices())

    def _default_choices(self):

        choices = self.services.default_choices
        if self.model_source and Path(self.model_source).exists() and choices.reid is None:
            # new footage must be encoded by the model the database was made with, or it cannot be matched
            choices = replace(choices, reid=self.model_source)
        used = self.ingest_models
        detector = used.get("detector")
        if detector and (Path(detector).exists() or "/" not in detector):  # the detector the database was built with
            choices = replace(choices, detector=detector, pose=used.get("pose", choices.pose))
        return choices

    def start_ingest(self, paths, cameras, choices) -> None:
        """Ingest ``paths`` as ``cameras`` with ``choices`` (``IngestChoices``) on a worker thread."""
        from pipelines.ingest.files import IngestJob

        if self.db is None or self.ingest_worker is not None:
            return
        jobs = [IngestJob(Path(p), name) for p, name in zip(paths, cameras)]
        worker = IngestWorker(self.services.prepare_ingest, choices, self.db, jobs, self)
        panel = self.cameras_panel
        worker.cameraStarted.connect(panel.camera_started)
        worker.cameraAdvanced.connect(panel.camera_advanced)
        worker.cameraFinished.connect(panel.camera_finished)
        worker.message.connect(panel.show_message)
        worker.failed.connect(self._ingest_failed)
        worker.completed.connect(self._ingest_completed)
        worker.finished.connect(self._ingest_thread_ended)
        panel.begin_ingest([j.camera for j in jobs])
        self.add_action.setEnabled(False)
        self.ingest_worker = worker
        self.statusBar().showMessage(f"Ingesting {len(jobs)} videos…")
        worker.start()

    def cancel_ingest(self) -> None:
        if self.ingest_worker is not None:
            self.ingest_worker.cancel()

    def _ingest_failed(self, message: str) -> None:
        self.cameras_panel.show_message(f"Ingest failed: {message}")
        self.cameras_panel.fail_waiting(message)
        self._warn(f"The ingest could not run: {message}")

    def _ingest_completed(self, summaries, report) -> None:
        self.last_summaries = list(summaries)
        counts = {}
        for s in summaries:
            counts[s.status] = counts.get(s.status, 0) + 1
        parts = [f"{n} {status}" for status, n in sorted(counts.items())]
        tracks = sum(s.tracks for s in summaries)
        text = f"Ingest finished: {', '.join(parts) or 'nothing to do'}; {tracks} tracks."
        if report is not None:
            text += f" {report.identities} identities, {report.multi_camera} seen by several cameras."
        if counts.get("interrupted"):
            text += " Add the same videos again to complete the unfinished ones."
        self.cameras_panel.show_message(text)
        self.statusBar().showMessage(text, 10000)

    def _ingest_thread_ended(self) -> None:
        worker, self.ingest_worker = self.ingest_worker, None
        if worker is not None:
            worker.deleteLater()
        self.cameras_panel.set_ingesting(False)
        self.add_action.setEnabled(True)
        self.refresh()

    # -- live cameras --------------------------------------------------------------------------------------

    def choose_site(self) -> None:
        path, _ = QFileDialog.getOpenFileName(self, "Watch live cameras: site file", "", "Site files (*.toml)")
        if path:
            self.start_watching(path)

    def start_watching(self, site_path: str) -> None:
        """Watch the live cameras of ``site_path`` into the open database (models load in the background)."""
        if self.db is None or self.live_session is not None or self.services.start_watch is None:
            if self.services.start_watch is None:
                self._warn("This app was started without live-camera support.")
            return
        self.watch_action.setEnabled(False)
        self.statusBar().showMessage(f"Starting the live cameras of {site_path}…")
        self.background.submit(
            self.services.start_watch,
            site_path,
            self.db.url,
            self._default_choices(),
            self.live_panel.alertRaised.emit,
            on_done=self._watching,
            on_error=lambda msg: (
                self.watch_action.setEnabled(True),
                self._warn(f"The live cameras could not start: {msg}"),
            ),
        )

    def _watching(self, session) -> None:
        self.live_session = session
        self.live_panel.watch(session)
        self.live_dock.show()
        self.live_dock.raise_()
        self.resizeDocks([self.live_dock], [max(360, self.height() // 2)], Qt.Orientation.Vertical)
        self.stop_watch_action.setEnabled(True)
        if not self.live_panel.alerts.count():  # an alert raised while the models loaded keeps the status bar
            self.statusBar().showMessage(f"Watching {len(session.cameras)} live camera(s)", 5000)

    def stop_watching(self) -> None:
        """Stop the live cameras (their last sightings are stored, their recordings closed)."""
        session, self.live_session = self.live_session, None
        if session is None:
            return
        self.live_panel.watch(None)
        self.stop_watch_action.setEnabled(False)
        self.watch_action.setEnabled(True)
        session.stop()
        self.refresh()

    def show_camera_moment(self, camera: str, timestamp: float) -> None:
        """Play ``camera`` from ``timestamp`` (epoch seconds): the cameras are reloaded first, so that the newest
        recorded segments are there."""
        self._pending_moment = (camera, timestamp)
        self.refresh()

    def _alert_raised(self, payload: dict) -> None:

        self.statusBar().showMessage(
            f"ALERT: {payload['name']} on {payload['camera']} (similarity "
            f"{payload['similarity']:.2f}); double-click it in Live to see it",
            15000,
        )
        self.live_dock.show()
        QApplication.alert(self)  # the taskbar's notification when the window is in the background

    # -- messages ------------------------------------------------------------------------------------------

    def _warn(self, message: str) -> None:
        self.statusBar().showMessage(message, 10000)
        box = QMessageBox(QMessageBox.Icon.Warning, "reid-app", message, QMessageBox.StandardButton.Ok, self)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.open()  # not exec(): never blocks the event loop (or a test)

    def _about(self) -> None:

        try:
            installed = version("reid-app")
        except PackageNotFoundError:  # run from a tree that was never installed
            installed = "(not installed)"
        QMessageBox.about(
            self,
            "About reid-app",
            f"<b>reid-app {installed}</b><p>Multi-camera person re-identification: click a person, "
            f"see everywhere they appear.</p><p>Database: {self.db.location if self.db else 'none'}"
            f"<br>Device: {self.services.device}</p>",
        )
