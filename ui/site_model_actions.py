"""Site ▸ Adapt model… and Site ▸ Model versions…: site self-adaptation from the main window (issue 31), with the
same progress, cancel and result as ``reid-app adapt`` and ``reid-app models``."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractItemView,
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFormLayout,
    QLabel,
    QMessageBox,
    QProgressDialog,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
)

from ui import app_calls
from ui.jobs import SiteModelWorker

ADAPT_TEXT = (
    "Fine-tune the re-id model on this site's own footage, without labels: each track teaches the model one person "
    "in its camera, confident matches across cameras and your confirmed matches teach it who is the same, your "
    "rejections who is not. The adapted model is a new version; it is checked on matches held out from training "
    "and replaces the current model only when it does no worse. Confirm or reject a few matches first: they are "
    "what the check measures."
)


def check_text(check) -> str:
    """One line of an ``AgreementCheck`` (or its dict) in words."""
    if check is None:
        return "not measured"
    values = check if isinstance(check, dict) else check.as_dict()
    parts = []
    if values.get("confirmed"):
        parts.append(
            f"{values['confirmed']} confirmed matches at mean rank {values['confirmed_mean_rank']:.2f} "
            f"({100 * values['confirmed_rank1']:.0f}% first)"
        )
    if values.get("negatives"):
        parts.append(
            f"{values['negatives']} rejected or impossible pairs, {100 * values['negative_first_match']:.1f}% "
            "taken as first match"
        )
    return "; ".join(parts) or "nothing held out to measure"


def adapt_summary(report) -> str:
    """The result of an adaptation in the app's words (``pipelines.adaptation.adapt.AdaptReport``)."""
    if report.stopped:
        return "Adaptation stopped. Run it again to start over; 'reid-app adapt --resume' continues it."
    lines = [
        f"Adapted on {report.tracklets} tracks of {report.cameras} cameras ({report.images} crops; "
        f"{100 * report.association_rate:.0f}% associated across cameras), {report.iterations} training batches.",
        f"Check before: {check_text(report.before)}.",
        f"Check after: {check_text(report.after)}.",
    ]
    if report.made_current is not None and report.made_current.switch is not None:
        lines.append(
            f"Model {report.version_model} is now current; Site ▸ Model versions… rolls back "
            f"({report.made_current.clustering.identities if report.made_current.clustering else 0} identities)."
        )
        lines += [
            f"{line.capitalize()} could not be carried over: add it again."
            for line in report.made_current.watchlist_lost
        ]
    else:
        lines.append(f"Model {report.version_model} was not made current: {report.not_current_because}.")
    return "\n\n".join(lines)


