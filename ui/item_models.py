"""Qt item models over plain data: cameras, search results (with a camera/time filter), identities, thumbnails."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Optional, Sequence

from PySide6.QtCore import QAbstractListModel, QAbstractTableModel, QModelIndex, QSize, QSortFilterProxyModel, Qt
from PySide6.QtGui import QImage, QPixmap

from common.timefmt import KNOWN_TIME_FROM, confidence_text, format_time, zone_label

#: Role of the plain-data object behind a row.
ItemRole = Qt.ItemDataRole.UserRole + 1
THUMBNAIL_SIZE = QSize(64, 128)


def thumbnail_pixmap(jpeg: Optional[bytes], size: QSize = THUMBNAIL_SIZE) -> QPixmap:
    """A JPEG thumbnail as a pixmap scaled into ``size`` (a grey placeholder when absent or unreadable)."""
    image = QImage.fromData(jpeg) if jpeg else QImage()
    if image.isNull():
        pixmap = QPixmap(size)
        pixmap.fill(Qt.GlobalColor.darkGray)
        return pixmap
    return QPixmap.fromImage(image).scaled(
        size, Qt.AspectRatioMode.KeepAspectRatio, Qt.TransformationMode.SmoothTransformation
    )


@dataclass
class ResultItem:
    """One search result as the gallery shows it: a track, by its best matching sighting.

    Attributes:
        track_id, camera_id, camera, sighting_id: what matched.
        timestamp: when the best sighting was seen, seconds since the epoch.
        first_timestamp, last_timestamp: the track's time range, seconds since the epoch.
        score: cosine similarity. thumbnail: JPEG bytes or None.
        identity_id: the track's identity, if any. confirmed: a user confirmed it for this query.
        parts: why this match: ``(part name, cosine or None when not visible)`` per body part, top to bottom
            (``pipelines.matching.explain``); empty for models without part branches.
    """

    track_id: int
    camera_id: int
    camera: str
    sighting_id: int
    timestamp: float
    first_timestamp: float
    last_timestamp: float
    score: float
    thumbnail: Optional[bytes]
    identity_id: Optional[int] = None
    confirmed: bool = False
    parts: tuple = ()

    @classmethod
    def from_result(cls, result) -> "ResultItem":
        """Build from a ``pipelines.matching.search.SearchResult``."""
        best = result.best.sighting
        return cls(
            result.track_id,
            result.camera_id,
            result.camera,
            best.id,
            best.timestamp,
            result.first_timestamp,
            result.last_timestamp,
            result.score,
            best.thumbnail,
            result.identity_id,
            result.confirmed,
            tuple((p.name, p.similarity) for p in getattr(result, "parts", ())),
        )

    def parts_text(self) -> str:
        """``"upper body 0.91, legs 0.62, head not visible"`` (``pipelines.matching.explain.describe_parts``; empty
        without
        parts)."""
        from pipelines.matching.explain import PartSimilarity, describe_parts

        return describe_parts([PartSimilarity(name, value) for name, value in self.parts])


class _PlainListModel(QAbstractListModel):
    """A list model over a Python list; subclasses say how an item is shown."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._items: list = []
        self._pixmaps: dict[int, QPixmap] = {}

    def set_items(self, items: Sequence) -> None:
        """Replace all rows."""
        self.beginResetModel()
        self._items = list(items)
        self._pixmaps.clear()
        self.endResetModel()

    def items(self) -> list:
        """The items, in row order."""
        return list(self._items)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._items)

    def _pixmap(self, row: int, jpeg: Optional[bytes]) -> QPixmap:
        if row not in self._pixmaps:
            self._pixmaps[row] = thumbnail_pixmap(jpeg)
        return self._pixmaps[row]


