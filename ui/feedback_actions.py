"""The investigator's verdicts from the main window: confirm and reject (a conflicting verdict is asked about, never
silently applied), undo, name, merge and split identities, mark overlapping cameras; every change is said in the
status bar."""

from __future__ import annotations

from typing import Callable, Optional

from PySide6.QtCore import Qt
from PySide6.QtWidgets import QMessageBox

from ui import app_calls
from ui.cameras import OverlapDialog


class FeedbackActions:
    """Part of :class:`ui.main_window.MainWindow` (a mixin of its methods; the window holds the state)."""

    def give_feedback(
        self, verdict: str, query_track: int, result_track: int, resolution: str = "", cameras=()
    ) -> None:
        """Record that two tracks are the same person (``same``) or not (``different``), then search again.
        A verdict that conflicts with an earlier one, or a confirmation of two tracks seen at one instant on two
        cameras, is asked about (:meth:`_ask_about`); ``resolution`` is the answer (``replace``/``overlap``)."""
        if self.db is None:
            return
        word = "the same person as" if verdict == "same" else "not the same person as"
        self.statusBar().showMessage(f"Recording: track {result_track} is {word} track {query_track}…")

        def done(result):
            if self._ask_about(
                result, lambda answer: self.give_feedback(verdict, query_track, result_track, answer, result.cameras)
            ):
                return
            self._changed(result, f"track {result_track} is {word} track {query_track}")
            self.search(query_track)

        self.background.submit(
            app_calls.feedback,
            self.db,
            verdict,
            query_track,
            result_track,
            resolution,
            tuple(cameras),
            on_done=done,
            on_error=lambda msg: self._warn(f"Not recorded: {msg}"),
        )

    def _ask_about(self, result, retry: Optional[Callable[[str], None]] = None) -> bool:
        """When ``result`` is a ``VerdictConflict``, ask the user what to do and run ``retry(answer)`` if they
        choose to go on (without ``retry``: only say why nothing changed); True when it was a conflict."""
        from pipelines.matching.service import VerdictConflict

        if not isinstance(result, VerdictConflict):
            return False
        self.statusBar().showMessage(f"Not recorded: {result}", 10000)
        if retry is None:
            self._warn(f"Not recorded: {result}")
            return True
        if result.kind == "contradiction":
            earlier = "the same person" if result.earlier == "same" else "different people"
            question = (
                f"Tracks {result.track_a} and {result.track_b} were marked as {earlier} earlier.\n\n"
                f"Replace that verdict? (Edit ▸ Undo takes it back.)"
            )
            answer = "replace"
        elif result.kind == "simultaneous" and result.cameras:
            question = (
                f"Tracks {result.track_a} and {result.track_b} are seen at the same moment on "
                f"{result.cameras[0]} and {result.cameras[1]}. One person can be in both only if these "
                f"cameras see a common area.\n\nMark {result.cameras[0]} and {result.cameras[1]} as "
                f"overlapping and record it?"
            )
            answer = "overlap"
        else:
            self._warn(f"Not recorded: {result}")
            return True
        box = QMessageBox(
            QMessageBox.Icon.Question,
            "reid-app: conflicting feedback",
            question,
            QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
            self,
        )
        box.setDefaultButton(QMessageBox.StandardButton.No)
        box.setWindowModality(Qt.WindowModality.WindowModal)
        box.finished.connect(
            lambda code: (
                retry(answer)
                if code == QMessageBox.StandardButton.Yes
                else self.statusBar().showMessage("Nothing changed.", 5000)
            )
        )
        self.conflict_box = box
        box.open()
        return True

    def _changed(self, report, what: str) -> None:
        """Say what an action changed (``report.changes`` of a ``ClusteringReport``), then reload."""
        changes = "; ".join(getattr(report, "changes", []) or [what])
        identities = getattr(report, "identities", None)
        text = f"Changed: {changes}" + (f". {identities} identities now." if identities is not None else ".")
        self.statusBar().showMessage(text, 15000)
        metrics = self.change_label.fontMetrics()
        self.change_label.setText(
            metrics.elidedText(text, Qt.TextElideMode.ElideRight, self.change_label.maximumWidth())
        )
        self.change_label.setToolTip(text)
        self.changeMade.emit(text)
        self.refresh()

    def undo_feedback(self) -> None:
        """Take back the newest feedback action (confirm, reject, forget, merge, split) not yet undone."""
        if self.db is None:
            return
        query = self.results_panel.query

        def done(report):
            self._changed(report, "undone")
            if query is not None and query.track_id is not None:
                self.search(query.track_id)

        self.background.submit(
            app_calls.identity_action,
            "undo",
            self.db,
            on_done=done,
            on_error=lambda msg: self._warn(f"Nothing undone: {msg}"),
        )

    def label_identity(self, identity_id: int, name: str, note: str) -> None:
        """Name identity ``identity_id`` ("" removes the name) with a note."""
        if self.db is not None:
            self.background.submit(
                app_calls.label,
                self.db,
                identity_id,
                name,
                note,
                on_done=lambda line: self._changed(None, line),
                on_error=lambda msg: self._warn(f"Not named: {msg}"),
            )

    def merge_identities(self, identity_a: int, identity_b: int) -> None:
        """Merge two identities into one person (their tracks confirmed as one)."""
        if self.db is not None:
            self.background.submit(
                app_calls.identity_action,
                "merge",
                self.db,
                identity_a,
                identity_b,
                on_done=lambda r: self._ask_about(r) or self._changed(r, "merged"),
                on_error=lambda msg: self._warn(f"Not merged: {msg}"),
            )

    def split_identity(self, identity_id: int, track_ids: list) -> None:
        """Split ``track_ids`` off identity ``identity_id`` into an identity of their own."""
        if self.db is not None:
            self.background.submit(
                app_calls.identity_action,
                "split",
                self.db,
                identity_id,
                list(track_ids),
                on_done=lambda r: self._ask_about(r) or self._changed(r, "split"),
                on_error=lambda msg: self._warn(f"Not split: {msg}"),
            )

    def edit_overlaps(self) -> None:
        """Ask which cameras see a common area and store it."""
        if self.db is None or len(self.cameras) < 2:
            self._warn("Overlapping cameras need a database with two or more cameras.")
            return
        dialog = OverlapDialog([c.name for c in self.cameras], self.overlaps, self)
        if dialog.exec():
            self.set_overlap(dialog.chosen(), dialog.overlapping())

    def set_overlap(self, cameras, overlapping: bool) -> None:
        """Mark (or unmark) ``cameras`` (names) as overlapping; identities are re-clustered."""
        if self.db is None:
            return
        word = "overlapping" if overlapping else "not overlapping"

        def done(result):
            report, self.overlaps = result
            self._changed(report, f"cameras {', '.join(cameras)} marked as {word}")

        self.background.submit(
            app_calls.overlap,
            self.db,
            list(cameras),
            overlapping,
            on_done=done,
            on_error=lambda msg: self._warn(f"Not changed: {msg}"),
        )