class SiteModelActions:
    """Part of :class:`ui.main_window.MainWindow` (a mixin of its methods; the window holds the state)."""

    def adapt_model(self) -> None:
        """Ask for the time budget, then adapt the site's model on a worker thread."""
        if self.db is None or self._site_busy():
            return
        dialog = QDialog(self)
        dialog.setWindowTitle("Adapt model to this site")
        layout = QVBoxLayout(dialog)
        text = QLabel(ADAPT_TEXT, dialog)
        text.setWordWrap(True)
        layout.addWidget(text)
        form = QFormLayout()
        minutes = QSpinBox(dialog)
        minutes.setRange(1, 24 * 60)
        minutes.setValue(30)
        minutes.setSuffix(" min")
        minutes.setObjectName("adaptMinutes")
        form.addRow("Time budget", minutes)
        switch = QCheckBox("Make it current when its check passes", dialog)
        switch.setChecked(True)
        form.addRow("", switch)
        layout.addLayout(form)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel)
        buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Adapt")
        buttons.accepted.connect(dialog.accept)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        if dialog.exec():
            self.start_adaptation(minutes.value(), switch.isChecked())

    def start_adaptation(self, minutes: int, make_current: bool = True) -> None:
        """Adapt the site's model with a time budget of ``minutes`` on a worker thread, with a progress dialog
        (Cancel stops it) and the result in a message box (``site_result``)."""
        if self.db is None or self._site_busy():
            return
        db = self.db
        self._start_site_work(
            "Adapting the model to this site…",
            lambda progress, stop: app_calls.adapt_site(db, minutes, make_current, progress, stop),
            lambda report: self._site_done("Adapt model", adapt_summary(report)),
        )

    def show_model_versions(self) -> None:
        """List the model versions; make one current, or roll back."""
        if self.db is None:
            return
        self.jobs.submit(app_calls.model_versions, self.db, on_done=self._versions_dialog, on_error=self._warn)

    def _versions_dialog(self, versions) -> None:
        dialog = QDialog(self)
        dialog.setWindowTitle("Model versions")
        layout = QVBoxLayout(dialog)
        table = QTableWidget(len(versions), 6, dialog)
        table.setObjectName("modelVersions")
        table.setHorizontalHeaderLabels(["Id", "Name", "Current", "Embeddings", "Adapted from", "Check (held out)"])
        table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
        for row, v in enumerate(versions):
            after = v.info.get("check_after")
            cells = [
                str(v.id),
                v.name + ("" if v.exists else " (file missing)"),
                "current" if v.current else "",
                str(v.embeddings),
                str(v.info.get("adapted_from", "")),
                check_text(after) if after else "",
            ]
            for column, value in enumerate(cells):
                item = QTableWidgetItem(value)
                item.setData(Qt.ItemDataRole.UserRole, v.id)
                table.setItem(row, column, item)
        table.resizeColumnsToContents()
        table.verticalHeader().setVisible(False)
        table.horizontalHeader().setStretchLastSection(True)
        layout.addWidget(table)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Close)
        use = QPushButton("Make current", dialog)
        back = QPushButton("Roll back", dialog)
        back.setEnabled(any(v.current and v.info.get("adapted_from") for v in versions))
        buttons.addButton(use, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.addButton(back, QDialogButtonBox.ButtonRole.ActionRole)
        buttons.rejected.connect(dialog.reject)
        layout.addWidget(buttons)
        dialog.resize(900, 300)

        def switch(model_id) -> None:
            dialog.accept()
            db = self.db
            self._start_site_work(
                "Re-encoding the site's sightings…",
                lambda progress, stop: app_calls.make_model_current(db, model_id, progress, stop),
                lambda report: self._site_done(
                    "Model versions",
                    f"Model {report.model_id} is now current."
                    if report.switch is not None
                    else "Stopped; make it current again to finish re-encoding.",
                ),
            )

        def use_selected() -> None:
            items = table.selectedItems()
            if items:
                switch(int(items[0].data(Qt.ItemDataRole.UserRole)))

        use.clicked.connect(use_selected)
        back.clicked.connect(lambda: switch(None))
        self.versions_dialog = dialog
        dialog.open()

    def _site_busy(self) -> bool:
        if self.site_worker is not None or self.ingest_worker is not None:
            self._warn("An ingest or a model adaptation is running; wait for it or cancel it first.")
            return True
        return False

    def _start_site_work(self, title: str, work, on_done) -> None:
        worker = SiteModelWorker(work, self)
        progress = QProgressDialog(title, "Cancel", 0, 0, self)
        progress.setObjectName("siteModelProgress")
        progress.setWindowTitle("reid-app")
        progress.setWindowModality(Qt.WindowModality.WindowModal)
        progress.setMinimumDuration(0)
        progress.setAutoClose(False)
        progress.setAutoReset(False)
        state = {"stage": title, "total": 0}

        def on_stage(text: str, total: int) -> None:
            state.update(stage=text[:1].upper() + text[1:], total=total)
            progress.setRange(0, total)
            progress.setValue(0)
            progress.setLabelText(state["stage"] + "…")

        def on_advanced(done: int, total: int, note: str) -> None:
            if total and total != state["total"]:
                state["total"] = total
                progress.setMaximum(total)
            progress.setValue(min(done, progress.maximum()) if progress.maximum() else 0)
            progress.setLabelText(state["stage"] + ("…\n" + note if note else "…"))

        worker.stage.connect(on_stage)
        worker.advanced.connect(on_advanced)
        worker.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        worker.failed.connect(lambda text: self._warn(f"The model could not be adapted or switched: {text}"))
        worker.completed.connect(on_done)
        worker.finished.connect(lambda: self._site_work_ended(progress))
        progress.canceled.connect(worker.cancel)
        self.site_worker = worker
        self.site_progress = progress
        progress.show()
        worker.start()

    def _site_done(self, title: str, text: str) -> None:
        self.statusBar().showMessage(text.splitlines()[-1], 15000)
        box = QMessageBox(QMessageBox.Icon.Information, title, text, QMessageBox.StandardButton.Ok, self)
        box.setObjectName("siteModelResult")
        self.site_result = box
        box.open()

    def _site_work_ended(self, progress) -> None:
        worker, self.site_worker = self.site_worker, None
        progress.close()
        if worker is not None:
            worker.deleteLater()
        self.refresh()
