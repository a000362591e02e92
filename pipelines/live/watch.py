"""Watching a site of live cameras (``reid-app watch``): every camera is analysed as its frames arrive, recorded as
rolling segments, stored, matched against the watchlist, and kept within the retention age, until stopped.

Per camera, one thread runs a :class:`pipelines.ingest.camera.CameraPipeline` on a
:class:`pipelines.live.stream.StreamSource`
whose :class:`pipelines.live.recording.SegmentRecorder` writes the footage. The calling thread collects the cameras'
observations, encodes the selected crops of all cameras together, and writes them. Each recorded segment is one
``videos`` row from its first seconds on (status ``ingesting`` while written, its length updated every
:data:`PROGRESS_S`; ``complete`` once closed). Segments are fragmented MP4, so the player can show a camera's
recording while it grows, and the player, search, identities and evidence export use live footage as they use
ingested files: a sighting's ``time_s`` is its frame's time in the
segment file and its ``timestamp`` the frame's wall-clock arrival time. A person seen across a segment boundary
becomes two tracks (one per segment), which incremental matching joins into one identity.

Latency: a track's observations are stored when its sampling window closes (``window_s``, 1 s by default) and
within ``flush_s`` after that; the watchlist is checked on every write. A segment becomes searchable and gets
identities (:func:`pipelines.matching.identities.assign_new_tracks`, no re-clustering) once it is closed and its
last observations are written (``segment_s`` plus a few seconds).

Recordings left ``ingesting`` by a watch that was killed are finished with what they hold when the next watch
starts (:func:`recover_abandoned`). A camera that cannot be reached or drops keeps being retried (exponential backoff up
to 30 s) without stopping
the others; a camera whose analysis fails is restarted after :data:`RESTART_AFTER_S`.
"""

from __future__ import annotations

import collections
import dataclasses
import hashlib
import logging
import os
import queue
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Optional

import av
import numpy as np
from filelock import FileLock, Timeout
from sqlalchemy.exc import SQLAlchemyError

from common.errors import DatabaseError, ReidAppError, UsageError
from common.redaction import redact_text
from common.types import CameraState, Detection, Frame, Observation
from models.encoders import ReIDEncoder
from pipelines.evidence.retention import RetentionReport, apply_retention
from pipelines.ingest.engine import (
    CameraChannel,
    CameraThreads,
    IngestOptions,
    Observed,
    PoseFactory,
    TrackerFactory,
    camera_pipeline,
    encode_batches,
    register_encoder,
)
from pipelines.ingest.track_cleanup import clean_up_tracks
from pipelines.ingest.video import file_safe_name
from pipelines.live.recording import Segment, SegmentRecorder
from pipelines.live.site import SiteCamera
from pipelines.live.stream import StreamOptions, StreamSource
from pipelines.live.watchlist import AlertDispatcher, WatchlistMatcher
from pipelines.matching.identities import assign_new_tracks
from storage.audit import record
from storage.database import Database, storage_error_text
from storage.feedback import set_overlap
from storage.leases import LeaseLostError
from storage.videos import (
    VideoInfo,
    abandoned_videos_under,
    begin_video,
    delete_video,
    ensure_cameras,
    finish_abandoned,
)
from storage.writer import VideoWriter

log = logging.getLogger(__name__)

#: Seconds before a camera whose analysis raised is started again.
RESTART_AFTER_S = 10.0
#: How often the segments being written get their length so far recorded (seconds; also their lease heartbeat).
PROGRESS_S = 2.0


def recover_abandoned(db: Database, recordings: Path) -> int:
    """Finish the recordings under ``recordings`` whose watch was killed (``kill -9``, power loss): each keeps what
    was stored of it and becomes ``complete`` with the length its file holds (fragmented MP4: playable up to its last
    whole fragment); a row whose file is missing or unreadable is deleted. Returns the rows finished."""
    finished = 0
    for video_id, path in abandoned_videos_under(db, str(Path(recordings).resolve())):
        length = _recorded_length(Path(path))
        if length is None:
            delete_video(db, video_id)
        elif finish_abandoned(db, video_id, *length):
            finished += 1
    return finished


