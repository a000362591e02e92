"""Work off the GUI thread: a job queue for database work and searches, and the ingest thread.

Results come back through queued signals, so callbacks always run on the GUI thread; a user mistake
(:class:`common.errors.ReidAppError`) arrives as its one-line message, anything else as a short message with the
traceback in the log.
"""

from __future__ import annotations

import itertools
import logging
import threading
from typing import Any, Callable, Optional, Sequence

from PySide6.QtCore import QObject, QThread, QThreadPool, Signal, Slot

from common.errors import ReidAppError, cli_option, word_settings

log = logging.getLogger(__name__)


#: The app's words for the settings error messages name (``common.errors.setting``); the rest keep the CLI's.
_APP_NAMES = {
    "detector": "the Detector field",
    "reid": "the Re-id model field",
    "pose": "the Pose field",
    "fps": "the Frames per second field",
    "batch_size": "the Batch size field",
    "duration": "the Duration field",
    "crops_per_second": "the Crops per second field",
    "detector_size": "the detector size",
    "db": "database",
    "out": "the export folder",
    "force": "'reid-app ingest --force' (the command line)",
}


def _app_name(setting_name: str) -> str:
    return _APP_NAMES.get(setting_name, cli_option(setting_name))


def app_words(text: str) -> str:
    """A summary note with its settings (``common.errors.setting``) worded as the app names them."""
    return word_settings(text, _app_name)


def describe_error(exc: BaseException) -> str:
    """The message shown to the user for an exception raised by background work: a
    :class:`~common.errors.ReidAppError` worded with the app's names for its settings, anything else as its type
    and text (the traceback goes to the log)."""
    if isinstance(exc, ReidAppError):
        return exc.worded(_app_name)
    return f"unexpected error: {type(exc).__name__}: {exc} (details are in the log)"


class JobRunner(QObject):
    """Runs callables on a worker thread, in submission order, one at a time (SQLite work stays serialised).

    Signals:
        busyChanged(bool): jobs are pending or running / all done.
    """

    busyChanged = Signal(bool)
    _finished = Signal(int, object, object)

    def __init__(self, parent: Optional[QObject] = None):
        super().__init__(parent)
        self._pool = QThreadPool(self)
        self._pool.setMaxThreadCount(1)
        self._ids = itertools.count(1)
        self._callbacks: dict[int, tuple[Optional[Callable], Optional[Callable]]] = {}
        self._finished.connect(self._deliver)

    @property
    def pending(self) -> int:
        """Jobs submitted whose callbacks have not run yet."""
        return len(self._callbacks)

    def submit(
        self,
        fn: Callable[..., Any],
        *args,
        on_done: Optional[Callable[[Any], None]] = None,
        on_error: Optional[Callable[[str], None]] = None,
    ) -> None:
        """Run ``fn(*args)`` on the worker thread; then ``on_done(result)`` or ``on_error(message)`` on the GUI
        thread."""
        job_id = next(self._ids)
        self._callbacks[job_id] = (on_done, on_error)
        if len(self._callbacks) == 1:
            self.busyChanged.emit(True)

        def run():
            try:
                result = fn(*args)
            except Exception as exc:  # reported to the user through on_error, never lost
                if not isinstance(exc, ReidAppError):
                    log.exception("background job %s failed", getattr(fn, "__name__", fn))
                self._finished.emit(job_id, None, exc)
            else:
                self._finished.emit(job_id, result, None)

        self._pool.start(run)

    @Slot(int, object, object)
    def _deliver(self, job_id: int, result: Any, error: Optional[BaseException]) -> None:
        on_done, on_error = self._callbacks.pop(job_id, (None, None))
        try:
            if error is None:
                if on_done is not None:
                    on_done(result)
            elif on_error is not None:
                on_error(describe_error(error))
            else:
                log.error("background job failed: %s", describe_error(error))
        finally:
            if not self._callbacks:
                self.busyChanged.emit(False)

    def wait(self, msecs: int = -1) -> bool:
        """Block until the worker is idle (for shutdown and tests); True when it is."""
        return self._pool.waitForDone(msecs)


