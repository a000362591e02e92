"""Multi-camera ingest: one pipeline thread per camera, batched re-id encoding across cameras, batched storage.

Flow (``../shared/DESIGN.md``): each camera's :class:`pipelines.ingest.camera.CameraPipeline` runs in its own thread and
puts finished observations on a bounded queue; the calling thread collects them, encodes the selected crops of all
cameras together (``batch_size`` crops per forward pass), and writes each camera's batch in one transaction.
A camera that fails is reported and cleaned up while the others go on. Memory is bounded by the queue and batch
sizes, never by video length.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Optional

from sqlalchemy.exc import SQLAlchemyError

from common.errors import DatabaseError, ReidAppError, setting
from common.types import CameraSummary, IngestStatus, Observation
from models.encoders import ReIDEncoder
from pipelines.ingest.engine import (
    Analysed,
    CameraThreads,
    Ended,
    Failed,
    IngestOptions,
    Observed,
    PoseFactory,
    TrackerFactory,
    camera_pipeline,
    encode_batches,
    register_encoder,
)
from pipelines.ingest.track_cleanup import TrackCleanup, clean_up_tracks, unencoded_reasons
from pipelines.ingest.video import VideoSource, fingerprint
from storage.database import Database, storage_error_text
from storage.leases import HEARTBEAT_S, LeaseLostError
from storage.track_checks import unencoded_tracks
from storage.videos import VideoInfo, begin_video, delete_video, find_video, reclaim_abandoned, renew_leases
from storage.writer import VideoWriter

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


@dataclass
class _Camera:
    job: IngestJob
    summary: CameraSummary
    source: Optional[VideoSource] = None
    fingerprint: str = ""
    writer: Optional[VideoWriter] = None
    pending: list[Observation] = field(default_factory=list)
    frames_analysed: int = 0
    index: int = -1  # in the engine, once started
    started: float = 0.0
    done: bool = False
    cleanup: Optional[TrackCleanup] = None  # what the finished video's track clean-up removed


def _prepare(job: IngestJob, options: IngestOptions, db: Database, progress: IngestProgress) -> _Camera:
    cam = _Camera(job=job, summary=CameraSummary(camera=job.camera, video=str(job.path)))
    try:
        cam.source = VideoSource(job.path, options.analysis_fps, options.max_duration_s)
    except ReidAppError as exc:
        cam.summary.status, cam.summary.message = IngestStatus.FAILED, str(exc)
        return cam
    cam.fingerprint = fingerprint(cam.source.path)
    try:
        if reclaim_abandoned(db, cam.fingerprint):
            progress.on_message(f"{job.path}: the previous ingest was interrupted; ingesting it again")
    except ReidAppError as exc:
        cam.summary.status, cam.summary.message = IngestStatus.FAILED, f"{job.path}: {exc}"
        return cam
    existing = find_video(db, cam.fingerprint)
    if existing is None or options.force:
        return cam
    covered = existing.analysed_until_s
    wanted = options.max_duration_s
    if covered is not None and covered < existing.duration_s - 1e-3 and (wanted is None or wanted > covered + 1e-3):
        progress.on_message(
            f"{job.path}: analysed to {covered:g} s before; analysing it to "
            f"{'the end' if wanted is None else f'{wanted:g} s'} now (the shorter copy is replaced "
            f"when this one is finished)"
        )
        return cam
    cam.summary.status = IngestStatus.SKIPPED
    cam.summary.message = (
        f"{job.path} is already ingested (camera {existing.camera_id}, video {existing.id}"
        + (f", {existing.status}" if existing.status != "complete" else "")
        + f"); use {setting('force')} to replace it"
    )
    return cam


def _analysed_until(source: VideoSource) -> Optional[float]:
    limit = source.max_duration_s
    return None if limit is None or limit >= source.probe.duration_s else float(limit)


def ingest(
    db: Database,
    jobs: list[IngestJob],
    encoder: ReIDEncoder,
    make_tracker: TrackerFactory,
    make_pose: PoseFactory,
    options: Optional[IngestOptions] = None,
    progress: Optional[IngestProgress] = None,
    stop: Optional[threading.Event] = None,
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
    stop = stop or threading.Event()
    options = options or IngestOptions()
    progress = progress or IngestProgress()
    cameras = [_prepare(job, options, db, progress) for job in jobs]
    for cam in cameras:
        if cam.summary.status in (IngestStatus.FAILED, IngestStatus.SKIPPED):
            progress.on_finish(cam.summary)
    runnable = [c for c in cameras if c.summary.status == IngestStatus.PENDING]
    if not runnable:
        return [c.summary for c in cameras]
    model_id = register_encoder(db, encoder)
    threads = CameraThreads(stop)
    started: list[_Camera] = []
    for cam in runnable:
        probe = cam.source.probe
        start = cam.job.start_time if cam.job.start_time is not None else (probe.creation_time or 0.0)
        info = VideoInfo(
            camera=cam.job.camera,
            path=str(probe.path),
            fingerprint=cam.fingerprint,
            fps=probe.fps,
            frame_count=probe.frame_count,
            width=probe.width,
            height=probe.height,
            duration_s=probe.duration_s,
            start_time=start,
            analysis_fps=cam.source.analysis_fps,
            analysed_until_s=_analysed_until(cam.source),
            recorded=cam.job.recorded,
        )
        try:
            video_id = begin_video(db, info, model_id)
            cam.writer = VideoWriter(db, video_id, model_id, start)
        except ReidAppError as exc:
            cam.summary.status, cam.summary.message = IngestStatus.FAILED, f"{cam.job.path}: {exc}"
            cam.done = True
            progress.on_finish(cam.summary)
            continue
        cam.summary.status = IngestStatus.RUNNING
        cam.started = time.perf_counter()
        progress.on_start(cam.summary, cam.source.expected_frames)
        cam.index = len(started)
        threads.start(
            cam.index,
            cam.job.camera,
            lambda channel, cam=cam: channel.run(
                lambda: camera_pipeline(cam.job.camera, cam.source, make_tracker, make_pose, options, encoder.num_parts)
            ),
        )
        started.append(cam)
    try:
        _consume(started, threads, encoder, options, progress, stop)
    except SQLAlchemyError as exc:
        stop.set()
        _interrupt(started, threads, progress)
        raise DatabaseError(
            f"cannot write to database {db.location}: {storage_error_text(exc, db.path)}; the "
            f"unfinished videos are redone by the next run"
        ) from None
    except BaseException:
        stop.set()
        _interrupt(started, threads, progress)
        raise
    if stop.is_set():
        _interrupt(started, threads, progress)
    threads.close()
    return [c.summary for c in cameras]


def _consume(
    cameras: list[_Camera],
    threads: CameraThreads,
    encoder: ReIDEncoder,
    options: IngestOptions,
    progress: IngestProgress,
    stop: threading.Event,
) -> None:
    active = len(cameras)
    selected = 0  # selected crops waiting in all cameras' pending lists
    next_heartbeat = time.monotonic() + HEARTBEAT_S
    while active and not stop.is_set():
        if time.monotonic() >= next_heartbeat:  # cameras without people write nothing for a long time
            renew_leases([c.writer for c in cameras if not c.done])
            next_heartbeat = time.monotonic() + HEARTBEAT_S
        for event in threads.events(timeout=0.2):
            cam = cameras[event.camera]
            if cam.done or isinstance(event, Ended):
                continue
            if isinstance(event, Observed):
                cam.pending += event.observations
                selected += sum(o.selected for o in event.observations)
                cam.frames_analysed = event.frames_analysed
                progress.on_advance(cam.job.camera, cam.frames_analysed)
                if selected >= options.batch_size or len(cam.pending) >= options.flush_observations:
                    active -= _flush(cameras, threads, encoder, progress)
                    selected = 0
            elif isinstance(event, Analysed):
                active -= _flush(cameras, threads, encoder, progress)
                selected = 0
                if not cam.done:
                    _finish_video(cam, event, options, threads, progress)
                    active -= 1
            elif isinstance(event, Failed):
                selected -= sum(o.selected for o in cam.pending)
                cam.pending.clear()
                delete_video(cam.writer.db, cam.writer.video_id)
                _fail(cam, threads, f"{cam.job.path}: {event.message}" if event.unexpected else event.message, progress)
                active -= 1


def _finish_video(
    cam: _Camera, analysed: Analysed, options: IngestOptions, threads: CameraThreads, progress: IngestProgress
) -> None:
    """Mark a camera's analysed video complete, clean up its tracks and word its summary."""
    cam.summary.times.add(analysed.times)
    t0 = time.perf_counter()
    try:
        status = cam.writer.finish(
            cam.frames_analysed, cam.source.frames_lost, cam.source.frames_decoded + cam.source.frames_lost
        )
    except LeaseLostError as exc:
        _fail(cam, threads, str(exc), progress)
        return
    cleanup = clean_up_tracks(
        cam.writer.db, cam.writer.video_id, options.quality, options.skeleton, options.static, analysed.estimates_pose
    )
    cam.cleanup = cleanup
    cam.summary.times.store += time.perf_counter() - t0
    cam.summary.status = IngestStatus.DONE
    cam.summary.frames_skipped = analysed.frames_skipped
    notes = [analysed.warning or ""]
    if analysed.frames_skipped:
        notes.append(f"{analysed.frames_skipped} of {cam.frames_analysed} frames without motion skipped detection")
    if analysed.duplicates_dropped:
        notes.append(
            f"{analysed.duplicates_dropped} duplicate box{'es' if analysed.duplicates_dropped > 1 else ''} "
            f"of a person already boxed in the same frame dropped"
        )
    notes += cleanup.notes()
    short, long_ = unencoded_tracks(cam.writer.db, cam.writer.video_id)
    if short or long_:
        notes.append(
            f"{short + long_} track(s) without a descriptor, so not searchable "
            f"({unencoded_reasons(short, long_, options.quality)})"
        )
    if status != "complete":
        notes.append(f"stored as {status}")
    if cam.writer.rejected_embeddings:
        notes.append(
            f"{cam.writer.rejected_embeddings} crops gave unusable embeddings (not finite or zero) and were not stored"
        )
    cam.summary.message = "; ".join(n for n in notes if n)
    _finish(cam, progress)