def _recorded_length(path: Path) -> Optional[tuple[float, int]]:
    """``(seconds, frames)`` of a recorded segment, read from its packets (no decoding), or None."""
    try:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            first = last = None
            count = 0
            for packet in container.demux(stream):
                if packet.pts is None:
                    continue
                first = packet.pts if first is None else min(first, packet.pts)
                last = packet.pts if last is None else max(last, packet.pts)
                count += 1
            if not count:
                return None
            rate = float(stream.average_rate or stream.guessed_rate or 0) or 10.0
            return float((last - first) * stream.time_base) + 1.0 / rate, count
    except (av.error.FFmpegError, OSError, IndexError):
        return None


def live_fingerprint(path: Path) -> str:
    """The ``videos.fingerprint`` of a live recording: a hash of its absolute path (the file is still growing
    while its row exists, so its bytes cannot be hashed)."""
    return hashlib.sha256(f"live:{Path(path).resolve()}".encode()).hexdigest()


@dataclass
class CameraStatus:
    """One camera's line in the status display.

    Attributes:
        camera: name. url: the redacted URL.
        state: ``connecting``, ``live``, ``reconnecting`` or ``stopped``.
        analysed_fps: frames analysed per second over the last 5 s of wall-clock time.
        lag_s: seconds between a frame's arrival and its analysis (last frame).
        people: people tracked in the last analysed frame. frames: frames analysed by this run.
        tracks, sightings: stored so far by this run. segments: recorded segments finished. alerts: raised.
        reconnects: times the stream was reopened. last_error: the last connection problem (redacted), or why
            nothing is being stored. storing_paused: the database cannot be written (recording goes on).
    """

    camera: str
    url: str
    state: CameraState = CameraState.CONNECTING
    analysed_fps: float = 0.0
    lag_s: float = 0.0
    people: int = 0
    frames: int = 0
    tracks: int = 0
    sightings: int = 0
    segments: int = 0
    storing_paused: bool = False
    alerts: int = 0
    reconnects: int = 0
    last_error: str = ""


@dataclass
class LiveFrame:
    """The newest analysed frame of a camera, for a live view: ``image`` ``uint8 [H, W, 3]`` BGR, the tracked
    people's ``float32 [N, 4]`` boxes (frame pixels) and ``int [N]`` track ids, and its wall-clock time."""

    image: np.ndarray
    boxes: np.ndarray
    track_ids: np.ndarray
    timestamp: float


@dataclass
class _SegmentRow:
    segment: Segment
    writer: VideoWriter
    fps: float
    frames_analysed: int = 0
    finished: bool = False


@dataclass
class _LiveCamera:
    config: SiteCamera
    recorder: SegmentRecorder
    status: CameraStatus
    source: Optional[StreamSource] = None
    rows: dict[str, _SegmentRow] = field(default_factory=dict)
    pending: list[Observation] = field(default_factory=list)
    pending_since: float = 0.0
    closed: list[Segment] = field(default_factory=list)
    frame_times: collections.deque = field(default_factory=lambda: collections.deque(maxlen=600))
    latest: Optional[LiveFrame] = None
    frames_in: dict[str, int] = field(default_factory=dict)  # analysed frames per segment file
    tracks_done: int = 0  # tracks of finished segments
    finished: set[str] = field(default_factory=set)  # segment files whose video row is finished
    unrecorded: int = 0
    late: int = 0
    estimates_pose: bool = True  # its people get keypoints (else no track is judged by its skeleton)
    #: Encoded observations not yet stored, per segment file, oldest first (kept while the database is down).
    unwritten: collections.deque = field(default_factory=collections.deque)  # (path, observations, vectors)


@dataclass
class WatchOptions:
    """How a site is watched.

    Attributes:
        ingest: analysis settings shared with file ingest (rates, sampling, quality, motion gate, pose interval).
        segment_s: longest recorded segment, seconds.
        flush_s: observations wait at most this many seconds before they are encoded and stored.
        retention_s: purge footage older than this many seconds (None: keep everything).
        retention_every_s: how often the purge runs.
        status_every_s: how often ``on_status`` is called.
        stream: how streams are opened (the camera's transport replaces ``rtsp_transport``); a live site never
            gives a camera up.
    """

    ingest: IngestOptions = field(default_factory=IngestOptions)
    segment_s: float = 60.0
    flush_s: float = 0.5
    retention_s: Optional[float] = None
    retention_every_s: float = 3600.0
    status_every_s: float = 1.0
    stream: StreamOptions = field(default_factory=StreamOptions)