class _ProgressBridge:
    """``pipelines.ingest.files.IngestProgress`` that forwards each event as a signal of the worker."""

    def __init__(self, worker: "IngestWorker"):
        self.worker = worker

    def on_start(self, summary, total_frames):
        self.worker.cameraStarted.emit(summary.camera, int(total_frames))

    def on_advance(self, camera, frames_analysed):
        self.worker.cameraAdvanced.emit(camera, int(frames_analysed))

    def on_finish(self, summary):
        self.worker.cameraFinished.emit(summary.camera, summary.status, app_words(summary.message or ""))

    def on_message(self, text):
        self.worker.message.emit(text)


class IngestWorker(QThread):
    """Ingests videos on its own thread: loads the models (``prepare``), runs the ingest, re-clusters identities.

    Args:
        prepare: ``IngestChoices -> PreparedIngest`` (``reid_app.ingest_runner.prepare_ingest`` bound to the
            settings).
        choices: the user's ``IngestChoices``.
        db: the open database.
        jobs: ``pipelines.ingest.files.IngestJob`` per video.

    Signals:
        cameraStarted(camera, total_frames), cameraAdvanced(camera, frames_analysed),
        cameraFinished(camera, status, message): per-camera progress (status: done, skipped, failed, interrupted).
        message(text): a notice. failed(text): nothing could be ingested (bad weights...).
        completed(summaries): the ``CameraSummary`` list and, last, the clustering report or None.
    """

    cameraStarted = Signal(str, int)
    cameraAdvanced = Signal(str, int)
    cameraFinished = Signal(str, str, str)
    message = Signal(str)
    failed = Signal(str)
    completed = Signal(object, object)

    def __init__(self, prepare: Callable, choices, db, jobs: Sequence, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.prepare = prepare
        self.choices = choices
        self.db = db
        self.jobs = list(jobs)
        self.stop_event = threading.Event()

    def cancel(self) -> None:
        """Ask the ingest to stop after the current frames; videos left unfinished are completed by a later
        ingest of the same files."""
        self.stop_event.set()

    def run(self) -> None:
        from pipelines.matching.service import cluster_after_ingest

        try:
            self.message.emit("loading the detector and re-id models...")
            prepared = self.prepare(self.choices)
            if self.stop_event.is_set():
                self.completed.emit([], None)
                return
            summaries = prepared.run(self.db, self.jobs, _ProgressBridge(self), self.stop_event)
            report = None
            if any(s.status == "done" for s in summaries):
                self.message.emit("grouping tracks into identities...")
                report = cluster_after_ingest(self.db)
        except Exception as exc:  # shown in the window as one message
            if not isinstance(exc, ReidAppError):
                log.exception("ingest failed")
            self.failed.emit(describe_error(exc))
            return
        self.completed.emit(summaries, report)


class _AdaptBridge:
    """``pipelines.adaptation.adapt.AdaptProgress`` forwarding each call as a signal of the worker."""

    def __init__(self, worker: "SiteModelWorker"):
        self.worker = worker

    def stage(self, text, total=None):
        self.worker.stage.emit(text, int(total or 0))

    def advance(self, done, fields=None):
        from pipelines.adaptation.options import progress_note

        self.worker.advanced.emit(int(done), int((fields or {}).get("total") or 0), progress_note(fields))

    def message(self, text):
        self.worker.message.emit(text)


class SiteModelWorker(QThread):
    """Adapts the site's model, or makes a model version current, on its own thread.

    Args:
        work: ``(progress, stop) -> result``: ``ui.app_calls.adapt_site`` or ``make_model_current`` bound to the
            database and the user's choices; ``progress`` is an ``AdaptProgress``, ``stop`` a callable polled
            between batches.

    Signals:
        stage(text, total): a stage begins (total 0: unknown). advanced(done, total, note): progress (total 0: as
        the stage said). message(text): a notice. failed(text): it could not run. completed(result): the report.
    """

    stage = Signal(str, int)
    advanced = Signal(int, int, str)
    message = Signal(str)
    failed = Signal(str)
    completed = Signal(object)

    def __init__(self, work: Callable, parent: Optional[QObject] = None):
        super().__init__(parent)
        self.work = work
        self.stop_event = threading.Event()

    def cancel(self) -> None:
        """Stop after the current batch (training and re-encoding resume later)."""
        self.stop_event.set()

    def run(self) -> None:
        try:
            result = self.work(_AdaptBridge(self), self.stop_event.is_set)
        except Exception as exc:  # shown in the window as one message
            if not isinstance(exc, ReidAppError):
                log.exception("site model work failed")
            self.failed.emit(describe_error(exc))
            return
        self.completed.emit(result)