class ResultsModel(_PlainListModel):
    """Search results (:class:`ResultItem`), best first: thumbnail, camera, time and score."""

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item: ResultItem = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            mark = "  ✔ confirmed" if item.confirmed else ""
            identity = f"identity {item.identity_id}" if item.identity_id is not None else "no identity"
            return (
                f"#{index.row() + 1}  score {item.score:.3f}{mark}\n{item.camera} · track {item.track_id} · "
                f"{identity}\n{format_time(item.timestamp)}"
            )
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap(index.row(), item.thumbnail)
        if role == Qt.ItemDataRole.ToolTipRole:
            identity = f", identity {item.identity_id}" if item.identity_id is not None else ""
            return (
                f"track {item.track_id} on {item.camera}{identity}\nvisible {format_time(item.first_timestamp)}"
                f" – {format_time(item.last_timestamp)}\nscore {item.score:.3f}"
                + ("\nconfirmed as the same person" if item.confirmed else "")
                + (f"\nwhy: {item.parts_text()}" if item.parts else "")
                + "\ndouble-click: show in the player"
            )
        if role == ItemRole:
            return item
        return None


class ResultsFilterModel(QSortFilterProxyModel):
    """Keeps the results of chosen cameras whose track is visible inside a time window (seconds since the
    epoch, inclusive; None: open)."""

    def __init__(self, parent=None):
        super().__init__(parent)
        self._cameras: Optional[set[str]] = None
        self._after: Optional[float] = None
        self._before: Optional[float] = None

    def set_cameras(self, cameras: Optional[Sequence[str]]) -> None:
        """Show only these camera names (None: all)."""
        self._refilter(lambda: setattr(self, "_cameras", None if cameras is None else set(cameras)))

    def set_time_window(self, after: Optional[float], before: Optional[float]) -> None:
        """Show only tracks visible at some time in ``[after, before]``."""
        self._refilter(lambda: (setattr(self, "_after", after), setattr(self, "_before", before)))

    def _refilter(self, change) -> None:
        if hasattr(self, "beginFilterChange"):  # Qt >= 6.9; invalidateFilter() is deprecated there
            self.beginFilterChange()
            change()
            self.endFilterChange()
        else:
            change()
            self.invalidateFilter()

    def filterAcceptsRow(self, source_row: int, source_parent: QModelIndex) -> bool:
        item: ResultItem = self.sourceModel().index(source_row, 0, source_parent).data(ItemRole)
        if item is None:
            return False
        if self._cameras is not None and item.camera not in self._cameras:
            return False
        if self._after is not None and item.last_timestamp < self._after:
            return False
        if self._before is not None and item.first_timestamp > self._before:
            return False
        return True


@dataclass
class ThumbnailItem:
    """A track shown by one thumbnail (identity panels): where and when, and the JPEG bytes."""

    track_id: int
    camera: str
    timestamp: float
    thumbnail: Optional[bytes]


class ThumbnailsModel(_PlainListModel):
    """Thumbnails (:class:`ThumbnailItem`) captioned with camera and time."""

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item: ThumbnailItem = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return f"track {item.track_id}\n{item.camera}\n{format_time(item.timestamp)}"
        if role == Qt.ItemDataRole.DecorationRole:
            return self._pixmap(index.row(), item.thumbnail)
        if role == Qt.ItemDataRole.ToolTipRole:
            return (
                f"track {item.track_id} on {item.camera}\ndouble-click: search every camera for this person; "
                f"select some and 'Split off selected tracks' to make them another person"
            )
        if role == ItemRole:
            return item
        return None


