"""The cameras panel: cameras with their videos, footage and ingest state; "Add videos..." with a dialog for the
camera names and models, and per-camera ingest progress with a Cancel button."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Sequence

from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from ui.item_models import CamerasModel, ItemRole
from ui.tables import row_table

VIDEO_FILTER = "Videos (*.mp4 *.avi *.mkv *.mov *.m4v *.ts *.webm);;All files (*)"


class IngestDialog(QDialog):
    """Choose camera names and models for the videos to ingest.

    Args:
        paths: the chosen video files.
        choices: defaults (a ``pipelines.ingest.choices.IngestChoices``); ``detector``/``reid`` None or empty
            means the settings' default.
    """

    def __init__(self, paths: Sequence[Path], choices, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Add videos")
        self.paths = [Path(p) for p in paths]
        self.choices = choices
        self.table = QTableWidget(len(self.paths), 2, self)
        self.table.setHorizontalHeaderLabels(["video", "camera name"])
        self.table.horizontalHeader().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.table.verticalHeader().setVisible(False)
        for row, path in enumerate(self.paths):
            item = QTableWidgetItem(str(path))
            item.setFlags(item.flags() & ~Qt.ItemFlag.ItemIsEditable)
            self.table.setItem(row, 0, item)
            self.table.setItem(row, 1, QTableWidgetItem(path.stem))
        self.detector = QLineEdit(choices.detector or "", self)
        self.detector.setPlaceholderText("default: yolov8n")
        self.reid = QLineEdit(choices.reid or "", self)
        self.reid.setPlaceholderText("default: the joint-loss network (untrained: poor matches)")
        self.fps = QDoubleSpinBox(self)
        self.fps.setRange(0.1, 60.0)
        self.fps.setValue(choices.analysis_fps)
        self.fps.setSuffix(" frames/s")
        self.duration = QDoubleSpinBox(self)
        self.duration.setRange(0.0, 1e7)
        self.duration.setValue(choices.duration_s or 0.0)
        self.duration.setSpecialValueText("whole video")
        self.duration.setSuffix(" s")
        form = QFormLayout()
        form.addRow("Detector", self._with_browse(self.detector, folder=True))
        form.addRow("Re-id model", self._with_browse(self.reid, folder=False))
        form.addRow("Analyse", self.fps)
        form.addRow("Only the first", self.duration)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Ingest")
        buttons.accepted.connect(self._accept)
        buttons.rejected.connect(self.reject)
        self.error = QLabel(self)
        self.error.setStyleSheet("color: #c0392b")
        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("Each video is one camera. Videos already ingested are skipped.", self))
        layout.addWidget(self.table)
        layout.addLayout(form)
        layout.addWidget(self.error)
        layout.addWidget(buttons)
        self.resize(720, 420)

    def _with_browse(self, edit: QLineEdit, folder: bool) -> QWidget:
        host = QWidget(self)
        row = QHBoxLayout(host)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(edit, 1)
        button = QToolButton(host)
        button.setText("…")
        button.setToolTip(
            "Choose a file" + (" (or an export folder: cancel, then choose the folder)" if folder else "")
        )

        def browse():
            path, _ = QFileDialog.getOpenFileName(self, "Choose weights", edit.text())
            if not path and folder:
                path = QFileDialog.getExistingDirectory(self, "Choose an export folder", edit.text())
            if path:
                edit.setText(path)

        button.clicked.connect(browse)
        row.addWidget(button)
        return host

    def cameras(self) -> list[str]:
        """The camera name of each video, in order."""
        return [(self.table.item(r, 1).text() or "").strip() for r in range(len(self.paths))]

    def result_choices(self):
        """The choices made, as an ``IngestChoices``."""
        return replace(
            self.choices,
            detector=self.detector.text().strip() or None,
            reid=self.reid.text().strip() or None,
            analysis_fps=self.fps.value(),
            duration_s=self.duration.value() or None,
        )

    def _accept(self) -> None:
        names = self.cameras()
        if any(not n for n in names):
            self.error.setText("Every video needs a camera name.")
        elif len(set(names)) != len(names):
            self.error.setText("Two videos have the same camera name; give each camera its own name.")
        else:
            self.accept()


class OverlapDialog(QDialog):
    """Choose cameras that see a common area (one person may be in them at the same instant) or that do not.

    Args:
        cameras: every camera name.
        overlaps: camera name -> names marked as overlapping with it now.
    """

    def __init__(self, cameras: Sequence[str], overlaps: dict, parent=None):
        super().__init__(parent)
        self.setWindowTitle("Overlapping cameras")
        self.checks = {name: QCheckBox(name, self) for name in cameras}
        marked = sorted({tuple(sorted((a, b))) for a, partners in overlaps.items() for b in partners})
        now = ", ".join(f"{a} + {b}" for a, b in marked) or "none"
        layout = QVBoxLayout(self)
        layout.addWidget(
            QLabel(
                "Tick two or more cameras that see a common area. Identities are made again.\n"
                f"Marked as overlapping now: {now}",
                self,
            )
        )
        for check in self.checks.values():
            layout.addWidget(check)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Cancel)
        self.mark_button = buttons.addButton("Mark as overlapping", QDialogButtonBox.ButtonRole.AcceptRole)
        self.unmark_button = buttons.addButton("Not overlapping", QDialogButtonBox.ButtonRole.AcceptRole)
        self._overlapping = True
        self.mark_button.clicked.connect(lambda: self._choose(True))
        self.unmark_button.clicked.connect(lambda: self._choose(False))
        buttons.rejected.connect(self.reject)
        for check in self.checks.values():
            check.toggled.connect(self._update)
        layout.addWidget(buttons)
        self._update()

    def _choose(self, overlapping: bool) -> None:
        self._overlapping = overlapping
        self.accept()

    def _update(self, *args) -> None:
        enough = len(self.chosen()) >= 2
        self.mark_button.setEnabled(enough)
        self.unmark_button.setEnabled(enough)

    def chosen(self) -> list[str]:
        """The ticked camera names."""
        return [name for name, check in self.checks.items() if check.isChecked()]

    def overlapping(self) -> bool:
        """True: mark the ticked cameras as overlapping; False: unmark them."""
        return self._overlapping


class _CameraProgress:
    """One camera's row in the ingest area: name, bar and state."""

    def __init__(self, parent: QWidget, layout: QGridLayout, row: int, camera: str):
        self.name = QLabel(camera, parent)
        self.bar = QProgressBar(parent)
        self.bar.setRange(0, 0)  # busy until the camera starts
        self.bar.setFormat("%v / %m frames")
        self.state = QLabel("waiting", parent)
        self.state.setWordWrap(True)
        layout.addWidget(self.name, row, 0)
        layout.addWidget(self.bar, row, 1)
        layout.addWidget(self.state, row, 2)

    def widgets(self):
        return (self.name, self.bar, self.state)


