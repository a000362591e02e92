"""Multi-camera ingest: one pipeline thread per camera, batched re-id encoding across cameras, batched storage.

Flow (``../shared/DESIGN.md``): each camera's :class:`pipelines.camera.CameraPipeline` runs in its own thread and
puts finished observations on a bounded queue; the calling thread collects them, encodes the selected crops of all
cameras together (``batch_size`` crops per forward pass), and writes each camera's batch in one transaction.
A camera that fails is reported and cleaned up while the others go on. Memory is bounded by the queue and batch
sizes, never by video length.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import numpy as np

from models.tracking import PersonTracker
from models.encoders import ReIDEncoder
from models.pose import PoseEstimator
from pipelines.camera import CameraPipeline
from pipelines.motion import MotionGateConfig
from pipelines.quality import DuplicateConfig, QualityConfig, SkeletonCheckConfig, StaticTrackConfig
from pipelines.track_cleanup import TrackCleanup, clean_up_tracks, unencoded_reasons
from pipelines.sampling import SamplingConfig
from pipelines.video import VideoSource, fingerprint
from sqlalchemy.exc import SQLAlchemyError

from common.errors import DatabaseError, ReidAppError
from common.types import CameraSummary, Observation, StageTimes
from storage.database import Database, storage_error_text
from storage.repository import (HEARTBEAT_S, LeaseLostError, VideoInfo, VideoWriter, begin_video, delete_video,
                                find_video, get_or_create_model, reclaim_abandoned, renew_leases,
                                set_model_layout, set_model_threshold, unencoded_tracks)

log = logging.getLogger(__name__)


@dataclass
class IngestJob:
    """One video to ingest.

    Attributes:
        path: the video file.
        camera: camera name (default: the file stem).
        start_time: wall-clock start of the video, seconds since the epoch; None: the container's creation time,
            else 0.
        recorded: a segment reid-app's recorder wrote (retention may delete it; never a user's file).
    """

    path: Path
    camera: str = ""
    start_time: Optional[float] = None
    recorded: bool = False

    def __post_init__(self):
        self.path = Path(self.path)
        self.camera = self.camera or self.path.stem


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
            keypoints follow the box (``pipelines.camera.follow_box``). 0: every analysed frame.
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


class IngestProgress:
    """Receives progress events; the CLI draws progress bars, the desktop app forwards them as Qt signals.

    Methods are called from the ingesting thread; the default implementations do nothing.
    """

    def on_start(self, summary: CameraSummary, total_frames: int) -> None:
        """A camera starts; ``total_frames`` analysed frames are expected (an estimate)."""

    def on_advance(self, camera: str, frames_analysed: int) -> None:
        """A camera has analysed ``frames_analysed`` frames so far."""

    def on_finish(self, summary: CameraSummary) -> None:
        """A camera ended (``summary.status``: done, skipped, failed or interrupted)."""

    def on_message(self, text: str) -> None:
        """A one-line notice for the user."""


TrackerFactory = Callable[[], PersonTracker]
PoseFactory = Callable[[PersonTracker], PoseEstimator]


@dataclass
class _Done:
    """What a camera thread reports when its video is analysed to the end."""

    times: StageTimes
    warning: Optional[str]  # the video source's warning (e.g. frames lost), or None
    frames_skipped: int  # analysed frames that skipped detection (no motion)
    duplicates_dropped: int  # second boxes of a person already boxed in their frame
    estimates_pose: bool  # the camera's people got pose estimates


@dataclass
class _Camera:
    job: IngestJob
    summary: CameraSummary
    source: Optional[VideoSource] = None
    fingerprint: str = ""
    writer: Optional[VideoWriter] = None
    pending: list[Observation] = field(default_factory=list)
    frames_analysed: int = 0
    started: float = 0.0
    thread: Optional[threading.Thread] = None
    done: bool = False
    cleanup: Optional[TrackCleanup] = None  # what the finished video's track clean-up removed
    #: Set to stop this camera alone (its video row was taken away).
    cancel: threading.Event = field(default_factory=threading.Event)


def _prepare(job: IngestJob, options: IngestOptions, db: Database, progress: IngestProgress) -> _Camera:
    cam = _Camera(job=job, summary=CameraSummary(camera=job.camera, video=str(job.path)))
    try:
        cam.source = VideoSource(job.path, options.analysis_fps, options.max_duration_s)
    except ReidAppError as exc:
        cam.summary.status, cam.summary.message = "failed", str(exc)
        return cam
    cam.fingerprint = fingerprint(cam.source.path)
    try:
        if reclaim_abandoned(db, cam.fingerprint):
            progress.on_message(f"{job.path}: the previous ingest was interrupted; ingesting it again")
    except ReidAppError as exc:
        cam.summary.status, cam.summary.message = "failed", f"{job.path}: {exc}"
        return cam
    existing = find_video(db, cam.fingerprint)
    if existing is None or options.force:
        return cam
    covered = existing.analysed_until_s
    wanted = options.max_duration_s
    if covered is not None and covered < existing.duration_s - 1e-3 and (wanted is None or wanted > covered + 1e-3):
        progress.on_message(f"{job.path}: analysed to {covered:g} s before; analysing it to "
                            f"{'the end' if wanted is None else f'{wanted:g} s'} now (the shorter copy is replaced "
                            f"when this one is finished)")
        return cam
    cam.summary.status = "skipped"
    cam.summary.message = (f"{job.path} is already ingested (camera {existing.camera_id}, video {existing.id}"
                           + (f", {existing.status}" if existing.status != "complete" else "")
                           + "); use --force to replace it")
    return cam


def register_encoder(db: Database, encoder: ReIDEncoder) -> int:
    """The ``models`` row id of ``encoder`` (made when new), with the clustering threshold its checkpoint was
    calibrated with and its descriptor layout (for part-level match explanations) recorded for it."""
    model_id = get_or_create_model(db, encoder.name, encoder.checkpoint_hash, encoder.dims, encoder.source)
    if encoder.clustering_threshold is not None:
        set_model_threshold(db, model_id, encoder.clustering_threshold)
    if encoder.descriptor_layout:
        set_model_layout(db, model_id, encoder.descriptor_layout)
    return model_id


def _analysed_until(source: VideoSource) -> Optional[float]:
    limit = source.max_duration_s
    return None if limit is None or limit >= source.probe.duration_s else float(limit)


def ingest(db: Database, jobs: list[IngestJob], encoder: ReIDEncoder, make_tracker: TrackerFactory,
           make_pose: PoseFactory, options: IngestOptions = IngestOptions(),
           progress: IngestProgress = IngestProgress(), stop: Optional[threading.Event] = None
           ) -> list[CameraSummary]:
    """Ingest videos into the database.

    Args:
        db: open database.
        jobs: the videos, one camera each (camera names should be distinct).
        encoder: the re-id encoder (shared by all cameras).
        make_tracker: returns a new detector + tracker (one per camera; called in that camera's thread).
        make_pose: returns the pose backend for a camera's tracker.
        options: rates, batch sizes, thresholds.
        progress: progress receiver.
        stop: set it (e.g. from a Cancel button or on Ctrl-C) to stop early; unfinished videos stay ``ingesting``
            and are redone by the next run.

    Returns:
        One :class:`CameraSummary` per job, in job order. Bad videos are ``failed`` with a message; the others are
        ingested regardless.

    Raises:
        KeyboardInterrupt: re-raised after the camera threads stopped and the database was left consistent.
        DatabaseError: the database cannot be written (disk full, I/O error, damaged): raised after the camera
            threads stopped; the unfinished videos stay ``ingesting`` and are redone by the next run.
    """
    if not options.analysis_fps > 0:
        raise ValueError(f"analysis rate must be > 0 frames/s, got {options.analysis_fps}")
    stop = stop or threading.Event()
    cameras = [_prepare(job, options, db, progress) for job in jobs]
    for cam in cameras:
        if cam.summary.status in ("failed", "skipped"):
            progress.on_finish(cam.summary)
    runnable = [c for c in cameras if c.summary.status == "pending"]
    if not runnable:
        return [c.summary for c in cameras]
    model_id = register_encoder(db, encoder)
    events: "queue.Queue[tuple]" = queue.Queue(maxsize=64)
    started = []
    for index, cam in enumerate(runnable):
        probe = cam.source.probe
        start = cam.job.start_time if cam.job.start_time is not None else (probe.creation_time or 0.0)
        info = VideoInfo(camera=cam.job.camera, path=str(probe.path), fingerprint=cam.fingerprint,
                         fps=probe.fps, frame_count=probe.frame_count, width=probe.width, height=probe.height,
                         duration_s=probe.duration_s, start_time=start, analysis_fps=cam.source.analysis_fps,
                         analysed_until_s=_analysed_until(cam.source), recorded=cam.job.recorded)
        try:
            video_id = begin_video(db, info, model_id)
            cam.writer = VideoWriter(db, video_id, model_id, start)
        except ReidAppError as exc:
            cam.summary.status, cam.summary.message = "failed", f"{cam.job.path}: {exc}"
            cam.done = True
            progress.on_finish(cam.summary)
            continue
        cam.summary.status = "running"
        cam.started = time.perf_counter()
        progress.on_start(cam.summary, cam.source.expected_frames)
        cam.thread = threading.Thread(target=_camera_thread,
                                      args=(len(started), cam, make_tracker, make_pose, options, encoder.num_parts,
                                            events, stop),
                                      name=f"camera-{cam.job.camera}", daemon=True)
        cam.thread.start()
        started.append(cam)
    try:
        _consume(started, events, encoder, options, progress, stop)
    except SQLAlchemyError as exc:
        stop.set()
        _interrupt(started, events, progress)
        raise DatabaseError(f"cannot write to database {db.location}: {storage_error_text(exc, db.path)}; the "
                            f"unfinished videos are redone by the next run") from None
    except BaseException:
        stop.set()
        _interrupt(started, events, progress)
        raise
    if stop.is_set():
        _interrupt(started, events, progress)
    return [c.summary for c in cameras]


def _camera_thread(index: int, cam: _Camera, make_tracker: TrackerFactory, make_pose: PoseFactory,
                   options: IngestOptions, num_parts: int, events: queue.Queue, stop: threading.Event) -> None:
    def stopped() -> bool:
        return stop.is_set() or cam.cancel.is_set()

    def put(item: tuple) -> None:
        while not stopped():
            try:
                events.put(item, timeout=0.2)
                return
            except queue.Full:
                continue

    try:
        tracker = make_tracker()
        pipeline = CameraPipeline(cam.job.camera, cam.source, tracker, make_pose(tracker), options.quality,
                                  options.sampling, num_parts, options.motion, options.pose_interval_s,
                                  options.duplicates)
        times = pipeline.run(lambda obs, n: put(("obs", index, obs, n)), stopped)
        put(("done", index, _Done(times, cam.source.warning, pipeline.frames_skipped, pipeline.duplicates_dropped,
                                  pipeline.estimates_pose)))
    except ReidAppError as exc:
        put(("error", index, str(exc)))
    except Exception as exc:  # a failing camera must not stop the others
        log.exception("camera %s failed", cam.job.camera)
        put(("error", index, f"{cam.job.path}: processing failed ({type(exc).__name__}: {exc})"))


def _consume(cameras: list[_Camera], events: queue.Queue, encoder: ReIDEncoder, options: IngestOptions,
             progress: IngestProgress, stop: threading.Event) -> None:
    by_index = {i: cam for i, cam in enumerate(cameras)}
    active = len(cameras)
    selected = 0  # selected crops waiting in all cameras' pending lists
    next_heartbeat = time.monotonic() + HEARTBEAT_S
    while active and not stop.is_set():
        if time.monotonic() >= next_heartbeat:  # cameras without people write nothing for a long time
            renew_leases([c.writer for c in cameras if not c.done])
            next_heartbeat = time.monotonic() + HEARTBEAT_S
        try:
            item = events.get(timeout=0.2)
        except queue.Empty:
            continue
        kind, index = item[0], item[1]
        cam = by_index[index]
        if kind == "obs" and not cam.done:
            cam.pending += item[2]
            selected += sum(o.selected for o in item[2])
            cam.frames_analysed = item[3]
            progress.on_advance(cam.job.camera, cam.frames_analysed)
            if selected >= options.batch_size or len(cam.pending) >= options.flush_observations:
                active -= _flush(cameras, encoder, progress)
                selected = 0
        elif kind == "done" and not cam.done:
            active -= _flush(cameras, encoder, progress)
            selected = 0
            if cam.done:
                continue
            done: _Done = item[2]
            cam.summary.times.add(done.times)
            t0 = time.perf_counter()
            try:
                status = cam.writer.finish(cam.frames_analysed, cam.source.frames_lost,
                                           cam.source.frames_decoded + cam.source.frames_lost)
            except LeaseLostError as exc:
                _fail(cam, str(exc), progress)
                active -= 1
                continue
            cleanup = clean_up_tracks(cam.writer.db, cam.writer.video_id, options.quality, options.skeleton,
                                      options.static, done.estimates_pose)
            cam.cleanup = cleanup
            cam.summary.times.store += time.perf_counter() - t0
            cam.summary.status = "done"
            cam.summary.frames_skipped = done.frames_skipped
            notes = [done.warning or ""]
            if done.frames_skipped:
                notes.append(f"{done.frames_skipped} of {cam.frames_analysed} frames without motion skipped "
                             f"detection")
            if done.duplicates_dropped:
                notes.append(f"{done.duplicates_dropped} duplicate box{'es' if done.duplicates_dropped > 1 else ''} "
                             f"of a person already boxed in the same frame dropped")
            notes += cleanup.notes()
            short, long_ = unencoded_tracks(cam.writer.db, cam.writer.video_id)
            if short or long_:
                notes.append(f"{short + long_} track(s) without a descriptor, so not searchable "
                             f"({unencoded_reasons(short, long_, options.quality)})")
            if status != "complete":
                notes.append(f"stored as {status}")
            if cam.writer.rejected_embeddings:
                notes.append(f"{cam.writer.rejected_embeddings} crops gave unusable embeddings (not finite or zero) "
                             f"and were not stored")
            cam.summary.message = "; ".join(n for n in notes if n)
            _finish(cam, progress)
            active -= 1
        elif kind == "error" and not cam.done:
            selected -= sum(o.selected for o in cam.pending)
            cam.pending.clear()
            delete_video(cam.writer.db, cam.writer.video_id)
            _fail(cam, item[2], progress)
            active -= 1


def _fail(cam: _Camera, message: str, progress: IngestProgress) -> None:
    cam.cancel.set()
    cam.pending = []
    cam.summary.status, cam.summary.message = "failed", message
    _finish(cam, progress)


def _flush(cameras: list[_Camera], encoder: ReIDEncoder, progress: IngestProgress) -> int:
    """Encode every camera's pending selected crops in one call, then write each camera's batch.

    Returns:
        The number of cameras that failed because their video row was taken away (:class:`LeaseLostError`).
    """
    selected = [(c, o) for c in cameras if not c.done for o in c.pending if o.selected]
    embeddings = np.zeros((0, encoder.dims), np.float32)
    if selected:
        t0 = time.perf_counter()
        boxes = [o.part_boxes for _, o in selected]
        embeddings = encoder.encode([o.crop for _, o in selected], np.stack(boxes))
        seconds = time.perf_counter() - t0
        for cam, _ in selected:
            cam.summary.times.encode += seconds / len(selected)
    offset, failed = 0, 0
    for cam in cameras:
        if cam.done or not cam.pending:
            continue
        count = sum(o.selected for o in cam.pending)
        t0 = time.perf_counter()
        try:
            cam.writer.write(cam.pending, embeddings[offset:offset + count] if count else None, cam.frames_analysed)
        except LeaseLostError as exc:
            _fail(cam, str(exc), progress)
            failed += 1
        cam.summary.times.store += time.perf_counter() - t0
        offset += count
        cam.pending = []
    return failed


def _finish(cam: _Camera, progress: IngestProgress) -> None:
    cam.done = True
    s = cam.summary
    s.frames_analysed = cam.frames_analysed
    s.seconds = time.perf_counter() - cam.started
    if cam.writer is not None and s.status == "done":
        gone = cam.cleanup or TrackCleanup()
        s.tracks = cam.writer.tracks - gone.stitched - gone.no_skeleton
        s.sightings = cam.writer.sightings - gone.sightings_dropped
        s.embeddings = cam.writer.embeddings - gone.embeddings_dropped
    progress.on_finish(s)


def _interrupt(cameras: list[_Camera], events: queue.Queue, progress: IngestProgress) -> None:
    for cam in cameras:
        if cam.thread is not None:
            while cam.thread.is_alive():  # drain so no producer blocks on a full queue
                try:
                    events.get(timeout=0.1)
                except queue.Empty:
                    pass
    for cam in cameras:
        if not cam.done and cam.writer is not None:
            try:
                cam.writer.release()
            except SQLAlchemyError:  # the database itself failed (disk full): the lease then times out
                log.warning("could not release the lease of video %s", cam.writer.video_id)
    for cam in cameras:
        if not cam.done:
            cam.summary.status = "interrupted"
            cam.summary.message = "interrupted; run the same command again to complete this video"
            _finish(cam, progress)
