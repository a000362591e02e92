"""The live view: the newest analysed frame of every live camera with its tracked people boxed, a status line per
camera, and the watchlist alerts as they come.

The panel polls a live session handle (``reid_app.live_session.LiveSession``: ``cameras``, ``latest_frame(name)``,
``statuses()``) every :data:`REFRESH_MS`; only a frame newer than the one shown is drawn. Clicking a camera asks for
playback of its recording a few seconds back (``playbackRequested``); double-clicking an alert asks to jump to the
camera and moment of the alert (``alertActivated``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Optional

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QPainter, QPen, QPixmap
from PySide6.QtWidgets import (
    QGridLayout,
    QLabel,
    QListWidget,
    QListWidgetItem,
    QSizePolicy,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

#: How often the newest frames are fetched (milliseconds): at 5 analysed frames/s nothing is missed.
REFRESH_MS = 100
#: Seconds back from "now" that a click on a live camera starts its playback at.
PLAYBACK_BACK_S = 5.0


def frame_pixmap(image: np.ndarray, boxes: np.ndarray, track_ids: np.ndarray, width: int, height: int) -> QPixmap:
    """``uint8 [H, W, 3]`` BGR ``image`` scaled to fit ``width`` x ``height`` pixels (aspect kept) with
    ``float32 [N, 4]`` boxes (frame pixels) and their track ids drawn on it."""
    frame_height, frame_width = image.shape[:2]
    rgb = np.ascontiguousarray(image[:, :, ::-1])
    qimage = QImage(rgb.data, frame_width, frame_height, 3 * frame_width, QImage.Format.Format_RGB888).copy()
    pixmap = QPixmap.fromImage(qimage).scaled(
        max(1, width), max(1, height), Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )
    scale = pixmap.width() / max(frame_width, 1)
    painter = QPainter(pixmap)
    painter.setRenderHint(QPainter.RenderHint.Antialiasing)
    for box, track in zip(boxes, track_ids):
        color = QColor.fromHsv(int(track) * 47 % 360, 220, 255)
        painter.setPen(QPen(color, 2))
        x1, y1, x2, y2 = (float(v) * scale for v in box)
        painter.drawRect(QRectF(x1, y1, x2 - x1, y2 - y1))
        painter.drawText(QPointF(x1 + 3, max(12.0, y1 - 3)), f"#{int(track)}")
    painter.end()
    return pixmap


def status_text(status) -> str:
    """A camera's status (``CameraStatus``) in a few words."""
    text = (
        f"{status.camera}: {status.state}, {status.analysed_fps:.1f} frames/s, lag {status.lag_s:.2f} s, "
        f"{status.people} people, {status.tracks} tracks, {status.alerts} alerts"
    )
    if status.state in ("connecting", "reconnecting") and status.last_error:
        text += f" ({status.last_error})"
    return text


class _Tile(QLabel):
    clicked = Signal(str)

    def __init__(self, camera: str, parent=None):
        super().__init__(parent)
        self.camera = camera
        self.shown_at: Optional[float] = None
        self.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.setMinimumSize(160, 90)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Ignored)
        self.setText(f"{camera}: connecting…")
        self.setToolTip("Click to play this camera's recording from a few seconds ago")

    def mousePressEvent(self, event) -> None:
        self.clicked.emit(self.camera)
        super().mousePressEvent(event)


class LivePanel(QWidget):
    """Live cameras and alerts (module docstring).

    Signals:
        playbackRequested(camera, timestamp): play ``camera``'s recording from ``timestamp`` (epoch seconds).
        alertActivated(camera, timestamp, track_id): show the alert's camera and moment.
        alertRaised(payload): an alert came (emitted from any thread; delivered on the GUI thread).
    """

    playbackRequested = Signal(str, float)
    alertActivated = Signal(str, float, int)
    alertRaised = Signal(dict)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.session = None
        self.tiles: dict[str, _Tile] = {}
        self.status_labels: dict[str, QLabel] = {}
        layout = QVBoxLayout(self)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)  # cameras left, alerts right
        self.grid_host = QWidget(splitter)
        self.grid = QGridLayout(self.grid_host)
        self.placeholder = QLabel("No live cameras. File > Watch live cameras… opens a site file.", self.grid_host)
        self.placeholder.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.grid.addWidget(self.placeholder, 0, 0)
        self.alerts = QListWidget(splitter)
        self.alerts.setToolTip("Watchlist alerts; double-click one to see the camera at that moment")
        self.alerts.setMinimumWidth(260)
        self.alerts.itemDoubleClicked.connect(self._alert_activated)
        splitter.setStretchFactor(0, 4)
        splitter.setStretchFactor(1, 1)
        splitter.setSizes([900, 300])
        layout.addWidget(splitter)
        self.alertRaised.connect(self._add_alert)
        self.timer = QTimer(self)
        self.timer.setInterval(REFRESH_MS)
        self.timer.timeout.connect(self.refresh)

    def watch(self, session) -> None:
        """Show ``session``'s cameras (None: stop showing)."""
        for widget in list(self.tiles.values()) + list(self.status_labels.values()):
            widget.deleteLater()
        self.tiles, self.status_labels = {}, {}
        self.session = session
        self.placeholder.setVisible(session is None)
        if session is None:
            self.timer.stop()
            return
        columns = max(1, int(np.ceil(np.sqrt(len(session.cameras)))))
        for index, camera in enumerate(session.cameras):
            tile = _Tile(camera, self.grid_host)
            tile.clicked.connect(self._tile_clicked)
            status = QLabel(camera, self.grid_host)
            status.setWordWrap(True)
            row, column = divmod(index, columns)
            self.grid.addWidget(tile, 2 * row, column)
            self.grid.addWidget(status, 2 * row + 1, column)
            self.grid.setRowStretch(2 * row, 1)
            self.tiles[camera], self.status_labels[camera] = tile, status
        self.timer.start()

    def refresh(self) -> None:
        """Draw every camera's newest frame (when newer than the one shown) and its status line."""
        if self.session is None:
            return
        for status in self.session.statuses():
            label = self.status_labels.get(status.camera)
            if label is not None:
                label.setText(status_text(status))
        for camera, tile in self.tiles.items():
            frame = self.session.latest_frame(camera)
            if frame is None or frame.timestamp == tile.shown_at:
                continue
            tile.shown_at = frame.timestamp
            tile.setPixmap(
                frame_pixmap(frame.image, frame.boxes, frame.track_ids, max(tile.width(), 160), max(tile.height(), 90))
            )

    def _tile_clicked(self, camera: str) -> None:
        shown = self.tiles[camera].shown_at
        if shown is not None:
            self.playbackRequested.emit(camera, shown - PLAYBACK_BACK_S)

    def _add_alert(self, payload: dict) -> None:
        when = datetime.fromtimestamp(payload["timestamp"], timezone.utc).astimezone().strftime("%H:%M:%S")
        item = QListWidgetItem(
            f"{when}  {payload['name']} on {payload['camera']} (similarity {payload['similarity']:.2f})"
        )
        item.setData(
            Qt.ItemDataRole.UserRole, (payload["camera"], float(payload["timestamp"]), int(payload["track_id"]))
        )
        item.setForeground(QColor("#d9534f"))
        self.alerts.insertItem(0, item)

    def _alert_activated(self, item: QListWidgetItem) -> None:
        camera, timestamp, track = item.data(Qt.ItemDataRole.UserRole)
        self.alertActivated.emit(camera, timestamp, track)
