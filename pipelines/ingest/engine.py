"""The one multi-camera engine of file ingest (``pipelines.ingest.files``) and live watch (``pipelines.live.watch``).

One thread per camera runs that camera's :class:`pipelines.ingest.camera.CameraPipeline` and posts typed events
(:class:`Observed`, :class:`Analysed`, :class:`Failed`, :class:`Ended`) on one bounded queue; the calling thread
takes them (:meth:`CameraThreads.events`), encodes the selected crops of all cameras in one call
(:func:`encode_batches`, ``batch_size`` crops per forward pass inside the encoder) and stores them. A camera whose
analysis raises posts :class:`Failed` and the others go on. Ingest and watch keep only their policy: where frames
come from (a file, a stream with a recorder), when to flush, where rows go, and whether a failed camera is
restarted (watch) or given up (ingest).

Why threads and not one decode fan-in loop: decoding, detection and pose run in native code that releases the GIL,
so one thread per camera keeps both cores busy while the sink thread encodes and writes; ultralytics' single-loop
multi-stream mode serialises them. Memory is bounded by the queue (``queue_size`` events of at most one sampling
window each) and by the encoder's batch, never by video length.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from typing import Callable, Iterator, Optional, Sequence, Union

import numpy as np

from common.errors import ReidAppError, UsageError, setting
from common.types import Detection, Frame, Observation, StageTimes
from models.encoders import ReIDEncoder
from models.pose import PoseEstimator
from models.tracking import PersonTracker
from pipelines.ingest.camera import CameraPipeline
from pipelines.ingest.motion import MotionGateConfig
from pipelines.ingest.quality import DuplicateConfig, QualityConfig, SkeletonCheckConfig, StaticTrackConfig
from pipelines.ingest.sampling import SamplingConfig
from storage.database import Database
from storage.model_registry import get_or_create_model, set_model_layout, set_model_threshold

log = logging.getLogger(__name__)


@dataclass
class IngestOptions:
    """Attributes:
    analysis_fps: frames analysed per second of video (capped at the video's rate), > 0.
    batch_size: crops per re-id forward pass (across cameras).
    force: re-ingest videos already in the database, replacing their rows.
    max_duration_s: analyse at most this many seconds of each video (None: all).
    quality: quality gate thresholds.
    sampling: per-track sampling bounds.
    flush_observations: write a camera's pending observations once this many are waiting.
    static: when a finished track counts as a static false positive (kept out of identities and search).
    skeleton: when a finished track is no person (deleted; never for a camera without pose estimates).
    duplicates: when a second box of a person already boxed in the frame is dropped.
    motion: motion gating: analysed frames without motion skip detection (the last detections are tracked
        again).
    pose_interval_s: a tracked person's pose is estimated at most once per this many seconds; in between the
        keypoints follow the box (``pipelines.ingest.camera.follow_box``). 0: every analysed frame.

    Raises:
        UsageError: ``analysis_fps`` not above 0 or ``batch_size`` below 1 (checked once, when made).
    """

    analysis_fps: float = 5.0
    batch_size: int = 32
    force: bool = False
    max_duration_s: Optional[float] = None
    quality: QualityConfig = field(default_factory=QualityConfig)
    sampling: SamplingConfig = field(default_factory=SamplingConfig)
    flush_observations: int = 256
    static: StaticTrackConfig = field(default_factory=StaticTrackConfig)
    skeleton: SkeletonCheckConfig = field(default_factory=SkeletonCheckConfig)
    duplicates: DuplicateConfig = field(default_factory=DuplicateConfig)
    motion: MotionGateConfig = field(default_factory=MotionGateConfig)
    pose_interval_s: float = 0.0

    def __post_init__(self):
        if not self.analysis_fps > 0:
            raise UsageError(f"{setting('fps')} must be greater than 0 frames/s, got {self.analysis_fps:g}")
        if self.batch_size < 1:
            raise UsageError(f"{setting('batch_size')} must be at least 1, got {self.batch_size}")


TrackerFactory = Callable[[], PersonTracker]
PoseFactory = Callable[[PersonTracker], PoseEstimator]


def camera_pipeline(
    camera: str, source, make_tracker: TrackerFactory, make_pose: PoseFactory, options: IngestOptions, num_parts: int
) -> CameraPipeline:
    """A camera's pipeline over ``source`` (a ``pipelines.ingest.video.VideoSource`` or
    ``pipelines.live.stream.StreamSource``)
    with a new tracker and its pose backend, analysing as ``options`` says; made in the camera's thread."""
    tracker = make_tracker()
    return CameraPipeline(
        camera,
        source,
        tracker,
        make_pose(tracker),
        options.quality,
        options.sampling,
        num_parts,
        options.motion,
        options.pose_interval_s,
        options.duplicates,
    )


