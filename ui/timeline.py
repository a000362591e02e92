"""A time-of-day ruler with a row per camera: where each camera has footage, where the selected person is
visible (bars), tick marks with times of day, and a playhead at the player's moment in every row.

The player shows one under its camera tiles (click or drag anywhere to seek); the identities panel shows one for
the selected identity (click a bar to see that moment).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from typing import Optional, Sequence

from PySide6.QtCore import QPointF, QRectF, QSize, Qt, Signal
from PySide6.QtGui import QColor, QMouseEvent, QPainter, QPaintEvent, QPen, QPolygonF
from PySide6.QtWidgets import QSizePolicy, QWidget

from common.timefmt import KNOWN_TIME_FROM, format_time, zone_label

#: Tick spacings a ruler may use, seconds (from 0.1 s to a day).
TICK_STEPS_S = (
    0.1,
    0.2,
    0.5,
    1,
    2,
    5,
    10,
    15,
    30,
    60,
    120,
    300,
    600,
    900,
    1800,
    3600,
    7200,
    10800,
    21600,
    43200,
    86400,
)
PLAYHEAD = QColor(255, 80, 80)
BAR = QColor(255, 200, 0)


def tick_times(start: float, end: float, width_px: float, min_spacing_px: float = 90.0) -> list[float]:
    """Round tick times (seconds since the epoch, or from the video start) inside ``[start, end]``, at the
    smallest step of :data:`TICK_STEPS_S` that keeps ticks at least ``min_spacing_px`` pixels apart on a ruler
    ``width_px`` wide. Steps of a minute and more fall on whole minutes of the local clock."""
    span = end - start
    if span <= 0 or width_px <= 0:
        return []
    step = next((s for s in TICK_STEPS_S if s / span * width_px >= min_spacing_px), TICK_STEPS_S[-1])
    offset = 0.0
    if start >= KNOWN_TIME_FROM and step >= 60:
        offset = datetime.fromtimestamp(start).astimezone().utcoffset().total_seconds()  # local, not UTC, minutes
    first = math.ceil((start + offset) / step - 1e-9) * step - offset
    count = int((end - first) // step) + 1
    return [first + i * step for i in range(max(0, count)) if first + i * step <= end + 1e-9]


def tick_label(timestamp: float, step_s: float) -> str:
    """A tick's text: the time of day (``13:10:05``; tenths when ticks are under a second apart) for footage
    with a known clock, else the time from the video start (``0:00:05``)."""
    text = format_time(timestamp)
    clock = text.split(" ")[-1] if timestamp >= KNOWN_TIME_FROM else text
    return clock if step_s < 1 else clock.rsplit(".", 1)[0]


@dataclass
class TimelineBar:
    """A time range of one camera in which the person is visible (seconds since the epoch) and its tracks."""

    camera_id: int
    camera: str
    start: float
    end: float
    track_ids: list[int]


class TimelineWidget(QWidget):
    """Rows per camera over a time axis: footage coverage (grey), bars of the selected person (amber), ticks
    with times of day, and the playhead (red) in every row.

    Args:
        seek_anywhere: a click or drag anywhere in a row seeks there (the player's ruler); otherwise only bars
            are clickable (the identity timeline).

    Signals:
        seekRequested(camera_id, timestamp): a bar (or, with ``seek_anywhere``, a row) was clicked at that moment;
            camera_id is -1 when the click was on the axis below the rows.
    """

    seekRequested = Signal(int, float)

    ROW_HEIGHT = 20
    AXIS_HEIGHT = 32
    LABEL_WIDTH = 90
    MARGIN = 6

    def __init__(
        self, parent=None, seek_anywhere: bool = False, empty_text: str = "Select an identity to see its timeline"
    ):
        super().__init__(parent)
        self.seek_anywhere = seek_anywhere
        self.empty_text = empty_text
        self.cameras: list[tuple[int, str]] = []
        self.bars: list[TimelineBar] = []
        self.coverage: dict[int, list[tuple[float, float]]] = {}
        self.playhead: Optional[float] = None
        self.start = 0.0
        self.end = 1.0
        self._dragging = False
        self.setMinimumHeight(self.AXIS_HEIGHT + 2 * self.MARGIN + self.ROW_HEIGHT)
        self.setSizePolicy(
            QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Fixed if seek_anywhere else QSizePolicy.Policy.Preferred
        )
        self.setMouseTracking(True)

    def set_content(
        self, cameras: Sequence[tuple[int, str]], bars: Sequence[TimelineBar], start: float, end: float
    ) -> None:
        """Rows for ``cameras`` (id, name), ``bars`` on them, over the time axis ``[start, end]`` (seconds)."""
        self.cameras = list(cameras)
        self.set_bars(bars)
        self.start, self.end = start, max(end, start + 1e-3)
        height = 2 * self.MARGIN + self.ROW_HEIGHT * max(1, len(self.cameras)) + self.AXIS_HEIGHT
        self.setMinimumHeight(height)
        if self.seek_anywhere:
            self.setFixedHeight(height)
        self.updateGeometry()
        self.update()

    def set_bars(self, bars: Sequence[TimelineBar]) -> None:
        """Replace the bars (the selected person's time ranges), keeping rows and axis."""
        self.bars = [b for b in bars if any(cid == b.camera_id for cid, _ in self.cameras)]
        self.update()

    def set_coverage(self, coverage: dict[int, list[tuple[float, float]]]) -> None:
        """Where each camera (id) has footage: ``[(start, end), ...]`` seconds."""
        self.coverage = {cid: list(spans) for cid, spans in coverage.items()}
        self.update()

    def set_playhead(self, timestamp: Optional[float]) -> None:
        """Draw the playhead at ``timestamp`` (None: no playhead)."""
        if timestamp != self.playhead:
            self.playhead = timestamp
            self.update()

    def sizeHint(self) -> QSize:
        return QSize(400, 2 * self.MARGIN + self.ROW_HEIGHT * max(1, len(self.cameras)) + self.AXIS_HEIGHT)

    # -- geometry ------------------------------------------------------------------------------------------

    def _axis_width(self) -> float:
        return max(1.0, self.width() - self.LABEL_WIDTH - 2 * self.MARGIN)

    def x_of(self, timestamp: float) -> float:
        """The widget x (pixels) of ``timestamp``."""
        return self.LABEL_WIDTH + self.MARGIN + (timestamp - self.start) / (self.end - self.start) * self._axis_width()

    def time_at(self, x: float) -> float:
        """The moment (seconds) at widget x ``x``, clamped to the axis."""
        t = self.start + (x - self.LABEL_WIDTH - self.MARGIN) / self._axis_width() * (self.end - self.start)
        return min(max(t, self.start), self.end)

    def row_rect(self, row: int) -> QRectF:
        """The band of camera row ``row`` over the axis, in widget pixels."""
        return QRectF(
            self.LABEL_WIDTH + self.MARGIN, self.MARGIN + row * self.ROW_HEIGHT, self._axis_width(), self.ROW_HEIGHT
        )

    def bar_rect(self, bar: TimelineBar) -> QRectF:
        """Where ``bar`` is drawn, in widget pixels (at least 4 pixels wide)."""
        row = next(i for i, (cid, _) in enumerate(self.cameras) if cid == bar.camera_id)
        x1, x2 = self.x_of(bar.start), self.x_of(bar.end)
        if x2 - x1 < 4:
            x1, x2 = (x1 + x2) / 2 - 2, (x1 + x2) / 2 + 2
        return QRectF(x1, self.MARGIN + row * self.ROW_HEIGHT + 3, x2 - x1, self.ROW_HEIGHT - 6)

    def bar_at(self, point: QPointF) -> Optional[TimelineBar]:
        """The bar under ``point`` (widget pixels), or None."""
        for bar in self.bars:
            if self.bar_rect(bar).adjusted(-2, -2, 2, 2).contains(point):
                return bar
        return None

    def camera_at(self, y: float) -> Optional[int]:
        """The camera id of the row at widget y ``y``; None below or above the rows."""
        row = int((y - self.MARGIN) // self.ROW_HEIGHT)
        return self.cameras[row][0] if y >= self.MARGIN and 0 <= row < len(self.cameras) else None

    # -- events --------------------------------------------------------------------------------------------

    def _seek_to(self, point: QPointF) -> None:
        bar = self.bar_at(point)
        if bar is not None:
            moment = min(max(self.time_at(point.x()), bar.start), bar.end)
            self.seekRequested.emit(bar.camera_id, moment)
        elif self.seek_anywhere and point.x() >= self.LABEL_WIDTH:
            camera = self.camera_at(point.y())
            self.seekRequested.emit(-1 if camera is None else camera, self.time_at(point.x()))

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self.cameras:
            self._dragging = self.seek_anywhere
            self._seek_to(event.position())

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        self._dragging = False

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        if self._dragging:
            self._seek_to(event.position())
            return
        bar = self.bar_at(event.position())
        self.setCursor(Qt.CursorShape.PointingHandCursor if bar or self.seek_anywhere else Qt.CursorShape.ArrowCursor)
        if bar is not None:
            self.setToolTip(
                f"{bar.camera}: {format_time(bar.start)} – {format_time(bar.end)}, tracks "
                f"{', '.join(map(str, bar.track_ids))}\nclick to see this moment"
            )
        elif self.seek_anywhere:
            self.setToolTip(f"{format_time(self.time_at(event.position().x()))}: click or drag to seek")
        else:
            self.setToolTip("")

    # -- painting ------------------------------------------------------------------------------------------

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        palette = self.palette()
        painter.fillRect(self.rect(), palette.base())
        text = palette.text().color()
        if not self.cameras:
            painter.setPen(text)
            painter.drawText(self.rect(), Qt.AlignmentFlag.AlignCenter, self.empty_text)
            painter.end()
            return
        for i, (cid, name) in enumerate(self.cameras):
            band = self.row_rect(i)
            if i % 2:
                painter.fillRect(QRectF(0, band.top(), self.width(), band.height()), palette.alternateBase())
            painter.setPen(text)
            painter.drawText(
                QRectF(self.MARGIN, band.top(), self.LABEL_WIDTH - self.MARGIN, band.height()),
                Qt.AlignmentFlag.AlignVCenter | Qt.AlignmentFlag.AlignLeft,
                name,
            )
            for s, e in self.coverage.get(cid, []):
                x1, x2 = self.x_of(max(s, self.start)), self.x_of(min(e, self.end))
                painter.fillRect(
                    QRectF(x1, band.top() + 7, max(1.0, x2 - x1), band.height() - 14), QColor(120, 120, 130, 140)
                )
        painter.setPen(QPen(BAR.darker(150), 1))
        painter.setBrush(BAR)
        for bar in self.bars:
            painter.drawRoundedRect(self.bar_rect(bar), 3, 3)
        self._paint_axis(painter, text)
        self._paint_playhead(painter)
        painter.end()

    def _paint_axis(self, painter: QPainter, text: QColor) -> None:
        axis_y = self.MARGIN + len(self.cameras) * self.ROW_HEIGHT
        painter.setPen(QPen(text, 1))
        painter.drawLine(QPointF(self.x_of(self.start), axis_y), QPointF(self.x_of(self.end), axis_y))
        ticks = tick_times(self.start, self.end, self._axis_width())
        step = ticks[1] - ticks[0] if len(ticks) > 1 else self.end - self.start
        metrics = painter.fontMetrics()
        last_right = -1e9
        for t in ticks:
            x = self.x_of(t)
            painter.drawLine(QPointF(x, axis_y), QPointF(x, axis_y + 4))
            label = tick_label(t, step)
            width = metrics.horizontalAdvance(label)
            left = min(max(x - width / 2, self.LABEL_WIDTH), self.width() - width - 2)
            if left > last_right + 6:
                painter.drawText(QPointF(left, axis_y + 4 + metrics.ascent()), label)
                last_right = left + width
        zone = zone_label() if self.start >= KNOWN_TIME_FROM else "from start"
        day = format_time(self.start).split(" ")[0] if self.start >= KNOWN_TIME_FROM else ""
        painter.drawText(
            QRectF(self.MARGIN, axis_y + 2, self.LABEL_WIDTH, self.AXIS_HEIGHT),
            Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignTop,
            f"{day}\n{zone}" if day else zone,
        )

    def _paint_playhead(self, painter: QPainter) -> None:
        if self.playhead is None or not self.start <= self.playhead <= self.end:
            return
        x = self.x_of(self.playhead)
        painter.setPen(QPen(PLAYHEAD, 2))
        painter.setBrush(PLAYHEAD)
        for i in range(len(self.cameras)):
            band = self.row_rect(i)
            painter.drawLine(QPointF(x, band.top() + 1), QPointF(x, band.bottom() - 1))
            painter.drawPolygon(
                QPolygonF([QPointF(x - 4, band.top()), QPointF(x + 4, band.top()), QPointF(x, band.top() + 5)])
            )
