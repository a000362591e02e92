"""Identities: the list of people found across cameras; for the selected one, a timeline with a row per camera
and a bar wherever the person is visible (click a bar to see that moment), and the thumbnails of its tracks."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen
from PySide6.QtWidgets import (
    QLabel, QListView, QSizePolicy, QSplitter, QVBoxLayout, QWidget,
)

from reid_app.timefmt import format_time
from ui.item_models import IdentitiesModel, ItemRole, ThumbnailItem, ThumbnailsModel
from ui.tables import row_table


@dataclass
class TimelineBar:
    """A time range of one camera in which the person is visible (seconds since the epoch) and its tracks."""

    camera_id: int
    camera: str
    start: float
    end: float
    track_ids: list[int]


class TimelineWidget(QWidget):
    """A row per camera and a bar per time range of the selected identity; clicking a bar emits
    :attr:`seekRequested` with the clicked moment (inside the bar).

    Signals:
        seekRequested(camera_id, timestamp).
    """

    seekRequested = Signal(int, float)

    ROW_HEIGHT = 22
    LABEL_WIDTH = 90
    MARGIN = 6

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cameras: list[tuple[int, str]] = []
        self.bars: list[TimelineBar] = []
        self.start = 0.0
        self.end = 1.0
        self.setMinimumHeight(60)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Preferred)
        self.setMouseTracking(True)

    def set_content(self, cameras: Sequence[tuple[int, str]], bars: Sequence[TimelineBar], start: float,
                    end: float) -> None:
        """Rows for ``cameras`` (id, name), ``bars`` on them, over the time axis ``[start, end]``."""
        self.cameras = list(cameras)
        self.bars = list(bars)
        self.start, self.end = start, max(end, start + 1e-3)
        self.setMinimumHeight(2 * self.MARGIN + self.ROW_HEIGHT * (len(self.cameras) + 1))
        self.updateGeometry()
        self.update()

    def sizeHint(self) -> QSize:
        return QSize(400, 2 * self.MARGIN + self.ROW_HEIGHT * (max(1, len(self.cameras)) + 1))

    def _x(self, timestamp: float) -> float:
        width = max(1.0, self.width() - self.LABEL_WIDTH - 2 * self.MARGIN)
        return self.LABEL_WIDTH + self.MARGIN + (timestamp - self.start) / (self.end - self.start) * width

    def _time(self, x: float) -> float:
        width = max(1.0, self.width() - self.LABEL_WIDTH - 2 * self.MARGIN)
        return self.start + (x - self.LABEL_WIDTH - self.MARGIN) / width * (self.end - self.start)

    def bar_rect(self, bar: TimelineBar) -> QRectF:
        """Where ``bar`` is drawn, in widget pixels (at least 4 pixels wide)."""
        row = next(i for i, (cid, _) in enumerate(self.cameras) if cid == bar.camera_id)
        x1, x2 = self._x(bar.start), self._x(bar.end)
        if x2 - x1 < 4:
            x1, x2 = (x1 + x2) / 2 - 2, (x1 + x2) / 2 + 2
        return QRectF(x1, self.MARGIN + row * self.ROW_HEIGHT + 3, x2 - x1, self.ROW_HEIGHT - 6)

    def bar_at(self, point: QPointF) -> Optional[TimelineBar]:
        """The bar under ``point`` (widget pixels), or None."""
        for bar in self.bars:
            if self.bar_rect(bar).adjusted(-2, -2, 2, 2).contains(point):
                return bar
        return None

    def mousePressEvent(self, event: QMouseEvent) -> None:
        bar = self.bar_at(event.position())
        if bar is not None and event.button() == Qt.MouseButton.LeftButton:
            moment = min(max(self._time(event.position().x()), bar.start), bar.end)
            self.seekRequested.emit(bar.camera_id, moment)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        bar = self.bar_at(event.position())
        self.setCursor(Qt.CursorShape.PointingHandCursor if bar else Qt.CursorShape.ArrowCursor)
        self.setToolTip(f"{bar.camera}: {format_time(bar.start)} – {format_time(bar.end)}, tracks "
                        f"{', '.join(map(str, bar.track_ids))}\nclick to see this moment" if bar else "")

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.base())
        if not self.cameras:
            painter.setPen(palette.text().color())
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, "Select an identity to see its timeline")
            painter.end()
            return
        text = palette.text().color()
        for i, (_, name) in enumerate(self.cameras):
            y = self.MARGIN + i * self.ROW_HEIGHT
            if i % 2:
                painter.fillRect(QRectF(0, y, self.width(), self.ROW_HEIGHT), palette.alternateBase())
            painter.setPen(text)
            painter.drawText(QRectF(self.MARGIN, y, self.LABEL_WIDTH - self.MARGIN, self.ROW_HEIGHT),
                             Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft, name)
        painter.setPen(QPen(palette.highlight().color().darker(120), 1))
        painter.setBrush(palette.highlight())
        for bar in self.bars:
            painter.drawRoundedRect(self.bar_rect(bar), 3, 3)
        axis_y = self.MARGIN + len(self.cameras) * self.ROW_HEIGHT
        painter.setPen(QColor(text))
        painter.drawLine(QPointF(self._x(self.start), axis_y), QPointF(self._x(self.end), axis_y))
        for ts, align in ((self.start, Qt.AlignmentFlag.AlignLeft), (self.end, Qt.AlignmentFlag.AlignRight)):
            x = self._x(ts)
            box = QRectF(x - 150 if align == Qt.AlignmentFlag.AlignRight else x, axis_y + 2, 150, self.ROW_HEIGHT - 4)
            painter.drawText(box, align | Qt.AlignmentFlag.AlignVCenter, format_time(ts))
        painter.end()


class IdentitiesPanel(QWidget):
    """The identities list, with the selected identity's timeline and thumbnails.

    Signals:
        seekRequested(camera_id, timestamp): a timeline bar was clicked.
        searchRequested(track_id): a thumbnail was clicked.
        thumbnailsWanted(identity_id): the selected identity's thumbnails are needed (:meth:`set_thumbnails`).
    """

    seekRequested = Signal(int, float)
    searchRequested = Signal(int)
    thumbnailsWanted = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = IdentitiesModel(self)
        self.thumbnails = ThumbnailsModel(self)
        self.camera_ids: dict[str, int] = {}
        self.time_range = (0.0, 1.0)
        self._build()

    def _build(self) -> None:
        self.table = row_table(self, self.model)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.timeline = TimelineWidget(self)
        self.timeline.seekRequested.connect(self.seekRequested)
        self.thumbnail_view = QListView(self)
        self.thumbnail_view.setModel(self.thumbnails)
        self.thumbnail_view.setViewMode(QListView.ViewMode.IconMode)
        self.thumbnail_view.setFlow(QListView.Flow.LeftToRight)
        self.thumbnail_view.setWrapping(False)
        self.thumbnail_view.setIconSize(QSize(48, 96))
        self.thumbnail_view.setGridSize(QSize(110, 150))
        self.thumbnail_view.setTextElideMode(Qt.TextElideMode.ElideNone)
        self.thumbnail_view.setMinimumHeight(170)
        self.thumbnail_view.setMovement(QListView.Movement.Static)
        self.thumbnail_view.clicked.connect(self._thumbnail_clicked)
        self.caption = QLabel("No identities yet: they are made after each ingest.", self)

        detail = QWidget(self)
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.caption)
        detail_layout.addWidget(self.timeline)
        detail_layout.addWidget(self.thumbnail_view)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.table)
        splitter.addWidget(detail)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([430, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)

    def set_identities(self, identities: Sequence, camera_ids: dict[str, int], time_range: tuple[float, float]
                       ) -> None:
        """Show ``identities`` (``IdentitySummary``) over the cameras (name -> id) and the footage's time range
        (seconds since the epoch); the selected identity stays selected when it still exists."""
        selected = self.selected()
        self.camera_ids = dict(camera_ids)
        self.time_range = time_range
        self.model.set_items(identities)
        multi = sum(len(i.cameras) > 1 for i in identities)
        self.caption.setText(f"{len(identities)} identities, {multi} seen by several cameras. Select one."
                             if identities else "No identities yet: they are made after each ingest.")
        rows = [r for r, i in enumerate(self.model.items()) if selected is not None and i.id == selected.id]
        if rows:
            self.table.selectRow(rows[0])
        else:
            self.timeline.set_content([], [], *time_range)
            self.thumbnails.set_items([])

    def selected(self):
        """The selected ``IdentitySummary``, or None."""
        rows = self.table.selectionModel().selectedRows()
        return rows[0].data(ItemRole) if rows else None

    def select_identity(self, identity_id: int) -> bool:
        """Select an identity by id; False when it is not listed."""
        for row, identity in enumerate(self.model.items()):
            if identity.id == identity_id:
                self.table.selectRow(row)
                return True
        return False

    def _selection_changed(self, *args) -> None:
        identity = self.selected()
        if identity is None:
            return
        cameras = sorted(self.camera_ids.items())
        bars = [TimelineBar(self.camera_ids[name], name, start, end, tracks)
                for name, ranges in identity.cameras.items() if name in self.camera_ids
                for start, end, tracks in ranges]
        self.timeline.set_content([(cid, name) for name, cid in cameras], bars, *self.time_range)
        self.caption.setText(f"Identity {identity.id}: {len(identity.track_ids)} tracks on "
                             f"{', '.join(identity.cameras)} (confidence {identity.confidence:.2f}). "
                             f"Click a bar to see that moment, a thumbnail to search for this person.")
        self.thumbnails.set_items([])
        self.thumbnailsWanted.emit(identity.id)

    def set_thumbnails(self, identity_id: int, items: Sequence[ThumbnailItem]) -> None:
        """Thumbnails of an identity's tracks (ignored when another identity is selected by now)."""
        identity = self.selected()
        if identity is not None and identity.id == identity_id:
            self.thumbnails.set_items(sorted(items, key=lambda i: i.timestamp))

    def _thumbnail_clicked(self, index) -> None:
        item: ThumbnailItem = index.data(ItemRole)
        if item is not None:
            self.searchRequested.emit(item.track_id)