class _PlainTableModel(QAbstractTableModel):
    """A table model over a Python list; subclasses give the headers and cell texts."""

    headers: tuple[str, ...] = ()

    def __init__(self, parent=None):
        super().__init__(parent)
        self._items: list = []

    def set_items(self, items: Sequence) -> None:
        """Replace all rows."""
        self.beginResetModel()
        self._items = list(items)
        self.endResetModel()

    def items(self) -> list:
        """The items, in row order."""
        return list(self._items)

    def rowCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self._items)

    def columnCount(self, parent: QModelIndex = QModelIndex()) -> int:
        return 0 if parent.isValid() else len(self.headers)

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        if role == Qt.ItemDataRole.DisplayRole and orientation == Qt.Orientation.Horizontal:
            return self.headers[section]
        return None

    def cell(self, item, column: int) -> Any:
        """The text of ``item`` in ``column`` (subclasses show their own fields; here: the item's text)."""
        return str(item) if column == 0 else ""

    def tooltip(self, item) -> Optional[str]:
        """The tooltip of ``item``'s row (None: none)."""
        return None

    def data(self, index: QModelIndex, role: int = Qt.ItemDataRole.DisplayRole) -> Any:
        if not index.isValid():
            return None
        item = self._items[index.row()]
        if role == Qt.ItemDataRole.DisplayRole:
            return self.cell(item, index.column())
        if role == Qt.ItemDataRole.ToolTipRole:
            return self.tooltip(item)
        if role == Qt.ItemDataRole.TextAlignmentRole and index.column() > 0:
            return int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        if role == ItemRole:
            return item
        return None


class CamerasModel(_PlainTableModel):
    """Cameras (``storage.catalog.CameraEntry``): name, videos, footage duration, tracks and ingest state."""

    headers = ("camera", "videos", "duration", "tracks", "state")

    def cell(self, camera, column: int) -> Any:
        minutes, seconds = divmod(camera.duration_s, 60)
        return (
            camera.name,
            str(len(camera.videos)),
            f"{int(minutes)}:{seconds:04.1f}",
            str(camera.tracks),
            camera.state,
        )[column]

    def tooltip(self, camera) -> str:
        lines = [f"{camera.name}: double-click to watch"]
        for v in camera.videos:
            lines.append(
                f"{v.path} — {v.duration_s:.1f} s, {v.fps:.1f} fps, {v.width}×{v.height}, {v.status}"
                + (f" ({v.frames_lost} damaged frames skipped)" if v.frames_lost else "")
                + (
                    ""
                    if v.finished
                    else f" ({v.frames_analysed} frames analysed; add the same file again to complete it)"
                )
            )
        return "\n".join(lines)


class IdentitiesModel(_PlainTableModel):
    """Identities (``pipelines.matching.identities.IdentitySummary``): id, cameras, tracks, first and last seen,
    confidence."""

    headers = ("identity", "name", "cameras", "tracks", "first seen", "last seen", "confidence")

    def __init__(self, parent=None):
        super().__init__(parent)
        #: identity id -> (label, note), the names given to persons of interest.
        self.labels: dict[int, tuple[str, str]] = {}

    def set_labels(self, labels: dict[int, tuple[str, str]]) -> None:
        """The names given to identities (shown in the name column; call before :meth:`set_items`)."""
        self.labels = dict(labels)

    def label_of(self, identity_id: int) -> str:
        """The identity's name, "" when unnamed."""
        return self.labels.get(identity_id, ("", ""))[0]

    def headerData(self, section: int, orientation: Qt.Orientation, role: int = Qt.ItemDataRole.DisplayRole):
        text = super().headerData(section, orientation, role)
        if text in ("first seen", "last seen") and any(i.first_timestamp >= KNOWN_TIME_FROM for i in self._items):
            return f"{text} ({zone_label()})"  # the times shown are local wall-clock times
        return text

    def cell(self, identity, column: int) -> Any:
        return (
            str(identity.id),
            self.label_of(identity.id),
            str(len(identity.cameras)),
            str(len(identity.track_ids)),
            format_time(identity.first_timestamp),
            format_time(identity.last_timestamp),
            confidence_text(identity.confidence, len(identity.track_ids)),
        )[column]

    def tooltip(self, identity) -> str:
        note = self.labels.get(identity.id, ("", ""))[1]
        return (
            "seen by "
            + ", ".join(identity.cameras)
            + (f"\nnote: {note}" if note else "")
            + "\nselect to see the timeline and thumbnails; Ctrl+click a second one to merge"
        )
