"""The player: camera views in a grid of landscape tiles, drawing stored boxes, track ids and COCO-17 skeletons over
the video, one shared wall-clock position with play/pause, frame steps, a seek slider and a time-of-day ruler with
a row and a playhead per camera.

All cameras show the same moment (seconds since the epoch); each view shows the frame of its camera's video at
that moment, so people can be followed from camera to camera. Frames are decoded on one thread per view;
requests coalesce, so a slow decoder drops frames instead of falling behind.
"""

from __future__ import annotations

import math
import threading
from typing import Optional, Sequence

import numpy as np
from PySide6.QtCore import QElapsedTimer, QPointF, QRectF, Qt, QThread, QTimer, Signal
from PySide6.QtGui import QColor, QImage, QMouseEvent, QPainter, QPaintEvent, QPen, QResizeEvent
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSlider,
    QStyle,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from common.errors import ReidAppError
from common.timefmt import KNOWN_TIME_FROM, format_time, zone_label
from pipelines.ingest.video import FrameReader
from pipelines.matching.service import CameraEntry, VideoEntry, VideoSightings
from ui.timeline import TimelineBar, TimelineWidget

#: COCO-17 limbs as keypoint index pairs (nose 0, eyes 1-2, ears 3-4, shoulders 5-6, elbows 7-8, wrists 9-10,
#: hips 11-12, knees 13-14, ankles 15-16).
COCO_LIMBS = (
    (0, 1),
    (0, 2),
    (1, 3),
    (2, 4),
    (5, 6),
    (5, 7),
    (7, 9),
    (6, 8),
    (8, 10),
    (5, 11),
    (6, 12),
    (11, 12),
    (11, 13),
    (13, 15),
    (12, 14),
    (14, 16),
)
#: Keypoints below this confidence are not drawn.
KEYPOINT_MIN_CONFIDENCE = 0.3
#: A skeleton is drawn over a person shown at least this tall (screen pixels); over a smaller one its lines would
#: cover the person.
SKELETON_MIN_HEIGHT = 90
HIGHLIGHT = QColor(255, 200, 0)


#: Pixels between camera tiles.
TILE_SPACING = 4.0


def best_columns(count: int, width: float, height: float, aspect: float, spacing: float = TILE_SPACING) -> int:
    """The number of grid columns that shows ``count`` frames of width/height ``aspect`` largest in a
    ``width`` × ``height`` pixel area (tiles keep the frames' aspect; ties go to fewer columns)."""
    if count <= 1:
        return 1
    best, best_scale = 1, -1.0
    for columns in range(1, count + 1):
        rows = math.ceil(count / columns)
        tile_w = (width - spacing * (columns - 1)) / columns
        tile_h = (height - spacing * (rows - 1)) / rows
        scale = min(tile_w / aspect, tile_h)
        if scale > best_scale + 1e-6:
            best, best_scale = columns, scale
    return best


