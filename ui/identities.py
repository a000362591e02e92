"""Identities: the list of people found across cameras (with the names given to persons of interest); for the
selected one, a timeline with a row per camera and a bar wherever the person is visible (click a bar to see that
moment) and the thumbnails of its tracks; buttons to name, merge, split and export evidence."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

from PySide6.QtCore import QSize, Qt, Signal
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QListView,
    QPlainTextEdit,
    QPushButton,
    QSplitter,
    QVBoxLayout,
    QWidget,
)

from common.timefmt import confidence_text
from ui.item_models import IdentitiesModel, ItemRole, ThumbnailItem, ThumbnailsModel
from ui.tables import push_button, row_table
from ui.timeline import TimelineBar, TimelineWidget


class LabelDialog(QDialog):
    """Name an identity (a person of interest, e.g. "Suspect A") and keep a note with the name."""

    def __init__(self, identity_id: int, name: str, note: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Name identity {identity_id}")
        self.name = QLineEdit(name, self)
        self.name.setPlaceholderText("e.g. Suspect A (empty: remove the name)")
        self.name.setMaxLength(200)
        self.note = QPlainTextEdit(note, self)
        self.note.setPlaceholderText("what is known of this person (kept with the name, shown in evidence)")
        form = QFormLayout(self)
        form.addRow("Name", self.name)
        form.addRow("Note", self.note)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(420, 220)

    def values(self) -> tuple[str, str]:
        """The name (stripped; empty means remove) and the note."""
        return self.name.text().strip(), self.note.toPlainText().strip()


#: Height of a thumbnail's cell (pixels): the 112 px image and its three caption lines (track, camera, time).
THUMBNAIL_CELL_HEIGHT = 182


class ExportDialog(QDialog):
    """Where to write an identity's evidence, and whether to cut H.264 clips from the source videos."""

    def __init__(self, identity_id: int, folder: str, parent=None):
        super().__init__(parent)
        self.setWindowTitle(f"Export evidence of identity {identity_id}")
        self.folder = QLineEdit(folder, self)
        browse = QPushButton("Browse…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder, 1)
        row.addWidget(browse)
        self.clips = QCheckBox("Cut an H.264 clip of each track (camera, time, track and identity burned in)", self)
        self.clips.setChecked(True)
        self.redact = QCheckBox("Blur everyone else (bystanders) in the crops and clips", self)
        self.redact.setChecked(True)
        self.redact.setToolTip(
            "Off exports the source pixels, for a court that asks for the original; the "
            "manifest records which. The source footage is never changed."
        )
        form = QFormLayout(self)
        form.addRow("Folder", row)
        form.addRow("", self.clips)
        form.addRow("", self.redact)
        form.addRow(
            QLabel(
                "Writes an HTML case report, crops, JSON/CSV and a manifest.json with the SHA-256 of "
                "every source video and exported file. Recorded in the audit log.",
                self,
            )
        )
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        form.addRow(buttons)
        self.resize(560, 200)

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export evidence to", self.folder.text())
        if chosen:
            self.folder.setText(chosen)


class IdentitiesPanel(QWidget):
    """The identities list, with the selected identity's timeline, thumbnails and actions.

    Select two identities (Ctrl+click) to merge them; select thumbnails to split those tracks off.

    Signals:
        seekRequested(camera_id, timestamp): a timeline bar was clicked.
        searchRequested(track_id): a thumbnail was double-clicked.
        thumbnailsWanted(identity_id): the selected identity's thumbnails are needed (:meth:`set_thumbnails`).
        identitySelected(identity_id, track_ids, bars): the selected identity changed: its tracks and its
            ``TimelineBar`` time ranges (to highlight them in the player).
        labelRequested(identity_id, name, note): name an identity ("" removes the name).
        mergeRequested(identity_a, identity_b): merge two identities.
        splitRequested(identity_id, track_ids): split these tracks off into an identity of their own.
        exportRequested(identity_id, folder, clips, redact): export the identity's evidence (``redact``: blur
            the bystanders).
    """

    seekRequested = Signal(int, float)
    searchRequested = Signal(int)
    thumbnailsWanted = Signal(int)
    identitySelected = Signal(int, list, list)
    labelRequested = Signal(int, str, str)
    mergeRequested = Signal(int, int)
    splitRequested = Signal(int, list)
    exportRequested = Signal(int, str, bool, bool)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = IdentitiesModel(self)
        self.thumbnails = ThumbnailsModel(self)
        self.camera_ids: dict[str, int] = {}
        self.time_range = (0.0, 1.0)
        self.export_folder = ""
        self._build()

    def _build(self) -> None:
        self.table = row_table(self, self.model)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.table.selectionModel().selectionChanged.connect(self._selection_changed)
        self.timeline = TimelineWidget(self)
        self.timeline.seekRequested.connect(self.seekRequested)
        self.thumbnail_view = QListView(self)
        self.thumbnail_view.setModel(self.thumbnails)
        self.thumbnail_view.setViewMode(QListView.ViewMode.IconMode)
        self.thumbnail_view.setFlow(QListView.Flow.LeftToRight)
        self.thumbnail_view.setWrapping(True)  # rows of thumbnails beside the timeline, scrolling down
        self.thumbnail_view.setResizeMode(QListView.ResizeMode.Adjust)
        self.thumbnail_view.setIconSize(QSize(56, 112))
        self.thumbnail_view.setGridSize(QSize(140, THUMBNAIL_CELL_HEIGHT))
        self.thumbnail_view.setTextElideMode(Qt.TextElideMode.ElideNone)
        # at least one row of thumbnails with their three-line captions, never cut; more rows scroll down
        self.thumbnail_view.setMinimumHeight(THUMBNAIL_CELL_HEIGHT + 2 * self.thumbnail_view.frameWidth() + 4)
        self.thumbnail_view.setMinimumWidth(2 * 140 + self.thumbnail_view.verticalScrollBar().sizeHint().width())
        self.thumbnail_view.setMovement(QListView.Movement.Static)
        self.thumbnail_view.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.thumbnail_view.doubleClicked.connect(self._thumbnail_activated)
        self.thumbnail_view.selectionModel().selectionChanged.connect(self._update_buttons)
        self.caption = QLabel("No identities yet: they are made after each ingest.", self)
        self.caption.setWordWrap(True)

        self.label_button = push_button(
            self, "Name…", "Name the selected identity (a person of interest) and keep a note", self._label
        )
        self.merge_button = push_button(
            self, "Merge", "Merge the two selected identities into one person (Ctrl+click selects two)", self._merge
        )
        self.split_button = push_button(
            self,
            "Split off selected tracks",
            "Make the selected thumbnails' tracks an identity of their own",
            self._split,
        )
        self.export_button = push_button(
            self,
            "Export evidence…",
            "Write the case report, crops, clips and manifest of the selected identity",
            self._export,
        )
        buttons = QHBoxLayout()
        for b in (self.label_button, self.merge_button, self.split_button):
            buttons.addWidget(b)
        buttons.addStretch(1)
        buttons.addWidget(self.export_button)

        detail = QWidget(self)
        detail_layout = QVBoxLayout(detail)
        detail_layout.setContentsMargins(0, 0, 0, 0)
        detail_layout.addWidget(self.caption)
        # the timeline and the thumbnails side by side: the bottom dock stays low and the player keeps its height
        beside = QSplitter(Qt.Orientation.Horizontal, detail)
        beside.addWidget(self.timeline)
        beside.addWidget(self.thumbnail_view)
        beside.setStretchFactor(0, 1)
        beside.setStretchFactor(1, 1)
        beside.setSizes([500, 450])  # room for three thumbnails in a row
        detail_layout.addWidget(beside, 1)
        detail_layout.addLayout(buttons)
        splitter = QSplitter(Qt.Orientation.Horizontal, self)
        splitter.addWidget(self.table)
        splitter.addWidget(detail)
        splitter.setStretchFactor(1, 2)
        splitter.setSizes([480, 900])
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(splitter)
        self._update_buttons()

    def set_identities(
        self,
        identities: Sequence,
        camera_ids: dict[str, int],
        time_range: tuple[float, float],
        labels: dict[int, tuple[str, str]] | None = None,
        coverage: dict[int, list[tuple[float, float]]] | None = None,
    ) -> None:
        """Show ``identities`` (``IdentitySummary``) with their names (id -> (label, note)) over the cameras
        (name -> id), the footage's time range (seconds) and each camera's footage (id -> spans); the selected
        identity stays selected when it still exists."""
        selected = self.selected()
        self.camera_ids = dict(camera_ids)
        self.time_range = time_range
        self.model.set_labels(labels or {})
        self.model.set_items(identities)
        self.timeline.set_coverage(coverage or {})
        multi = sum(len(i.cameras) > 1 for i in identities)
        self.caption.setText(
            f"{len(identities)} identities, {multi} seen by several cameras. Select one."
            if identities
            else "No identities yet: they are made after each ingest."
        )
        if selected is None or not self.select_identity(selected.id):
            self.timeline.set_content([], [], *time_range)
            self.thumbnails.set_items([])
        self._update_buttons()

    def selected(self):
        """The selected ``IdentitySummary`` (the current one when several are selected), or None."""
        chosen = self.selected_identities()
        current = self.table.currentIndex()
        if current.isValid() and self.table.selectionModel().isRowSelected(current.row(), current.parent()):
            return self.model.items()[current.row()]
        return chosen[0] if chosen else None

    def selected_identities(self) -> list:
        """Every selected ``IdentitySummary``, in row order."""
        rows = sorted(r.row() for r in self.table.selectionModel().selectedRows())
        items = self.model.items()
        return [items[r] for r in rows if r < len(items)]

    def select_identity(self, identity_id: int) -> bool:
        """Select an identity by id (only it); False when it is not listed."""
        for row, identity in enumerate(self.model.items()):
            if identity.id == identity_id:
                self.table.clearSelection()
                self.table.setCurrentIndex(self.model.index(row, 0))
                self.table.selectRow(row)
                return True
        return False

    def selected_track_ids(self) -> list[int]:
        """The tracks of the selected thumbnails."""
        return sorted(i.data(ItemRole).track_id for i in self.thumbnail_view.selectionModel().selectedIndexes())

    def set_playhead(self, timestamp: float) -> None:
        """Show the player's moment on the timeline."""
        self.timeline.set_playhead(timestamp)

    def _selection_changed(self, *args) -> None:
        self._update_buttons()
        identity = self.selected()
        if identity is None:
            return
        cameras = sorted(self.camera_ids.items())
        bars = [
            TimelineBar(self.camera_ids[name], name, start, end, tracks)
            for name, ranges in identity.cameras.items()
            if name in self.camera_ids
            for start, end, tracks in ranges
        ]
        self.timeline.set_content([(cid, name) for name, cid in cameras], bars, *self.time_range)
        name = self.model.label_of(identity.id)
        self.caption.setText(
            f"Identity {identity.id}"
            + (f" “{name}”" if name else "")
            + f": {len(identity.track_ids)} tracks on {', '.join(identity.cameras)} (confidence "
            f"{confidence_text(identity.confidence, len(identity.track_ids))}). Click a bar to see "
            f"that moment; double-click a thumbnail to search for this person."
        )
        self.thumbnails.set_items([])
        self.thumbnailsWanted.emit(identity.id)
        self.identitySelected.emit(identity.id, list(identity.track_ids), bars)

    def set_thumbnails(self, identity_id: int, items: Sequence[ThumbnailItem]) -> None:
        """Thumbnails of an identity's tracks (ignored when another identity is selected by now)."""
        identity = self.selected()
        if identity is not None and identity.id == identity_id:
            self.thumbnails.set_items(sorted(items, key=lambda i: i.timestamp))
        self._update_buttons()

    def _update_buttons(self, *args) -> None:
        chosen = self.selected_identities()
        one = len(chosen) == 1
        self.label_button.setEnabled(one)
        self.export_button.setEnabled(one)
        self.merge_button.setEnabled(len(chosen) == 2)
        picked = len(self.thumbnail_view.selectionModel().selectedIndexes())
        self.split_button.setEnabled(one and 0 < picked < len(chosen[0].track_ids))

    def _thumbnail_activated(self, index) -> None:
        item: ThumbnailItem = index.data(ItemRole)
        if item is not None:
            self.searchRequested.emit(item.track_id)

    def _label(self) -> None:
        identity = self.selected()
        if identity is None:
            return
        name, note = self.model.labels.get(identity.id, ("", ""))
        dialog = LabelDialog(identity.id, name, note, self)
        if dialog.exec():
            self.labelRequested.emit(identity.id, *dialog.values())

    def _merge(self) -> None:
        chosen = self.selected_identities()
        if len(chosen) == 2:
            self.mergeRequested.emit(chosen[0].id, chosen[1].id)

    def _split(self) -> None:
        identity = self.selected()
        tracks = self.selected_track_ids()
        if identity is not None and tracks:
            self.splitRequested.emit(identity.id, tracks)

    def _export(self) -> None:
        identity = self.selected()
        if identity is None:
            return
        parent = Path(self.export_folder) if self.export_folder else Path.cwd()
        dialog = ExportDialog(identity.id, str(parent / f"identity-{identity.id}"), self)
        folder = dialog.folder.text().strip() if dialog.exec() else ""
        if folder:
            self.export_folder = str(Path(folder).parent)  # the next export goes next to this one
            self.exportRequested.emit(identity.id, folder, dialog.clips.isChecked(), dialog.redact.isChecked())