def register_encoder(db: Database, encoder: ReIDEncoder) -> int:
    """The ``models`` row id of ``encoder`` (made when new), with the clustering threshold its checkpoint was
    calibrated with and its descriptor layout (for part-level match explanations) recorded for it."""
    model_id = get_or_create_model(db, encoder.name, encoder.checkpoint_hash, encoder.dims, encoder.source)
    if encoder.clustering_threshold is not None:
        set_model_threshold(db, model_id, encoder.clustering_threshold)
    if encoder.descriptor_layout:
        set_model_layout(db, model_id, encoder.descriptor_layout)
    return model_id


@dataclass(frozen=True)
class Observed:
    """Observations a camera finished (their sampling windows closed), in frame order.

    Attributes:
        camera: the camera's index in the engine. observations: the observations (``selected`` ones carry a crop).
        frames_analysed: frames that camera has analysed so far in its current source.
    """

    camera: int
    observations: list[Observation]
    frames_analysed: int


@dataclass(frozen=True)
class Analysed:
    """A camera's source was analysed to its end (a file) or until stopped (a stream).

    Attributes:
        camera: the camera's index. times: seconds per stage. warning: the source's warning (frames lost...) or
        None. frames_skipped: analysed frames without motion (detection skipped). duplicates_dropped: second boxes
        of a person already boxed in their frame. estimates_pose: the camera's people got pose estimates.
    """

    camera: int
    times: StageTimes
    warning: Optional[str]
    frames_skipped: int
    duplicates_dropped: int
    estimates_pose: bool


@dataclass(frozen=True)
class Failed:
    """A camera's source could not be opened or its analysis raised; ``message`` says why: user words for a
    :class:`~common.errors.ReidAppError`, else (``unexpected``: a bug or a library failure) the exception's type
    and text."""

    camera: int
    message: str
    unexpected: bool = False


@dataclass(frozen=True)
class Ended:
    """A camera's thread returned: it posts nothing after this."""

    camera: int


CameraEvent = Union[Observed, Analysed, Failed, Ended]


@dataclass
class CameraChannel:
    """What a camera's thread holds: its index, how to post events, and whether to stop."""

    index: int
    name: str
    _queue: "queue.Queue[CameraEvent]"
    _stop: threading.Event
    cancel: threading.Event = field(default_factory=threading.Event)

    def stopped(self) -> bool:
        """True once the whole engine is stopping or this camera alone was cancelled."""
        return self._stop.is_set() or self.cancel.is_set()

    def post(self, event: CameraEvent) -> None:
        """Queue ``event``, waiting while the queue is full; dropped once this camera is cancelled (nobody reads
        it any more)."""
        while not self.cancel.is_set():
            try:
                self._queue.put(event, timeout=0.2)
                return
            except queue.Full:
                continue

    def run(
        self,
        build: Callable[[], CameraPipeline],
        on_frame: Optional[Callable[[Frame, list[Detection]], None]] = None,
        flush_on_stop: bool = False,
    ) -> Optional[Failed]:
        """Build this camera's pipeline and run it until its source ends or :meth:`stopped`, posting
        :class:`Observed` per batch and :class:`Analysed` at the end, or :class:`Failed` when building or running
        it raised (a failing camera must not stop the others).

        Args:
            build: makes the pipeline (opens the source, makes the tracker and the pose backend).
            on_frame: called with each analysed frame and its tracked people (a live view).
            flush_on_stop: when stopped, post the observations of the open sampling windows too (a live stream
                has no end; a file's unfinished video is redone instead).

        Returns:
            None when the source was analysed (or the camera was stopped first: then no :class:`Analysed` is
            posted), else the :class:`Failed` it posted.
        """
        unexpected = False
        try:
            pipeline = build()
            times = pipeline.run(
                lambda obs, n: self.post(Observed(self.index, obs, n)),
                self.stopped,
                on_frame,
                flush_on_stop=flush_on_stop,
            )
        except ReidAppError as exc:
            message = str(exc)
        except Exception as exc:  # noqa: BLE001 - a failing camera must not stop the others
            log.exception("camera %s failed", self.name)
            message, unexpected = f"processing failed ({type(exc).__name__}: {exc})", True
        else:
            if self.stopped():  # stopped before the source's end: not analysed (an interrupted file is redone)
                return None
            self.post(
                Analysed(
                    self.index,
                    times,
                    pipeline.source.warning,
                    pipeline.frames_skipped,
                    pipeline.duplicates_dropped,
                    pipeline.estimates_pose,
                )
            )
            return None
        failed = Failed(self.index, message, unexpected)
        self.post(failed)
        return failed

    def wait(self, seconds: float) -> None:
        """Sleep ``seconds``, or less when the engine is stopped meanwhile."""
        deadline = time.monotonic() + seconds
        while not self.stopped() and time.monotonic() < deadline:
            self._stop.wait(min(0.2, max(0.0, deadline - time.monotonic())))


