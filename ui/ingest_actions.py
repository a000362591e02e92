"""Adding footage from the main window: the Add videos dialog, the ingest thread with its progress and cancel, and its
summary."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from PySide6.QtWidgets import QFileDialog

from ui.cameras import VIDEO_FILTER, IngestDialog
from ui.jobs import IngestWorker


class IngestActions:
    """Part of :class:`ui.main_window.MainWindow` (a mixin of its methods; the window holds the state)."""

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
