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
from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Callable, Optional

from PySide6.QtCore import QSettings, Qt, Signal
from PySide6.QtGui import QCloseEvent
from PySide6.QtWidgets import QFileDialog, QMainWindow, QMessageBox

from pipelines.ingest.choices import IngestChoices
from ui import app_calls
from ui.feedback_actions import FeedbackActions
from ui.ingest_actions import IngestActions
from ui.jobs import IngestWorker, JobRunner
from ui.live_actions import LiveActions
from ui.site_model_actions import SiteModelActions
from ui.window_layout import WindowLayout

log = logging.getLogger(__name__)


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


IMAGE_FILTER = "Images (*.jpg *.jpeg *.png *.bmp *.webp);;All files (*)"


class MainWindow(WindowLayout, FeedbackActions, IngestActions, LiveActions, SiteModelActions, QMainWindow):
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
        self.site_worker = None  # adapting the model or switching versions (ui.site_model_actions)
        self.last_summaries: list = []
        self.overlaps: dict[str, list[str]] = {}
        self.labels: dict[int, tuple[str, str]] = {}
        self._encoders = app_calls.EncoderCache(services.load_query_encoder) if services.load_query_encoder else None
        self.jobs = JobRunner(self)
        #: Slow work (feedback and its re-clustering, overlaps, evidence export, starting live cameras) runs on a
        #: queue of its own, so that searches and reads never wait behind it.
        self.background = JobRunner(self)
        self.setWindowTitle("reid-app")
        self._build()
        self._restore_layout()

    # -- construction --------------------------------------------------------------------------------------

    # -- layout memory -------------------------------------------------------------------------------------

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.site_worker is not None:
            self.site_worker.cancel()  # training and re-encoding resume later
            self.site_worker.wait()
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
            app_calls.open_db,
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
            self.jobs.submit(app_calls.overview, self.db, on_done=self._show_overview, on_error=self._warn)

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
            app_calls.search_track,
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
            app_calls.search_image,
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
            app_calls.export,
            self.db,
            identity_id,
            folder,
            clips,
            self._progress.emit,
            redact,
            on_done=done,
            on_error=lambda msg: self._warn(f"The evidence could not be exported: {msg}"),
        )

    def _load_identity_thumbnails(self, identity_id: int) -> None:
        identity = self.identities_panel.selected()
        if self.db is None or identity is None:
            return
        self.jobs.submit(
            app_calls.identity_thumbnails,
            self.db,
            identity_id,
            list(identity.track_ids),
            on_done=lambda r: self.identities_panel.set_thumbnails(*r),
            on_error=self._warn,
        )

    # -- ingest --------------------------------------------------------------------------------------------

    # -- live cameras --------------------------------------------------------------------------------------

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
