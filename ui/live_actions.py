"""Live cameras from the main window: choosing a site file, watching it (the models load off the GUI thread), alerts
in the status bar and the taskbar, and playing a camera's recent moment."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QApplication, QFileDialog


class LiveActions:
    """Part of :class:`ui.main_window.MainWindow` (a mixin of its methods; the window holds the state)."""

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