class CameraThreads:
    """One thread per camera and the bounded queue of their events.

    Args:
        stop: set it to stop every camera (their pipelines return at the next frame).
        queue_size: events waiting at most; a camera whose events are not taken waits (back-pressure).
    """

    def __init__(self, stop: threading.Event, queue_size: int = 64):
        self.stop = stop
        self._queue: "queue.Queue[CameraEvent]" = queue.Queue(maxsize=queue_size)
        self._channels: dict[int, CameraChannel] = {}
        self._threads: dict[int, threading.Thread] = {}
        self._ended: set[int] = set()

    def start(self, index: int, name: str, work: Callable[[CameraChannel], None]) -> CameraChannel:
        """Run ``work(channel)`` in a new thread named after camera ``name``; :class:`Ended` is posted when it
        returns (an exception that escapes ``work`` is logged and posted as :class:`Failed` first)."""
        channel = CameraChannel(index, name, self._queue, self.stop)

        def body() -> None:
            try:
                work(channel)
            except Exception as exc:  # noqa: BLE001 - a failing camera must not stop the others
                log.exception("camera %s failed", name)
                channel.post(Failed(index, f"processing failed ({type(exc).__name__}: {exc})", unexpected=True))
            finally:
                channel.post(Ended(index))

        thread = threading.Thread(target=body, name=f"camera-{name}", daemon=True)
        self._channels[index], self._threads[index] = channel, thread
        thread.start()
        return channel

    def cancel(self, index: int) -> None:
        """Stop camera ``index`` alone; its later events are dropped."""
        self._channels[index].cancel.set()

    @property
    def running(self) -> int:
        """Cameras whose :class:`Ended` has not been taken yet (and that were not cancelled)."""
        return sum(1 for i in self._channels if self.is_running(i))

    def is_running(self, index: int) -> bool:
        """True until camera ``index``'s :class:`Ended` was taken (or it was cancelled)."""
        return index not in self._ended and not self._channels[index].cancel.is_set()

    def events(self, timeout: float) -> Iterator[CameraEvent]:
        """The next event (waiting up to ``timeout`` seconds), then every event already queued, oldest first."""
        try:
            event = self._queue.get(timeout=timeout)
        except queue.Empty:
            return
        while True:
            if isinstance(event, Ended):
                self._ended.add(event.camera)
            yield event
            try:
                event = self._queue.get_nowait()
            except queue.Empty:
                return

    def close(self, timeout_s: float = 30.0) -> None:
        """Stop every camera (cancelled one by one: the caller's ``stop`` is left as it is), drop what they still
        post, and wait for their threads (``timeout_s`` in all; a thread stuck in a native call is left behind as
        a daemon)."""
        for channel in self._channels.values():
            channel.cancel.set()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads.values():
            thread.join(max(0.0, deadline - time.monotonic()))


def encode_batches(
    encoder: ReIDEncoder, batches: Sequence[Sequence[Observation]]
) -> tuple[list[Optional[np.ndarray]], float]:
    """Encode the selected crops of several cameras' observation batches in one encoder call.

    Args:
        encoder: the re-id encoder (it splits the call into forward passes of its batch size).
        batches: per camera, observations; only those with ``selected`` carry a crop (``uint8 [H, W, 3]``) and
            ``part_boxes`` (``float32 [P, 4]``).

    Returns:
        Per batch, ``float32 [k, D]`` L2-normalised embeddings of its ``k`` selected observations in order (None
        when it has none), and the seconds the encoding took.
    """
    chosen = [o for batch in batches for o in batch if o.selected]
    counts = [sum(1 for o in batch if o.selected) for batch in batches]
    if not chosen:
        return [None] * len(batches), 0.0
    t0 = time.perf_counter()
    embeddings = encoder.encode([o.crop for o in chosen], np.stack([o.part_boxes for o in chosen]))
    seconds = time.perf_counter() - t0
    out: list[Optional[np.ndarray]] = []
    offset = 0
    for count in counts:
        out.append(embeddings[offset : offset + count] if count else None)
        offset += count
    return out, seconds