class CamerasPanel(QWidget):
    """Cameras list and ingest progress.

    Signals:
        addVideosRequested(): the user wants to ingest videos.
        cancelRequested(): the user cancelled the running ingest.
        cameraActivated(camera_id): a camera was double-clicked (watch it).
    """

    addVideosRequested = Signal()
    cancelRequested = Signal()
    cameraActivated = Signal(int)

    def __init__(self, parent=None):
        super().__init__(parent)
        self.model = CamerasModel(self)
        self.progress: dict[str, _CameraProgress] = {}
        self._build()

    def _build(self) -> None:
        self.table = row_table(self, self.model)
        self.table.doubleClicked.connect(self._activated)
        self.add_button = QPushButton("Add videos…", self)
        self.add_button.setToolTip("Ingest video files, one per camera (Ctrl+I)")
        self.add_button.clicked.connect(self.addVideosRequested)

        self.ingest_box = QWidget(self)
        self.ingest_grid = QGridLayout(self.ingest_box)
        self.ingest_grid.setContentsMargins(0, 0, 0, 0)
        self.ingest_grid.setColumnStretch(1, 1)
        self.cancel_button = QPushButton("Cancel", self)
        self.cancel_button.setToolTip("Stop the ingest; unfinished videos are completed by adding them again")
        self.cancel_button.clicked.connect(self._cancel)
        self.ingest_status = QLabel(self)
        self.ingest_status.setWordWrap(True)
        self.ingest_status.setTextInteractionFlags(Qt.TextInteractionFlag.TextSelectableByMouse)

        buttons = QHBoxLayout()
        buttons.addWidget(self.add_button)
        buttons.addStretch(1)
        buttons.addWidget(self.cancel_button)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(4, 4, 4, 4)
        layout.addWidget(self.table, 1)
        layout.addLayout(buttons)
        layout.addWidget(self.ingest_box)
        layout.addWidget(self.ingest_status)
        self.set_ingesting(False)

    def set_cameras(self, cameras: Sequence) -> None:
        """Show ``storage.catalog.CameraEntry`` rows."""
        self.model.set_items(cameras)

    def _activated(self, index) -> None:
        camera = index.data(ItemRole)
        if camera is not None:
            self.cameraActivated.emit(camera.id)

    # -- ingest progress -----------------------------------------------------------------------------------

    def set_ingesting(self, running: bool) -> None:
        """Switch between idle (Add enabled) and ingesting (Cancel enabled)."""
        self.add_button.setEnabled(not running)
        self.cancel_button.setVisible(running)
        self.cancel_button.setEnabled(running)

    def begin_ingest(self, cameras: Sequence[str]) -> None:
        """Show a progress row per camera."""
        for row in self.progress.values():
            for w in row.widgets():
                w.deleteLater()
        self.progress = {
            name: _CameraProgress(self.ingest_box, self.ingest_grid, i, name) for i, name in enumerate(cameras)
        }
        self.ingest_status.setText("Starting…")
        self.set_ingesting(True)

    def camera_started(self, camera: str, total_frames: int) -> None:
        row = self.progress.get(camera)
        if row is not None:
            row.bar.setRange(0, max(1, total_frames))
            row.bar.setValue(0)
            row.state.setText("ingesting")

    def camera_advanced(self, camera: str, frames: int) -> None:
        row = self.progress.get(camera)
        if row is not None:
            if frames > row.bar.maximum():
                row.bar.setMaximum(frames)
            row.bar.setValue(frames)

    def camera_finished(self, camera: str, status: str, message: str) -> None:
        row = self.progress.get(camera)
        if row is None:
            return
        if status == "done":
            row.bar.setRange(0, max(1, row.bar.maximum()))
            row.bar.setValue(row.bar.maximum())
        elif row.bar.maximum() == 0:
            row.bar.setRange(0, 1)
        row.state.setText(status if not message else f"{status}: {message}")
        row.state.setToolTip(message)

    def show_message(self, text: str) -> None:
        self.ingest_status.setText(text)

    def fail_waiting(self, reason: str) -> None:
        """The ingest stopped before these cameras began: their rows say so instead of "waiting"."""
        for row in self.progress.values():
            if row.state.text() in ("waiting", "ingesting"):
                row.state.setText(f"not ingested: {reason}")
                row.state.setToolTip(reason)
        self.set_ingesting(False)

    def _cancel(self) -> None:
        self.cancel_button.setEnabled(False)
        self.ingest_status.setText("Cancelling after the current frames…")
        self.cancelRequested.emit()
