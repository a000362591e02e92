"""The results gallery: who the query is, the ranked matches from every camera (thumbnail, camera, time, score, and
per-body-part similarity bars saying why each matched), filters by camera and time, and the buttons that record
whether a match is the same person."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

from PySide6.QtCore import QDateTime, QModelIndex, QPoint, QSize, Qt, QTimeZone, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QComboBox,
    QDateTimeEdit,
    QHBoxLayout,
    QLabel,
    QListView,
    QMenu,
    QVBoxLayout,
    QWidget,
)

from common.timefmt import format_time
from ui.item_models import ItemRole, ResultItem, ResultsFilterModel, ResultsModel, thumbnail_pixmap
from ui.part_bars import PartBarsDelegate
from ui.tables import push_button

ALL_CAMERAS = "All cameras"


@dataclass
class QueryInfo:
    """The person searched for: a track (None for a search by an image file, whose name is then ``camera``), its
    camera, when it is visible (seconds since the epoch) and a thumbnail (JPEG bytes or None)."""

    track_id: Optional[int]
    camera: str
    first_timestamp: float
    last_timestamp: float
    thumbnail: Optional[bytes]
    identity_id: Optional[int] = None  # the query track's identity (None: in none, or an image)


#: Timestamps before 1990 are seconds into a video whose wall-clock start is unknown (``format_time``).
_RELATIVE_BEFORE = 631152000


def _to_datetime(timestamp: float) -> QDateTime:
    if timestamp < _RELATIVE_BEFORE:
        return QDateTime.fromMSecsSinceEpoch(int(round(timestamp * 1000)), QTimeZone.utc())
    return QDateTime.fromMSecsSinceEpoch(int(round(timestamp * 1000)))


class ResultsPanel(QWidget):
    """Ranked matches of a query with camera and time filters and same/different feedback.

    Signals:
        resultActivated(camera_id, timestamp, track_id): a result was double-clicked (show it in the player).
        searchRequested(track_id): search every camera for a result's person.
        feedbackGiven(verdict, query_track_id, result_track_id): ``same`` or ``different``.
    """

    resultActivated = Signal(int, float, int)
    searchRequested = Signal(int)
    feedbackGiven = Signal(str, int, int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.query: Optional[QueryInfo] = None
        self.model = ResultsModel(self)
        self.proxy = ResultsFilterModel(self)
        self.proxy.setSourceModel(self.model)
        self._build()
        self.set_busy("Click a person in the player, or a thumbnail, to search every camera.")

    def _build(self) -> None:
        self.query_thumbnail = QLabel(self)
        self.query_thumbnail.setFixedSize(48, 96)
        self.query_label = QLabel(self)
        self.query_label.setWordWrap(True)
        header = QHBoxLayout()
        header.addWidget(self.query_thumbnail)
        header.addWidget(self.query_label, 1)

        self.camera_filter = QComboBox(self)
        self.camera_filter.setToolTip("Show the matches of one camera")
        self.camera_filter.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.camera_filter.currentIndexChanged.connect(self._apply_filters)
        self.time_filter = QCheckBox("Between", self)
        self.time_filter.setToolTip("Show only matches visible in this time window")
        self.time_filter.toggled.connect(self._apply_filters)
        self.after_edit = QDateTimeEdit(self)
        self.before_edit = QDateTimeEdit(self)
        for edit in (self.after_edit, self.before_edit):
            edit.setDisplayFormat("yyyy-MM-dd HH:mm:ss")
            # before the first search there is no time to show (not Qt's 2000-01-01): the minimum shows as text
            edit.setMinimumDateTime(QDateTime.fromMSecsSinceEpoch(-2208988800000, QTimeZone.utc()))  # 1900
            edit.setSpecialValueText("after a search")
            edit.setDateTime(edit.minimumDateTime())
            edit.dateTimeChanged.connect(self._apply_filters)
        self.time_filter.setEnabled(False)
        camera_row = QHBoxLayout()
        camera_row.addWidget(self.camera_filter)
        camera_row.addStretch(1)
        time_row = QHBoxLayout()  # a row of its own: two full date-times fit a narrow dock
        time_row.addWidget(self.time_filter)
        time_row.addWidget(self.after_edit, 1)
        time_row.addWidget(QLabel("and", self))
        time_row.addWidget(self.before_edit, 1)
        filters = QVBoxLayout()
        filters.addLayout(camera_row)
        filters.addLayout(time_row)

        self.view = QListView(self)
        self.view.setModel(self.proxy)
        self.view.setViewMode(QListView.ViewMode.ListMode)  # one match per row: thumbnail, rank, score, where
        self.view.setIconSize(QSize(48, 96))
        self.view.setSpacing(2)
        self.view.setUniformItemSizes(True)
        self.view.setAlternatingRowColors(True)
        self.view.setTextElideMode(Qt.TextElideMode.ElideRight)
        self.view.setItemDelegate(PartBarsDelegate(self.view))  # why this match: per-part similarity bars
        self.view.setResizeMode(QListView.ResizeMode.Adjust)  # rows follow the dock's width (bars at the right)
        self.view.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        self.view.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.view.doubleClicked.connect(self._activate)
        self.view.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.view.customContextMenuRequested.connect(self._context_menu)
        self.view.selectionModel().selectionChanged.connect(self._update_buttons)

        self.confirm_button = push_button(
            self,
            "Same person",
            "Confirm the selected match as the query's person (Ctrl+Y)",
            lambda: self.feedback_on_selected("same"),
        )
        self.reject_button = push_button(
            self,
            "Not this person",
            "Reject the selected match; it is never shown for this person again (Ctrl+D)",
            lambda: self.feedback_on_selected("different"),
        )
        self.search_button = push_button(
            self, "Search from this", "Search every camera for the selected match's person", self._search_selected
        )
        buttons = QHBoxLayout()
        buttons.addWidget(self.confirm_button)
        buttons.addWidget(self.reject_button)
        buttons.addStretch(1)
        buttons.addWidget(self.search_button)

        self.status = QLabel(self)
        self.status.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addLayout(header)
        layout.addLayout(filters)
        layout.addWidget(self.view, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.status)
        self._update_buttons()

    # -- content -------------------------------------------------------------------------------------------

    def set_busy(self, text: str) -> None:
        """Show a status line (searching..., an error, a hint)."""
        self.status.setText(text)

    def show_results(self, query: QueryInfo, items: Sequence[ResultItem], elapsed_ms: float) -> None:
        """Show the matches of ``query`` (best first); the filters are reset to all cameras and the results'
        time range."""
        self.query = query
        self.query_thumbnail.setPixmap(thumbnail_pixmap(query.thumbnail, self.query_thumbnail.size()))
        if query.track_id is None:
            self.query_label.setText(f"<b>Image</b> {query.camera}")
        else:
            identity = f", identity {query.identity_id}" if query.identity_id is not None else ", in no identity"
            self.query_label.setText(
                f"<b>Track {query.track_id}</b> on {query.camera}{identity}<br>"
                f"{format_time(query.first_timestamp)} – {format_time(query.last_timestamp)}"
            )
        self.model.set_items(items)
        cameras = sorted({i.camera for i in items})
        self.camera_filter.blockSignals(True)
        self.camera_filter.clear()
        self.camera_filter.addItems([ALL_CAMERAS, *cameras])
        self.camera_filter.blockSignals(False)
        if items:
            low = min(i.first_timestamp for i in items)
            high = max(i.last_timestamp for i in items)
            # video-relative times (unknown start, shown from 1970) read better as times of day in UTC
            relative = high < _RELATIVE_BEFORE
            for edit, value in ((self.after_edit, low), (self.before_edit, high)):
                edit.blockSignals(True)
                edit.setSpecialValueText("")  # a real time from now on
                edit.setTimeZone(QTimeZone.utc() if relative else QTimeZone.systemTimeZone())
                edit.setDisplayFormat("HH:mm:ss" if relative else "yyyy-MM-dd HH:mm:ss")
                edit.setDateTime(_to_datetime(value))
                edit.blockSignals(False)
        self.time_filter.setEnabled(bool(items))
        self.time_filter.setChecked(False)
        self._apply_filters()
        other = sum(i.camera != query.camera for i in items)
        where = f" ({other} on other cameras)" if query.track_id is not None else ""
        self.set_busy(
            f"{len(items)} matching tracks{where} in {elapsed_ms:.0f} ms. "
            f"Double-click one to see it; right-click for more."
        )
        self._update_buttons()

    def items(self) -> list[ResultItem]:
        """The results shown after filtering, in rank order."""
        return [self.proxy.index(r, 0).data(ItemRole) for r in range(self.proxy.rowCount())]

    def _apply_filters(self) -> None:
        camera = self.camera_filter.currentText()
        self.proxy.set_cameras(None if camera in ("", ALL_CAMERAS) else [camera])
        if self.time_filter.isChecked():
            # QDateTimeEdit shows whole seconds: widen the window to the seconds shown.
            self.proxy.set_time_window(
                self.after_edit.dateTime().toMSecsSinceEpoch() / 1000.0,
                self.before_edit.dateTime().toMSecsSinceEpoch() / 1000.0 + 0.999,
            )
        else:
            self.proxy.set_time_window(None, None)
        for edit in (self.after_edit, self.before_edit):
            edit.setEnabled(self.time_filter.isChecked())

    # -- actions -------------------------------------------------------------------------------------------

    def selected(self) -> Optional[ResultItem]:
        """The selected result, or None."""
        rows = self.view.selectionModel().selectedIndexes()
        return rows[0].data(ItemRole) if rows else None

    def _update_buttons(self, *args) -> None:
        has = self.selected() is not None and self.query is not None
        for button in (self.confirm_button, self.reject_button):
            button.setEnabled(has and self.query.track_id is not None)  # an image query has no track to pair
        self.search_button.setEnabled(has)

    def _activate(self, index: QModelIndex) -> None:
        item: ResultItem = index.data(ItemRole)
        if item is not None:
            self.resultActivated.emit(item.camera_id, item.timestamp, item.track_id)

    def feedback_on_selected(self, verdict: str) -> None:
        """Emit :attr:`feedbackGiven` for the selected match (``same`` or ``different``)."""
        item = self.selected()
        if item is not None and self.query is not None and self.query.track_id is not None:
            self.feedbackGiven.emit(verdict, self.query.track_id, item.track_id)

    def _search_selected(self) -> None:
        item = self.selected()
        if item is not None:
            self.searchRequested.emit(item.track_id)

    def _context_menu(self, point: QPoint) -> None:
        index = self.view.indexAt(point)
        if not index.isValid():
            return
        self.view.setCurrentIndex(index)
        menu = QMenu(self)
        menu.addAction("Show in player", lambda: self._activate(index))
        menu.addAction("Search every camera for this person", self._search_selected)
        menu.addSeparator()
        menu.addAction("Same person as the query", lambda: self.feedback_on_selected("same"))
        menu.addAction("Not the query's person", lambda: self.feedback_on_selected("different"))
        menu.exec(self.view.viewport().mapToGlobal(point))