@dataclass
class WatchSummary:
    """What a watch run did: per-camera final status, alerts raised, retention runs, seconds watched."""

    cameras: list[CameraStatus]
    alerts: int
    retention_runs: list[RetentionReport]
    seconds: float


class LiveSite:
    """Watches live cameras until stopped (module docstring).

    Args:
        db: the open database.
        cameras: the cameras (names unique; ``pipelines.live.site.load_site``).
        groups: overlap groups, group name -> camera names (one person may be in two cameras of a group at once).
        recordings: folder for the recorded segments (one sub-folder per camera).
        encoder, make_tracker, make_pose: the models (see ``pipelines.ingest.files.ingest``).
        options: :class:`WatchOptions`.
        watchlist: matcher of live tracks against the watchlist (None: no alerts).
        alerts: stores and delivers the watchlist's alerts.
    """

    def __init__(
        self,
        db: Database,
        cameras: list[SiteCamera],
        groups: dict[str, list[str]],
        recordings: Path,
        encoder: ReIDEncoder,
        make_tracker: TrackerFactory,
        make_pose: PoseFactory,
        options: Optional[WatchOptions] = None,
        watchlist: Optional[WatchlistMatcher] = None,
        alerts: Optional[AlertDispatcher] = None,
    ):
        self.db = db
        self.groups = groups
        self.recordings = Path(recordings).expanduser().resolve()
        self.encoder = encoder
        self.make_tracker = make_tracker
        self.make_pose = make_pose
        self.options = options or WatchOptions()
        self.watchlist = watchlist
        self.alerts = alerts
        self._closed_segments: "queue.Queue[tuple[int, Segment]]" = queue.Queue()
        self._threads: Optional[CameraThreads] = None  # the engine's camera threads, while running
        self._cameras: list[_LiveCamera] = []
        for index, config in enumerate(cameras):
            recorder = SegmentRecorder(
                self.recorder_folder(config.name),
                config.name,
                self.options.segment_s,
                on_segment=lambda s, i=index: self._closed_segments.put((i, s)),
            )
            self._cameras.append(_LiveCamera(config, recorder, CameraStatus(config.name, config.shown_url)))
        self.model_id = 0
        self._retention_runs: list[RetentionReport] = []
        self._locks: list = []  # the cameras' held locks (filelock.FileLock) of _hold_cameras
        self._database_retry_at = 0.0
        self._database_backoff_s = 0.0
        self._database_error: Optional[str] = None
        #: Seconds from a frame's arrival to its sightings' commit, and from the arrival of the frame that made a
        #: track match the watchlist to its alert being raised (the latest 10,000 of each).
        self.store_delays: collections.deque = collections.deque(maxlen=10000)
        self.alert_delays: collections.deque = collections.deque(maxlen=10000)

    def recorder_folder(self, camera: str) -> Path:
        """Where a camera's segments are written."""
        return self.recordings / file_safe_name(camera)

    def statuses(self) -> list[CameraStatus]:
        """A snapshot of every camera's status line."""
        now = time.monotonic()
        out = []
        for cam in self._cameras:
            times = [t for t in cam.frame_times if t >= now - 5.0]
            cam.status.analysed_fps = len(times) / 5.0
            source = cam.source
            if source is not None:
                cam.status.lag_s = source.lag_s
                cam.status.reconnects = source.reconnects
                cam.status.last_error = self._database_error or source.last_error or ""
                cam.status.storing_paused = self._database_error is not None
                if cam.status.state != CameraState.STOPPED:
                    cam.status.state = (
                        CameraState.LIVE
                        if source.connected
                        else (
                            CameraState.RECONNECTING
                            if source.frames_decoded or source.reconnects
                            else CameraState.CONNECTING
                        )
                    )
            out.append(dataclasses.replace(cam.status))
        return out

    def latest_frame(self, camera: str) -> Optional[LiveFrame]:
        """The newest analysed frame of ``camera`` with its tracked people, or None before the first."""
        for cam in self._cameras:
            if cam.config.name == camera:
                return cam.latest
        return None

    def run(
        self, stop: threading.Event, on_status: Optional[Callable[[list[CameraStatus]], None]] = None
    ) -> WatchSummary:
        """Watch until ``stop`` is set (or Ctrl-C), then shut down cleanly: every camera's buffered observations
        are stored, its open segment closed (playable) and finished as a video, and new tracks get identities.

        Raises:
            DatabaseError: the database cannot be written (raised after the cameras stopped).
        """
        started = time.monotonic()
        self._hold_cameras()
        self.model_id = register_encoder(self.db, self.encoder)
        ids = ensure_cameras(self.db, [c.config.name for c in self._cameras])
        for members in self.groups.values():
            if len(members) > 1:
                set_overlap(self.db, [ids[m] for m in members])
        record(self.db, "watch", cameras=[c.config.name for c in self._cameras], recordings=str(self.recordings))
        recovered = recover_abandoned(self.db, self.recordings)
        if recovered:
            log.warning(
                "%d recording(s) left unfinished by a watch that was killed were finished with what they hold",
                recovered,
            )
        self._threads = CameraThreads(stop, queue_size=256)
        for index, cam in enumerate(self._cameras):
            self._threads.start(index, cam.config.name, self._watch_camera)
        next_status = next_progress = time.monotonic()
        next_retention = time.monotonic() + (0.0 if self.options.retention_s else float("inf"))
        try:
            while not stop.is_set():
                self._take_events(0.2)
                now = time.monotonic()
                if now >= self._database_retry_at:
                    try:
                        self._flush_due(final=False)
                        self._finish_closed(final=False)
                        if now >= next_progress:
                            self._progress()
                            next_progress = now + PROGRESS_S
                        if now >= next_retention:
                            self._retention()
                            next_retention = now + self.options.retention_every_s
                        self._database_back()
                    except (SQLAlchemyError, DatabaseError) as exc:  # recording goes on; storing waits
                        self._database_down(exc)
                if on_status is not None and now >= next_status:
                    on_status(self.statuses())
                    next_status = now + self.options.status_every_s
        except KeyboardInterrupt:
            stop.set()
        finally:
            stop.set()
            try:
                self._shutdown()
            finally:
                for lock in self._locks:
                    lock.release()
        for cam in self._cameras:
            cam.status.state = CameraState.STOPPED
        statuses = self.statuses()
        if on_status is not None:
            on_status(statuses)
        return WatchSummary(
            statuses, self.alerts.raised if self.alerts else 0, self._retention_runs, time.monotonic() - started
        )

    def _hold_cameras(self) -> None:
        """Take each camera's recording lock (``<recordings>/<camera>/.watch.lock``, an exclusive OS lock held
        while this process lives, its pid in ``.watch.pid``), so a second watch of the same cameras is refused instead
        of recording and
        storing everything twice.

        Raises:
            UsageError: another process watches one of the cameras (its pid in the message).
        """
        for cam in self._cameras:
            folder = self.recorder_folder(cam.config.name)
            folder.mkdir(parents=True, exist_ok=True)
            lock = FileLock(folder / ".watch.lock", timeout=0)  # an OS lock: gone with the process, on any system
            try:
                lock.acquire()
            except Timeout:
                try:
                    holder = (folder / ".watch.pid").read_text().strip() or "?"
                except OSError:
                    holder = "?"
                for other in self._locks:
                    other.release()
                raise UsageError(
                    f"camera {cam.config.name} is already watched by another reid-app (process "
                    f"{holder}) recording into {folder}; stop that one first"
                ) from None
            (folder / ".watch.pid").write_text(str(os.getpid()))
            self._locks.append(lock)

    def _database_down(self, exc: BaseException) -> None:
        """The database cannot be written: keep recording and keep what was analysed, try again with backoff (1 s,
        doubled up to 30 s); the first failure is logged."""
        self._database_backoff_s = min(max(self._database_backoff_s * 2, 1.0), 30.0)
        self._database_retry_at = time.monotonic() + self._database_backoff_s
        reason = storage_error_text(exc) if isinstance(exc, SQLAlchemyError) else str(exc)  # both redacted
        if self._database_error is None:
            log.warning(
                "the database cannot be written (%s); recording goes on and what was analysed is kept and "
                "stored when it is back (next try in %.0f s)",
                reason,
                self._database_backoff_s,
            )
        self._database_error = f"database unavailable ({reason}); recording goes on, storing retried"

    def _database_back(self) -> None:
        if self._database_error is not None:
            log.warning("the database is back: what was kept while it was unavailable is stored")
        self._database_error, self._database_backoff_s = None, 0.0

    # --- camera threads -------------------------------------------------------------------------------------

    def _watch_camera(self, channel: CameraChannel) -> None:
        """A camera's thread: analyse its stream until stopped, opening it again after a failure (the recording
        disk being full stops it for good)."""
        cam = self._cameras[channel.index]
        options = dataclasses.replace(self.options.stream, rtsp_transport=cam.config.transport, give_up_after_s=None)

        def build():
            cam.source = StreamSource(cam.config.url, cam.config.fps, options=options, recorder=cam.recorder)
            pipeline = camera_pipeline(
                cam.config.name,
                cam.source,
                self.make_tracker,
                self.make_pose,
                self.options.ingest,
                self.encoder.num_parts,
            )
            cam.estimates_pose = pipeline.estimates_pose
            return pipeline

        while not channel.stopped():
            failed = channel.run(build, lambda frame, dets: self._on_frame(cam, frame, dets), flush_on_stop=True)
            if failed is not None:
                cam.status.last_error = failed.message + ("; restarting" if failed.unexpected else "")
            if cam.source is not None and cam.source.stopped_because:  # the recording disk is full
                cam.status.state, cam.status.last_error = CameraState.STOPPED, cam.source.stopped_because
                return
            channel.wait(RESTART_AFTER_S)

    def _on_frame(self, cam: _LiveCamera, frame: Frame, detections: list[Detection]) -> None:
        cam.frame_times.append(time.monotonic())
        cam.status.people = len(detections)
        cam.status.frames += 1
        if frame.recorded is not None:
            cam.frames_in[frame.recorded[0]] = cam.frames_in.get(frame.recorded[0], 0) + 1
        start = cam.source.facts.start_time if cam.source is not None else None
        boxes = np.array([d.box for d in detections], np.float32).reshape(-1, 4)
        cam.latest = LiveFrame(
            frame.image, boxes, np.array([d.track_id for d in detections], np.int64), (start or 0.0) + frame.time_s
        )

    # --- the consumer ---------------------------------------------------------------------------------------

    def _take_events(self, timeout: float) -> None:
        """Gather the cameras' observations (the rest of the engine's events need nothing here: a camera's thread
        words its own failures in its status line and restarts itself)."""
        for event in self._threads.events(timeout):
            cam = self._cameras[event.camera]
            if isinstance(event, Observed) and event.observations:
                if not cam.pending:
                    cam.pending_since = time.monotonic()
                cam.pending += event.observations

    def _flush_due(self, final: bool) -> None:
        waiting = [c for c in self._cameras if c.pending]
        if not waiting:
            return
        selected = sum(o.selected for c in waiting for o in c.pending)
        oldest = min(c.pending_since for c in waiting)
        if final or selected >= self.options.ingest.batch_size or time.monotonic() - oldest >= self.options.flush_s:
            self._flush(waiting)

    def _flush(self, cameras: list[_LiveCamera]) -> None:
        batches = [c.pending for c in cameras]
        embeddings, _ = encode_batches(self.encoder, batches)
        for cam, batch, vectors in zip(cameras, batches, embeddings):
            cam.pending = []
            by_segment: dict[str, tuple[list[Observation], list[np.ndarray]]] = {}
            k = 0
            for obs in batch:
                vector = None
                if obs.selected:
                    vector, k = vectors[k], k + 1
                if obs.recorded is None:
                    cam.unrecorded += 1
                    continue
                group = by_segment.setdefault(obs.recorded[0], ([], []))
                group[0].append(obs)
                if vector is not None:
                    group[1].append(vector)
            cam.unwritten += [
                (path, observations, np.stack(vecs) if vecs else None)
                for path, (observations, vecs) in by_segment.items()
            ]
        for cam in self._cameras:
            self._write_unwritten(cam)

    def _write_unwritten(self, cam: _LiveCamera) -> None:
        """Store the camera's encoded observations, oldest first; one group leaves the list only once its
        transaction committed, so a database failure loses nothing and stores nothing twice."""
        while cam.unwritten:
            path, observations, vectors = cam.unwritten[0]
            self._write(cam, path, observations, vectors)
            cam.unwritten.popleft()

    def _row(self, cam: _LiveCamera, path: str) -> Optional[_SegmentRow]:
        row = cam.rows.get(path)
        if row is not None or path in cam.finished:
            return row
        segment = next((s for s in reversed(cam.recorder.segments) if str(s.path) == path), None)
        if segment is None:
            return None
        facts = cam.source.facts if cam.source is not None else None
        fps = facts.fps if facts and facts.fps else cam.config.fps
        info = VideoInfo(
            camera=cam.config.name,
            path=str(segment.path),
            fingerprint=live_fingerprint(segment.path),
            fps=fps,
            frame_count=0,
            width=segment.width or (facts.width if facts else 0),
            height=segment.height or (facts.height if facts else 0),
            duration_s=0.0,
            start_time=segment.start_time,
            analysis_fps=cam.config.fps,
            recorded=True,
        )
        video_id = begin_video(self.db, info, self.model_id)
        row = cam.rows[path] = _SegmentRow(
            segment, VideoWriter(self.db, video_id, self.model_id, segment.start_time), fps
        )
        return row

    def _write(
        self, cam: _LiveCamera, path: str, observations: list[Observation], embeddings: Optional[np.ndarray]
    ) -> None:
        row = self._row(cam, path)
        if row is None or row.finished:
            cam.late += len(observations)
            return
        placed = [
            dataclasses.replace(o, time_s=o.recorded[1], frame_index=int(round(o.recorded[1] * row.fps)))
            for o in observations
        ]
        row.frames_analysed = cam.frames_in.get(path, 0)
        try:
            updates = row.writer.write(placed, embeddings, row.frames_analysed)
        except LeaseLostError as exc:
            log.warning("camera %s: %s", cam.config.name, exc)
            row.finished = True
            return
        committed = time.time()
        self.store_delays.extend(committed - (row.segment.start_time + o.time_s) for o in placed)
        cam.status.tracks = cam.tracks_done + sum(r.writer.tracks for r in cam.rows.values())
        cam.status.sightings += len(placed)
        if self.watchlist is not None and self.alerts is not None and updates:
            hits = self.watchlist.check(cam.config.name, updates)
            try:  # the sightings are stored: a failure here must not store them again
                cam.status.alerts += len(self.alerts.raise_alerts(hits))
            except (SQLAlchemyError, DatabaseError) as exc:
                log.warning(
                    "camera %s: %d alert(s) could not be stored (%s)", cam.config.name, len(hits), redact_text(exc)
                )
            raised = time.time()
            self.alert_delays.extend(raised - h.update.timestamp for h in hits)

    def _progress(self) -> None:
        """Give every segment being written its video row (so that it plays while it grows) and record its length
        so far, renewing the rows' leases."""
        for cam in self._cameras:
            current = cam.recorder.current
            if current is not None and str(current.path) not in cam.finished:
                self._row(cam, str(current.path))
            for path, row in list(cam.rows.items()):
                if row.finished:
                    continue
                try:
                    row.writer.update(
                        cam.frames_in.get(path, row.frames_analysed),
                        duration_s=row.segment.duration_s + 1.0 / max(row.fps, 1e-3),
                        frame_count=row.segment.packets,
                    )
                except LeaseLostError as exc:
                    log.warning("camera %s: %s", cam.config.name, exc)
                    row.finished = True

    def _finish_closed(self, final: bool) -> None:
        while True:
            try:
                index, segment = self._closed_segments.get_nowait()
            except queue.Empty:
                break
            self._cameras[index].closed.append(segment)
        grace = 2 * self.options.ingest.sampling.window_s + 3.0
        finished_any = False
        for index, cam in enumerate(self._cameras):
            due = [
                s
                for s in cam.closed
                if final or not self._threads.is_running(index) or time.time() >= s.start_time + s.duration_s + grace
            ]
            if not due:
                continue
            if cam.pending:
                self._flush([cam])
            self._write_unwritten(cam)
            for segment in due:
                self._finish_segment(cam, segment)
                cam.closed.remove(segment)  # only once finished: a database failure tries it again
                finished_any = True
        if finished_any:
            report = assign_new_tracks(self.db, self.model_id)
            if report.tracks:
                log.info(
                    "incremental matching: %d new tracks, %d joined identities, %d new identities",
                    report.tracks,
                    report.joined,
                    report.new_identities,
                )

    def _finish_segment(self, cam: _LiveCamera, segment: Segment) -> None:
        row = self._row(cam, str(segment.path))
        if row is None or row.finished:
            return
        period = 1.0 / max(row.fps, 1e-3)
        row.frames_analysed = cam.frames_in.get(str(segment.path), row.frames_analysed)
        absorbed = 0
        try:
            row.writer.finish(row.frames_analysed, duration_s=segment.duration_s + period, frame_count=segment.packets)
        except LeaseLostError as exc:
            log.warning("camera %s: %s", cam.config.name, exc)
        else:
            ingest = self.options.ingest
            # within the segment: the live sliding window
            cleanup = clean_up_tracks(
                self.db, row.writer.video_id, ingest.quality, ingest.skeleton, ingest.static, cam.estimates_pose
            )
            absorbed = cleanup.stitched + cleanup.no_skeleton
            cam.status.segments += 1
        row.finished = True
        cam.tracks_done += row.writer.tracks - absorbed
        cam.finished.add(str(segment.path))
        cam.frames_in.pop(str(segment.path), None)
        del cam.rows[str(segment.path)]

    def _retention(self) -> None:
        try:
            report = apply_retention(self.db, self.options.retention_s, self.recordings)
        except ReidAppError as exc:
            log.warning("retention failed: %s", exc)
            return
        self._retention_runs.append(report)
        if report.purge.videos:
            log.info(
                "retention: %d recordings older than %.0f s purged", len(report.purge.videos), self.options.retention_s
            )

    def _shutdown(self) -> None:
        """Wait for the camera threads (their last observations and closed segments), store everything, finish
        every segment, match the new tracks, and deliver the alerts still queued."""
        while self._threads.running:  # Ended is each camera thread's last event
            self._take_events(0.1)
        self._threads.close()
        for attempt in range(4):  # the database may be down: a few tries, then the next watch recovers the rows
            try:
                self._flush_due(final=True)
                self._finish_closed(final=True)
                for cam in self._cameras:  # a segment whose close was never reported (its writer failed)
                    for path in list(cam.rows):
                        self._finish_segment(cam, cam.rows[path].segment)
                break
            except (SQLAlchemyError, DatabaseError) as exc:
                if attempt == 3:
                    if self.alerts is not None:
                        self.alerts.close()
                    kept = sum(len(o) for c in self._cameras for _, o, _ in c.unwritten)
                    raise DatabaseError(
                        f"the database could not be written at stop ({redact_text(exc)}); "
                        f"{kept} sighting(s) analysed meanwhile were not stored; the recordings "
                        f"are kept and the next watch finishes their rows"
                    ) from None
                time.sleep(2.0**attempt)
        for cam in self._cameras:
            if cam.unrecorded or cam.late:
                log.warning(
                    "camera %s: %d sightings before its first recorded keyframe and %d arriving after "
                    "their segment was finished were not stored",
                    cam.config.name,
                    cam.unrecorded,
                    cam.late,
                )
        if self.alerts is not None:
            self.alerts.close()