def _fail(cam: _Camera, threads: CameraThreads, message: str, progress: IngestProgress) -> None:
    threads.cancel(cam.index)
    cam.pending = []
    cam.summary.status, cam.summary.message = IngestStatus.FAILED, message
    _finish(cam, progress)


def _flush(cameras: list[_Camera], threads: CameraThreads, encoder: ReIDEncoder, progress: IngestProgress) -> int:
    """Encode every camera's pending selected crops in one call, then write each camera's batch.

    Returns:
        The number of cameras that failed because their video row was taken away (:class:`LeaseLostError`).
    """
    waiting = [c for c in cameras if not c.done and c.pending]
    embeddings, seconds = encode_batches(encoder, [c.pending for c in waiting])
    selected = sum(o.selected for c in waiting for o in c.pending)
    failed = 0
    for cam, vectors in zip(waiting, embeddings):
        cam.summary.times.encode += seconds * sum(o.selected for o in cam.pending) / max(selected, 1)
        t0 = time.perf_counter()
        try:
            cam.writer.write(cam.pending, vectors, cam.frames_analysed)
        except LeaseLostError as exc:
            _fail(cam, threads, str(exc), progress)
            failed += 1
        cam.summary.times.store += time.perf_counter() - t0
        cam.pending = []
    return failed


def _finish(cam: _Camera, progress: IngestProgress) -> None:
    cam.done = True
    s = cam.summary
    s.frames_analysed = cam.frames_analysed
    s.seconds = time.perf_counter() - cam.started
    if cam.writer is not None and s.status == IngestStatus.DONE:
        gone = cam.cleanup or TrackCleanup()
        s.tracks = cam.writer.tracks - gone.stitched - gone.no_skeleton
        s.sightings = cam.writer.sightings - gone.sightings_dropped
        s.embeddings = cam.writer.embeddings - gone.embeddings_dropped
    progress.on_finish(s)


def _interrupt(cameras: list[_Camera], threads: CameraThreads, progress: IngestProgress) -> None:
    threads.close()
    for cam in cameras:
        if not cam.done and cam.writer is not None:
            try:
                cam.writer.release()
            except SQLAlchemyError:  # the database itself failed (disk full): the lease then times out
                log.warning("could not release the lease of video %s", cam.writer.video_id)
    for cam in cameras:
        if not cam.done:
            cam.summary.status = IngestStatus.INTERRUPTED
            cam.summary.message = "interrupted; run the same command again to complete this video"
            _finish(cam, progress)