def tile_rects(count: int, width: float, height: float, aspect: float, spacing: float = TILE_SPACING) -> list[QRectF]:
    """Tiles of the frames' aspect (width/height ``aspect``), as large as fit ``count`` of them in a ``width`` ×
    ``height`` pixel area (:func:`best_columns`), the block centred; row by row, in pixels."""
    if count <= 0 or width <= 0 or height <= 0:
        return []
    columns = best_columns(count, width, height, aspect, spacing)
    rows = math.ceil(count / columns)
    tile_h = max(1.0, min((width - spacing * (columns - 1)) / columns / aspect, (height - spacing * (rows - 1)) / rows))
    tile_w = tile_h * aspect
    left = (width - columns * tile_w - (columns - 1) * spacing) / 2
    top = (height - rows * tile_h - (rows - 1) * spacing) / 2
    return [
        QRectF(left + (i % columns) * (tile_w + spacing), top + (i // columns) * (tile_h + spacing), tile_w, tile_h)
        for i in range(count)
    ]


def place_labels(
    boxes: Sequence[QRectF], sizes: Sequence[tuple[float, float]], bounds: QRectF, reserved: Sequence[QRectF] = ()
) -> list[QRectF]:
    """Where to draw each box's label so that labels overlap neither each other nor ``reserved`` areas (the
    caption): above the box, else inside its top, else below it, else the first free slot further down; all
    inside ``bounds``. ``sizes`` are the labels' (width, height) in pixels; returns one rectangle per box."""
    placed: list[QRectF] = []
    taken = list(reserved)
    for box, (w, h) in zip(boxes, sizes):
        candidates = [
            QRectF(box.left(), box.top() - h - 1, w, h),
            QRectF(box.left(), box.top() + 1, w, h),
            QRectF(box.left(), box.bottom() + 1, w, h),
        ]
        candidates += [QRectF(box.left(), box.top() + 1 + k * (h + 1), w, h) for k in range(1, 12)]
        chosen = None
        for c in candidates:
            c.moveLeft(min(max(c.left(), bounds.left()), bounds.right() - w))
            if bounds.contains(c) and not any(c.intersects(t) for t in taken):
                chosen = c
                break
        if chosen is None:
            chosen = candidates[1]
        placed.append(chosen)
        taken.append(chosen)
    return placed


def track_colour(track_id: int) -> QColor:
    """A stable, distinct colour per track id (golden-ratio hue steps)."""
    hue = (track_id * 0.618033988749895) % 1.0
    return QColor.fromHsvF(hue, 0.75, 1.0)


class FrameDecoder(QThread):
    """Decodes requested frames of one view on its own thread; only the latest request is served.

    Signals:
        frameReady(video_id, frame_index, image): an RGB ``QImage`` of the requested frame.
        failed(video_id, message): the video cannot be opened (moved or deleted since ingest).
    """

    frameReady = Signal(int, int, QImage)
    failed = Signal(int, str)

    def __init__(self, parent=None):
        super().__init__(parent)
        self._condition = threading.Condition()
        self._wanted: Optional[tuple[int, str, int]] = None
        self._stopping = False

    def request(self, video: VideoEntry, frame_index: int) -> None:
        """Ask for ``frame_index`` of ``video`` (replaces any request not started yet)."""
        with self._condition:
            self._wanted = (video.id, video.path, int(frame_index))
            self._condition.notify()

    def stop(self) -> None:
        """End the thread and wait for it."""
        with self._condition:
            self._stopping = True
            self._condition.notify()
        self.wait()

    def run(self) -> None:
        reader: Optional[FrameReader] = None
        reader_video = None
        try:
            while True:
                with self._condition:
                    while self._wanted is None and not self._stopping:
                        self._condition.wait()
                    if self._stopping:
                        return
                    video_id, path, frame_index = self._wanted
                    self._wanted = None
                if video_id != reader_video:
                    if reader is not None:
                        reader.close()
                    reader, reader_video = None, video_id
                    try:
                        reader = FrameReader(path)
                    except ReidAppError as exc:
                        self.failed.emit(video_id, str(exc))
                if reader is None:
                    continue
                bgr = reader.read(frame_index)
                if bgr is None:
                    continue
                rgb = np.ascontiguousarray(bgr[:, :, ::-1])
                height, width = rgb.shape[:2]
                image = QImage(rgb.data, width, height, 3 * width, QImage.Format.Format_RGB888).copy()
                self.frameReady.emit(video_id, frame_index, image)
        finally:
            if reader is not None:
                reader.close()


class CameraView(QWidget):
    """One camera: its video frame at the player's moment, with the stored sightings drawn over it.

    Clicking a person's box emits :attr:`personClicked`; clicking anywhere makes the view the active one.

    Signals:
        personClicked(track_id, sighting_id): a box was clicked.
        activated(camera_id): the view was clicked.
        overlayWanted(video_id): the sightings of a video are needed for drawing (see :meth:`set_overlay`).
    """

    personClicked = Signal(int, int)
    activated = Signal(int)
    overlayWanted = Signal(int)

    def __init__(self, camera: CameraEntry, parent=None):
        super().__init__(parent)
        self.camera = camera
        self.video: Optional[VideoEntry] = None
        self.frame_index = -1
        self.image: Optional[QImage] = None
        self.image_frame = -1
        self.image_video = -1
        self.overlays: dict[int, VideoSightings] = {}
        self.show_skeletons = True
        self.highlighted: set[int] = set()
        self.active = False
        self.timestamp = 0.0
        self.problem: dict[int, str] = {}
        #: Where the people's labels were last drawn (widget pixels), one per visible box.
        self.label_rects: list[QRectF] = []
        self.setMinimumSize(160, 90)
        self.setMouseTracking(True)
        self.decoder = FrameDecoder(self)
        self.decoder.frameReady.connect(self._frame_ready)
        self.decoder.failed.connect(self._decode_failed)
        self.decoder.start()

    # -- state ---------------------------------------------------------------------------------------------

    def show_time(self, timestamp: float) -> None:
        """Show the frame of this camera at wall-clock ``timestamp`` (seconds since the epoch)."""
        self.timestamp = timestamp
        video = self.camera.video_at(timestamp)
        if video is None:
            self.video, self.frame_index = None, -1
            self.update()
            return
        if self.video is None or video.id != self.video.id:
            self.video = video
            if video.id not in self.overlays:
                self.overlayWanted.emit(video.id)
        frame = video.frame_at(timestamp)
        if frame != self.frame_index or self.image_video != video.id:
            self.frame_index = frame
            if video.id not in self.problem:
                self.decoder.request(video, frame)
        self.update()

    def set_overlay(self, sightings: VideoSightings) -> None:
        """Give the sightings of one of this camera's videos."""
        self.overlays[sightings.video_id] = sightings
        self.update()

    def set_active(self, active: bool) -> None:
        self.active = active
        self.update()

    def close_decoder(self) -> None:
        """Stop the decoding thread (before the view is discarded)."""
        self.decoder.stop()

    def _frame_ready(self, video_id: int, frame_index: int, image: QImage) -> None:
        self.image, self.image_frame, self.image_video = image, frame_index, video_id
        self.update()

    def _decode_failed(self, video_id: int, message: str) -> None:
        self.problem[video_id] = message
        self.update()

    # -- geometry ------------------------------------------------------------------------------------------

    def _frame_rect(self) -> Optional[QRectF]:
        """Where the frame is drawn, in widget pixels (aspect kept, centred)."""
        if self.video is None:
            return None
        width, height = self.video.width, self.video.height
        if width <= 0 or height <= 0:
            return None
        scale = min(self.width() / width, self.height() / height)
        w, h = width * scale, height * scale
        return QRectF((self.width() - w) / 2, (self.height() - h) / 2, w, h)

    def visible_people(self) -> list[tuple[int, int, QRectF]]:
        """The boxes drawn now: ``(track_id, sighting_id, rectangle in widget pixels)``, in drawing order."""
        target = self._frame_rect()
        if target is None or self.video is None:
            return []
        overlay = self.overlays.get(self.video.id)
        if overlay is None:
            return []
        frame = self.image_frame if self.image_video == self.video.id else self.frame_index
        scale = target.width() / self.video.width
        out = []
        for row in overlay.rows_at(frame):
            x1, y1, x2, y2 = (float(v) for v in overlay.boxes[row])
            rect = QRectF(target.left() + x1 * scale, target.top() + y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale)
            out.append((int(overlay.track_ids[row]), int(overlay.sighting_ids[row]), rect))
        return out

    def person_at(self, point: QPointF) -> Optional[tuple[int, int]]:
        """``(track_id, sighting_id)`` of the smallest drawn box containing ``point`` (widget pixels), or None."""
        hits = [(r.width() * r.height(), t, s) for t, s, r in self.visible_people() if r.contains(point)]
        if not hits:
            return None
        _, track_id, sighting_id = min(hits)
        return track_id, sighting_id

    # -- events --------------------------------------------------------------------------------------------

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() != Qt.MouseButton.LeftButton:
            return super().mousePressEvent(event)
        self.activated.emit(self.camera.id)
        hit = self.person_at(event.position())
        if hit is not None:
            self.personClicked.emit(*hit)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        hit = self.person_at(event.position())
        self.setCursor(Qt.CursorShape.PointingHandCursor if hit else Qt.CursorShape.ArrowCursor)
        self.setToolTip(f"track {hit[0]}: click to find this person in every camera" if hit else "")

    def paintEvent(self, event: QPaintEvent) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.fillRect(self.rect(), QColor(20, 20, 24))
        target = self._frame_rect()
        if self.video is None:
            self._centre_text(painter, f"no footage at {format_time(self.timestamp)}")
        elif self.video.id in self.problem:
            self._centre_text(painter, self.problem[self.video.id])
        elif target is not None and self.image is not None and self.image_video == self.video.id:
            painter.drawImage(target, self.image)
            self._draw_people(painter, target)
        self._draw_caption(painter)
        if self.active:
            painter.setPen(QPen(self.palette().highlight().color(), 3))
            painter.drawRect(self.rect().adjusted(1, 1, -2, -2))
        painter.end()

    def _centre_text(self, painter: QPainter, text: str) -> None:
        painter.setPen(QColor(200, 200, 200))
        painter.drawText(
            self.rect().adjusted(8, 8, -8, -8), Qt.AlignmentFlag.AlignCenter | Qt.TextFlag.TextWordWrap, text
        )

    def caption_text(self) -> str:
        """The caption: camera, wall-clock date and time with the zone (or "time unknown"), frame number."""
        if self.timestamp >= KNOWN_TIME_FROM:
            text = f"{self.camera.name}  {format_time(self.timestamp)} {zone_label()}"
        else:
            text = f"{self.camera.name}  {format_time(self.timestamp)} (time unknown)"
        if self.video is not None and self.frame_index >= 0:
            text += f"  frame {self.frame_index}"
        return text

    def caption_rect(self) -> QRectF:
        """Where the caption is drawn, widget pixels (kept free of people's labels)."""
        metrics = self.fontMetrics()
        return QRectF(
            4,
            4,
            min(metrics.horizontalAdvance(self.caption_text()) + 12, max(40, self.width() - 8)),
            metrics.height() + 6,
        )

    def _draw_caption(self, painter: QPainter) -> None:
        box = self.caption_rect()
        painter.fillRect(box, QColor(0, 0, 0, 170))
        painter.setPen(QColor(255, 255, 255))
        text = painter.fontMetrics().elidedText(
            self.caption_text(), Qt.TextElideMode.ElideRight, int(box.width()) - 8
        )  # a narrow tile: "…" instead of a cut
        painter.drawText(box, Qt.AlignmentFlag.AlignCenter, text)

    def _draw_people(self, painter: QPainter, target: QRectF) -> None:
        overlay = self.overlays.get(self.video.id)
        if overlay is None:
            return
        scale = target.width() / self.video.width
        metrics = painter.fontMetrics()
        people = []
        for row in overlay.rows_at(self.image_frame):
            track_id = int(overlay.track_ids[row])
            highlighted = track_id in self.highlighted
            colour = HIGHLIGHT if highlighted else track_colour(track_id)
            x1, y1, x2, y2 = (float(v) for v in overlay.boxes[row])
            rect = QRectF(target.left() + x1 * scale, target.top() + y1 * scale, (x2 - x1) * scale, (y2 - y1) * scale)
            if self.show_skeletons and rect.height() >= SKELETON_MIN_HEIGHT:
                self._draw_skeleton(painter, overlay.keypoints[row], target, scale, colour)
            painter.setPen(QPen(colour, 4 if highlighted else 2))
            painter.setBrush(Qt.BrushStyle.NoBrush)
            painter.drawRect(rect)
            people.append((rect, f"track {track_id}", colour))
        self.label_rects = place_labels(
            [r for r, _, _ in people],
            [(metrics.horizontalAdvance(t) + 8, metrics.height() + 2) for _, t, _ in people],
            QRectF(self.rect()),
            [self.caption_rect()],
        )
        for (rect, label, colour), label_box in zip(people, self.label_rects):
            painter.fillRect(label_box, colour)
            painter.setPen(QColor(0, 0, 0))
            painter.drawText(label_box, Qt.AlignmentFlag.AlignCenter, label)

    @staticmethod
    def _draw_skeleton(painter: QPainter, keypoints: np.ndarray, target: QRectF, scale: float, colour: QColor) -> None:
        def point(i):
            x, y, _ = keypoints[i]
            return QPointF(target.left() + float(x) * scale, target.top() + float(y) * scale)

        visible = keypoints[:, 2] >= KEYPOINT_MIN_CONFIDENCE
        painter.setPen(QPen(colour.lighter(130), 2))
        for a, b in COCO_LIMBS:
            if visible[a] and visible[b]:
                painter.drawLine(point(a), point(b))
        painter.setBrush(colour)
        for i in np.flatnonzero(visible):
            painter.drawEllipse(point(int(i)), 2.5, 2.5)


class PlayerPanel(QWidget):
    """Camera views in a grid (or the active camera alone) with the transport controls.

    Signals:
        personClicked(track_id, sighting_id): a person's box was clicked in any view.
        overlayWanted(video_id): sightings of a video are needed (answer with :meth:`set_overlay`).
        positionChanged(timestamp): the shared moment moved.
        activeCameraChanged(camera_id).
    """

    personClicked = Signal(int, int)
    overlayWanted = Signal(int)
    positionChanged = Signal(float)
    activeCameraChanged = Signal(int)

    #: Playback refresh interval, milliseconds.
    TICK_MS = 33
    #: Slider steps are milliseconds, or coarser when the footage spans more than the slider's 32-bit range
    #: (24 days of milliseconds: a live site keeps a month).
    SLIDER_UNIT_S = 0.001
    SLIDER_MAX_STEPS = 2_000_000_000

    def __init__(self, parent=None):
        super().__init__(parent)
        self.cameras: list[CameraEntry] = []
        self.views: dict[int, CameraView] = {}
        self.position = 0.0
        self.start = 0.0
        self.end = 0.0
        self.active_camera: Optional[int] = None
        self.grid_mode = True
        self.show_skeletons = True
        self._highlighted: set[int] = set()
        self._overlays: dict[int, VideoSightings] = {}
        self._timer = QTimer(self)
        self._timer.setInterval(self.TICK_MS)
        self._timer.timeout.connect(self._tick)
        self._clock = QElapsedTimer()
        self._build()

    def _build(self) -> None:
        self._grid_host = _TileHost(self)
        self._grid_host.resized.connect(self._layout_views)
        self._empty = QLabel("No cameras yet: use File ▸ Add videos… to ingest footage.", self._grid_host)
        self._empty.setAlignment(Qt.AlignmentFlag.AlignCenter)

        style = self.style()
        self.play_button = QToolButton(self)
        self.play_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaPlay))
        self.play_button.setToolTip("Play / pause (Space)")
        self.play_button.clicked.connect(self.toggle_play)
        self.back_button = QToolButton(self)
        self.back_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekBackward))
        self.back_button.setToolTip("Previous frame (Left)")
        self.back_button.clicked.connect(lambda: self.step(-1))
        self.forward_button = QToolButton(self)
        self.forward_button.setIcon(style.standardIcon(QStyle.StandardPixmap.SP_MediaSeekForward))
        self.forward_button.setToolTip("Next frame (Right)")
        self.forward_button.clicked.connect(lambda: self.step(1))
        self.slider = QSlider(Qt.Orientation.Horizontal, self)
        self.slider.setToolTip("Seek: drag to any moment")
        self.slider.valueChanged.connect(self._slider_moved)
        self.time_label = QLabel(self)
        self.time_label.setMinimumWidth(140)

        controls = QHBoxLayout()
        for w in (self.back_button, self.play_button, self.forward_button):
            controls.addWidget(w)
        controls.addWidget(self.slider, 1)
        controls.addWidget(self.time_label)
        self.ruler = TimelineWidget(self, seek_anywhere=True, empty_text="No footage")
        self.ruler.setToolTip("Click or drag to seek; amber: the selected person")
        self.ruler.seekRequested.connect(self._ruler_seek)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self._grid_host, 1)
        layout.addWidget(self.ruler)
        layout.addLayout(controls)
        self._update_controls()

    # -- cameras -------------------------------------------------------------------------------------------

    def set_cameras(self, cameras: Sequence[CameraEntry]) -> None:
        """Show these cameras (views of cameras still present are kept); the time range becomes theirs."""
        cameras = [c for c in cameras if c.videos]
        old = self.views
        self.views = {}
        for camera in cameras:
            view = old.pop(camera.id, None)
            if view is None:
                view = CameraView(camera, self._grid_host)
                view.personClicked.connect(self.personClicked)
                view.activated.connect(self.set_active_camera)
                view.overlayWanted.connect(self.overlayWanted)
                for sightings in self._overlays.values():
                    view.set_overlay(sightings)
            view.camera = camera
            view.show_skeletons = self.show_skeletons
            view.highlighted = self._highlighted
            self.views[camera.id] = view
        for view in old.values():
            view.close_decoder()
            view.deleteLater()
        self.cameras = list(cameras)
        starts = [v.start_time for c in cameras for v in c.videos]
        ends = [v.time_of(max(0, v.frame_count - 1)) for c in cameras for v in c.videos]  # the last frame shown
        self.start, self.end = (min(starts), max(ends)) if starts else (0.0, 0.0)
        # footage with a wall-clock start (CCTV exports) moves the range by decades: keep the position inside it
        self.position = float(min(max(self.position, self.start), self.end))
        if self.active_camera not in self.views:
            self.active_camera = cameras[0].id if cameras else None
        self.ruler.set_content([(c.id, c.name) for c in cameras], self.ruler.bars, self.start, self.end)
        self.ruler.set_coverage(
            {c.id: [(v.start_time, v.time_of(max(0, v.frame_count - 1))) for v in c.videos] for c in cameras}
        )
        self._layout_views()
        self.seek(min(max(self.position, self.start), self.end) if self.end > self.start else self.start)

    def set_overlay(self, sightings: VideoSightings) -> None:
        """Sightings of a video, for the view showing it."""
        self._overlays[sightings.video_id] = sightings
        for view in self.views.values():
            if any(v.id == sightings.video_id for v in view.camera.videos):
                view.set_overlay(sightings)

    def set_active_camera(self, camera_id: int) -> None:
        """Make ``camera_id`` the camera that frame steps follow (and the one shown alone in single mode)."""
        if camera_id not in self.views:
            return
        changed = camera_id != self.active_camera
        self.active_camera = camera_id
        for cid, view in self.views.items():
            view.set_active(cid == camera_id and len(self.views) > 1)
        if not self.grid_mode:
            self._layout_views()
        if changed:
            self.activeCameraChanged.emit(camera_id)

    def set_grid_mode(self, grid: bool) -> None:
        """All cameras in a grid (True) or the active camera alone (False)."""
        self.grid_mode = grid
        self._layout_views()

    def set_skeletons(self, shown: bool) -> None:
        """Draw COCO-17 skeletons or boxes only."""
        self.show_skeletons = shown
        for view in self.views.values():
            view.show_skeletons = shown
            view.update()

    def highlight_tracks(self, track_ids) -> None:
        """Draw these tracks' boxes thick and yellow (the query and its matches, or the selected identity)."""
        self._highlighted = set(int(t) for t in track_ids)
        for view in self.views.values():
            view.highlighted = self._highlighted
            view.update()

    def set_person_ranges(self, bars: Sequence[TimelineBar]) -> None:
        """Mark on the ruler where the selected person is visible (one bar per camera time range)."""
        self.ruler.set_bars(bars)

    def _ruler_seek(self, camera_id: int, timestamp: float) -> None:
        self.pause()
        if camera_id in self.views:
            self.set_active_camera(camera_id)
        self.seek(timestamp)

    def _layout_views(self) -> None:
        shown = [v for cid, v in self.views.items() if self.grid_mode or cid == self.active_camera]
        aspect = max(
            (
                v.camera.videos[0].width / max(1, v.camera.videos[0].height)
                for v in shown
                if v.camera.videos and v.camera.videos[0].height > 0
            ),
            default=16 / 9,
        )
        for view in self.views.values():
            view.setVisible(view in shown)
        self._empty.setVisible(not shown)
        self._empty.setGeometry(self._grid_host.rect())
        for view, rect in zip(shown, tile_rects(len(shown), self._grid_host.width(), self._grid_host.height(), aspect)):
            view.setGeometry(rect.toRect())
        for cid, view in self.views.items():
            view.set_active(cid == self.active_camera and len(shown) > 1)
        self._update_controls()

    # -- time ----------------------------------------------------------------------------------------------

    @property
    def playing(self) -> bool:
        return self._timer.isActive()

    def active_video(self) -> Optional[VideoEntry]:
        """The active camera's video at the current position."""
        view = self.views.get(self.active_camera)
        return None if view is None else view.camera.video_at(self.position)

    def seek(self, timestamp: float) -> None:
        """Move every view to wall-clock ``timestamp`` (seconds since the epoch, clamped to the footage)."""
        self.position = float(min(max(timestamp, self.start), self.end))
        for view in self.views.values():
            view.show_time(self.position)
        self._update_controls()
        self.positionChanged.emit(self.position)

    def show_moment(self, camera_id: int, timestamp: float) -> None:
        """Pause and show ``camera_id`` (made active) at ``timestamp``."""
        self.pause()
        self.set_active_camera(camera_id)
        self.seek(timestamp)

    def step(self, frames: int) -> None:
        """Pause and move by ``frames`` frames of the active camera's video."""
        self.pause()
        video = self.active_video() or next((v for c in self.cameras for v in c.videos), None)
        fps = video.fps if video is not None else 25.0
        self.seek(self.position + frames / fps + (1e-4 if frames > 0 else -1e-4) / fps)

    def jump(self, seconds: float) -> None:
        """Move by ``seconds`` (negative: back)."""
        self.seek(self.position + seconds)

    def play(self) -> None:
        if not self.views or self.end <= self.start:
            return
        if self.position >= self.end - 1e-3:
            self.seek(self.start)
        self._clock.start()
        self._timer.start()
        self._update_controls()

    def pause(self) -> None:
        self._timer.stop()
        self._update_controls()

    def toggle_play(self) -> None:
        """Play when paused, pause when playing."""
        self.pause() if self.playing else self.play()

    def _tick(self) -> None:
        elapsed = self._clock.restart() / 1000.0
        if self.position + elapsed >= self.end:
            self.seek(self.end)
            self.pause()
        else:
            self.seek(self.position + elapsed)

    def _slider_moved(self, value: int) -> None:
        if self.slider.isSliderDown() or abs(self.start + value * self._slider_unit() - self.position) > 2e-3:
            if not self._updating_slider:
                self.seek(self.start + value * self._slider_unit())

    _updating_slider = False

    def _slider_unit(self) -> float:
        """Seconds per slider step: :data:`SLIDER_UNIT_S`, coarser for footage longer than the slider's range."""
        return max(self.SLIDER_UNIT_S, (self.end - self.start) / self.SLIDER_MAX_STEPS)

    def _update_controls(self) -> None:
        style = self.style()
        self.play_button.setIcon(
            style.standardIcon(
                QStyle.StandardPixmap.SP_MediaPause if self.playing else QStyle.StandardPixmap.SP_MediaPlay
            )
        )
        enabled = bool(self.views)
        for w in (self.play_button, self.back_button, self.forward_button, self.slider):
            w.setEnabled(enabled)
        self._updating_slider = True
        # the slider counts SLIDER_UNIT_S steps from the footage start, never wall-clock values (a 32-bit int)
        unit = self._slider_unit()
        steps = max(0, int(round((self.end - self.start) / unit)))
        self.slider.setRange(0, steps)
        self.slider.setValue(min(max(int(round((self.position - self.start) / unit)), 0), steps))
        self._updating_slider = False
        self.ruler.set_playhead(self.position if enabled else None)
        zone = f" {zone_label()}" if self.start >= KNOWN_TIME_FROM else " (time unknown: from the video start)"
        self.time_label.setText(f"{format_time(self.position)} / {format_time(self.end)}{zone}" if enabled else "")

    def shutdown(self) -> None:
        """Stop playback and every decoding thread."""
        self.pause()
        for view in self.views.values():
            view.close_decoder()


class _TileHost(QWidget):
    """The area the camera tiles share; says when its size changes so the grid can choose its columns again."""

    resized = Signal()

    def resizeEvent(self, event: QResizeEvent) -> None:
        super().resizeEvent(event)
        self.resized.emit()
