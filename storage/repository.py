"""Repository functions: everything the pipelines read from and write to a reid-app database.

Writes happen in batches, one transaction per batch, so an interrupted ingest leaves the database consistent: a
video whose ``status`` is still ``ingesting`` holds only whole batches and is re-ingested by the next run.
"""

from __future__ import annotations

import json
import os
import socket
import time
import uuid
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
import psutil
from sqlalchemy import and_, delete, func, insert, or_, select, update
from sqlalchemy.orm import Session

from common.errors import DatabaseError
from common.types import Observation
from storage.database import Database, lock_for_writing
from storage.recorded_files import note_recorded
from storage.schema import (
    DAMAGED_FRACTION,
    FINISHED_STATUSES,
    Camera,
    Embedding,
    Meta,
    ReidModel,
    Sighting,
    Track,
    Video,
)

#: A lease not renewed for this many seconds belongs to a dead or hung process (another host's) and is reclaimed.
LEASE_TIMEOUT_S = 60.0
#: How often an ingest renews the leases of the videos it is writing (seconds).
HEARTBEAT_S = 10.0


class VideoBusyError(DatabaseError):
    """The video is being ingested right now by another live process."""


class LeaseLostError(DatabaseError):
    """The video row this process was writing was taken away (deleted or reclaimed) meanwhile."""


def owner_token() -> str:
    """A new lease owner for one claim of a video by this process: ``host:pid:claim`` (the claim part tells two
    claims of one process apart, e.g. a cancelled ingest in the app and the next one)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"


def _owner_parts(owner: str) -> tuple[str, str]:
    host, _, rest = owner.partition(":")
    return host, rest.split(":")[0]


def owner_alive(owner: Optional[str], heartbeat_at: Optional[float], now: Optional[float] = None) -> bool:
    """Whether the process that leased an ``ingesting`` video still works on it.

    A process of this host is alive while its pid exists and its lease was renewed within
    :data:`LEASE_TIMEOUT_S`; one of another host while its lease was renewed within that time. Rows of older
    reid-app versions (no owner) count as abandoned.
    """
    if not owner or heartbeat_at is None:
        return False
    now = time.time() if now is None else now
    if now - heartbeat_at > LEASE_TIMEOUT_S:
        return False
    host, pid = _owner_parts(owner)
    if host != socket.gethostname():
        return True
    try:  # psutil: a probe that also works on Windows (os.kill(pid, 0) would end the process there)
        return psutil.pid_exists(int(pid))
    except (ValueError, OverflowError):
        return True


def vector_to_bytes(vector: np.ndarray) -> bytes:
    """Serialise a ``float32 [D]`` vector as little-endian bytes."""
    return np.ascontiguousarray(vector, dtype="<f4").tobytes()


def bytes_to_vector(blob: bytes) -> np.ndarray:
    """Inverse of :func:`vector_to_bytes`: ``float32 [D]``."""
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)


def usable_embedding(vector: np.ndarray) -> bool:
    """A ``float32 [D]`` embedding worth storing: 1-D, every value finite, L2 norm above 1e-6."""
    return vector.ndim == 1 and bool(np.all(np.isfinite(vector))) and float(np.linalg.norm(vector)) > 1e-6


def get_or_create_model(db: Database, name: str, checkpoint_hash: str, dims: int, source: str = "") -> int:
    """Id of the ``models`` row for (name, checkpoint_hash), created when new."""
    with db.sessions.begin() as session:
        lock_for_writing(session)  # processes on several machines may register the same model at once
        row = session.scalar(
            select(ReidModel).where(ReidModel.name == name, ReidModel.checkpoint_hash == checkpoint_hash)
        )
        if row is None:
            row = ReidModel(name=name, checkpoint_hash=checkpoint_hash, dims=dims, source=source)
            session.add(row)
            session.flush()
        elif source and row.source != source:
            row.source = source
        return row.id


def _threshold_key(model_id: int) -> str:
    return f"model.{model_id}.clustering_threshold"


def set_model_threshold(db: Database, model_id: int, threshold: float) -> None:
    """Record the identity-clustering threshold a model was calibrated with (cosine, from its checkpoint's
    metadata), in ``reid_meta`` under ``model.<id>.clustering_threshold``."""
    with db.sessions.begin() as session:
        session.merge(Meta(key=_threshold_key(model_id), value=repr(float(threshold))))


def model_threshold(db: Database, model_id: int) -> Optional[float]:
    """The threshold recorded by :func:`set_model_threshold`, or None."""
    with db.session() as session:
        value = session.scalar(select(Meta.value).where(Meta.key == _threshold_key(model_id)))
    try:
        return None if value is None else float(value)
    except ValueError:
        return None


def _layout_key(model_id: int) -> str:
    return f"model.{model_id}.descriptor_layout"


def set_model_layout(db: Database, model_id: int, layout: Sequence[dict]) -> None:
    """Record which descriptor columns each branch of a model fills (``[{"name", "start", "stop"}]``, global first,
    then the body parts; from the encoder), in ``reid_meta`` under ``model.<id>.descriptor_layout``, so searches can
    explain a match part by part without loading the model."""
    value = json.dumps([{"name": str(p["name"]), "start": int(p["start"]), "stop": int(p["stop"])} for p in layout])
    with db.sessions.begin() as session:
        session.merge(Meta(key=_layout_key(model_id), value=value))


def model_layout(db: Database, model_id: int) -> Optional[list[dict]]:
    """The layout recorded by :func:`set_model_layout`, or None (none recorded, or unreadable)."""
    with db.session() as session:
        value = session.scalar(select(Meta.value).where(Meta.key == _layout_key(model_id)))
    if value is None:
        return None
    try:
        return [{"name": str(p["name"]), "start": int(p["start"]), "stop": int(p["stop"])} for p in json.loads(value)]
    except (ValueError, TypeError, KeyError):
        return None


def sighting_keypoints(db: Database, sighting_ids: Sequence[int]) -> dict[int, tuple[np.ndarray, Optional[np.ndarray]]]:
    """Sighting id -> ``(box float32 [4], keypoints float32 [17, 3] or None)``, both in frame pixels (missing ids
    are absent)."""
    if not len(sighting_ids):
        return {}
    with db.session() as session:
        rows = session.execute(
            select(Sighting.id, Sighting.x1, Sighting.y1, Sighting.x2, Sighting.y2, Sighting.keypoints).where(
                Sighting.id.in_([int(s) for s in sighting_ids])
            )
        ).all()
    out = {}
    for sid, x1, y1, x2, y2, kp in rows:
        values = None if kp is None else np.frombuffer(kp, dtype="<f4")
        out[sid] = (
            np.array([x1, y1, x2, y2], np.float32),
            None if values is None or values.size != 51 else values.reshape(17, 3).copy(),
        )
    return out


def set_ingest_models(db: Database, detector: str, pose: str) -> None:
    """Record the detector and pose backend the database's footage is ingested with (``reid_meta``
    ``ingest.detector`` / ``ingest.pose``), so that later ingests (the app's Add videos) default to them."""
    with db.sessions.begin() as session:
        session.merge(Meta(key="ingest.detector", value=detector))
        session.merge(Meta(key="ingest.pose", value=pose))


def ingest_models(db: Database) -> dict[str, str]:
    """``{"detector": ..., "pose": ...}`` as recorded by :func:`set_ingest_models` (empty when never recorded)."""
    with db.session() as session:
        rows = session.execute(select(Meta.key, Meta.value).where(Meta.key.in_(["ingest.detector", "ingest.pose"])))
        return {key.split(".", 1)[1]: value for key, value in rows}


def find_video(db: Database, fingerprint: str) -> Optional[Video]:
    """The video with this content fingerprint, a finished one (``complete``/``damaged``) first, or None."""
    with db.session() as session:
        return session.scalar(
            select(Video)
            .where(Video.fingerprint == fingerprint)
            .order_by(Video.status.in_(FINISHED_STATUSES).desc(), Video.id)
        )


def _abandoned_or_busy(session: Session, fingerprint: str) -> list[int]:
    """Ids of the fingerprint's ``ingesting`` rows whose owner is dead; raises when a live process owns one."""
    now = time.time()
    abandoned = []
    for video_id, owner, heartbeat_at in session.execute(
        select(Video.id, Video.owner, Video.heartbeat_at).where(
            Video.fingerprint == fingerprint, Video.status.not_in(FINISHED_STATUSES)
        )
    ):
        if owner_alive(owner, heartbeat_at, now):
            host, pid = _owner_parts(owner)
            raise VideoBusyError(
                f"this video is being ingested right now by another reid-app process (pid {pid} "
                f"on {host}); wait for it to finish, or stop it and run the command again"
            )
        abandoned.append(video_id)
    return abandoned


def reclaim_abandoned(db: Database, fingerprint: str) -> int:
    """Delete the fingerprint's ``ingesting`` rows left by dead processes (with their tracks and sightings).

    Returns:
        The number of rows removed.

    Raises:
        VideoBusyError: a live process is ingesting this video.
    """
    with db.sessions.begin() as session:
        lock_for_writing(session)
        abandoned = _abandoned_or_busy(session, fingerprint)
        if abandoned:
            session.execute(delete(Video).where(Video.id.in_(abandoned)))
        return len(abandoned)


def renew_leases(writers: Sequence["VideoWriter"]) -> None:
    """Renew the leases of the videos these writers are writing (heartbeat), one transaction per database."""
    for writer in writers:
        with writer.db.sessions.begin() as session:
            session.execute(
                update(Video)
                .where(Video.id == writer.video_id, Video.owner == writer.owner)
                .values(heartbeat_at=time.time())
            )


def delete_video(db: Database, video_id: int) -> None:
    """Delete a video with its tracks, sightings and embeddings in one transaction."""
    with db.sessions.begin() as session:
        session.execute(delete(Video).where(Video.id == video_id))


@dataclass
class VideoInfo:
    """What a new ``videos`` row records (see :class:`storage.schema.Video` for units)."""

    camera: str
    path: str
    fingerprint: str
    fps: float
    frame_count: int
    width: int
    height: int
    duration_s: float
    start_time: float
    analysis_fps: float
    analysed_until_s: Optional[float] = None
    #: True for a segment reid-app's recorder wrote (listed in ``recorded_files``: retention may delete it).
    recorded: bool = False


def begin_video(db: Database, info: VideoInfo, model_id: int, owner: Optional[str] = None) -> int:
    """Create the ``videos`` row (status ``ingesting``, leased by this process) and its camera if new; return the
    video id.

    Rows of the same fingerprint left ``ingesting`` by dead processes are deleted in the same transaction; a
    finished row stays until :meth:`VideoWriter.finish` replaces it, so a failed forced re-ingest loses nothing.

    Args:
        owner: the lease owner (:func:`owner_token`); hand the same to the :class:`VideoWriter` of this row.
            None: a new one (a :class:`VideoWriter` made without an owner reads it back from the row).

    Raises:
        VideoBusyError: another live process is ingesting the same video; nothing is changed.
    """
    with db.sessions.begin() as session:
        lock_for_writing(session)
        abandoned = _abandoned_or_busy(session, info.fingerprint)
        if abandoned:
            session.execute(delete(Video).where(Video.id.in_(abandoned)))
        camera = session.scalar(select(Camera).where(Camera.name == info.camera))
        if camera is None:
            camera = Camera(name=info.camera)
            session.add(camera)
            session.flush()
        video = Video(
            camera_id=camera.id,
            path=info.path,
            fingerprint=info.fingerprint,
            fps=info.fps,
            frame_count=info.frame_count,
            width=info.width,
            height=info.height,
            duration_s=info.duration_s,
            start_time=info.start_time,
            analysis_fps=info.analysis_fps,
            status="ingesting",
            model_id=model_id,
            owner=owner or owner_token(),
            heartbeat_at=time.time(),
            analysed_until_s=info.analysed_until_s,
        )
        session.add(video)
        if info.recorded:
            note_recorded(session, info.path, info.camera)
        session.flush()
        return video.id


@dataclass
class TrackUpdate:
    """A track whose descriptor a write changed: its ids, the new descriptor (``float32 [D]``, L2-normalised), its
    embedding count, and the best-quality sighting of the write (id, wall-clock seconds since the epoch)."""

    track_id: int
    local_track_id: int
    descriptor: np.ndarray
    num_embeddings: int
    sighting_id: int
    timestamp: float


class VideoWriter:
    """Writes one video's observations in batches, keeping track rows and descriptors up to date.

    A track's descriptor is the quality-weighted mean of its sighting embeddings, L2-normalised; the running sums
    live here so each batch updates only the tracks it touches.
    """

    def __init__(self, db: Database, video_id: int, model_id: int, start_time: float, owner: Optional[str] = None):
        self.db = db
        self.video_id = video_id
        self.model_id = model_id
        self.start_time = start_time
        with db.session() as session:
            self.camera_id, stored_owner = session.execute(
                select(Video.camera_id, Video.owner).where(Video.id == video_id)
            ).first() or (None, None)
        #: The lease this writer holds (given, else the row's own as :func:`begin_video` made it).
        self.owner = owner or stored_owner
        if self.camera_id is None:
            raise LeaseLostError(f"video {video_id} was removed from {db.location} by another process")
        self._track_ids: dict[int, int] = {}
        self._sums: dict[int, np.ndarray] = {}
        self.sightings = 0
        self.embeddings = 0
        #: Embeddings not stored because they were not finite or (near) zero.
        self.rejected_embeddings = 0

    @property
    def tracks(self) -> int:
        """Number of tracks written so far."""
        return len(self._track_ids)

    def write(
        self, observations: Sequence[Observation], embeddings: Optional[np.ndarray], frames_analysed: int
    ) -> list["TrackUpdate"]:
        """Write one batch in one transaction.

        Args:
            observations: the batch, any order.
            embeddings: ``float32 [S, D]`` for the ``S`` selected observations, in the order they appear in
                ``observations``; None when none is selected.
            frames_analysed: the video's analysed-frame count after this batch (progress record).

        Returns:
            One :class:`TrackUpdate` per track whose descriptor this batch changed (live watchlist matching).
        """
        selected_rows = [i for i, o in enumerate(observations) if o.selected]
        emb_of = {i: embeddings[k] for k, i in enumerate(selected_rows)} if selected_rows else {}
        with self.db.sessions.begin() as session:
            self._renew(session, frames_analysed)
            touched: set[int] = set()
            rows: list[dict] = []
            for obs in observations:
                track = self._track(session, obs)
                touched.add(track.id)
                det = obs.detection
                x1, y1, x2, y2 = (float(v) for v in det.box)
                rows.append(
                    {
                        "track_id": track.id,
                        "video_id": self.video_id,
                        "frame_index": obs.frame_index,
                        "time_s": obs.time_s,
                        "timestamp": self.start_time + obs.time_s,
                        "x1": x1,
                        "y1": y1,
                        "x2": x2,
                        "y2": y2,
                        "score": float(det.score),
                        "quality": float(obs.quality),
                        "keypoints": None if det.keypoints is None else vector_to_bytes(det.keypoints),
                        "thumbnail": obs.thumbnail if obs.selected else None,
                    }
                )
                track.first_time_s = min(track.first_time_s, obs.time_s)
                track.last_time_s = max(track.last_time_s, obs.time_s)
                track.first_frame = min(track.first_frame, obs.frame_index)
                track.last_frame = max(track.last_frame, obs.frame_index)
                track.num_sightings += 1
            session.flush()  # the tracks' new values, before the Core statements below
            # one multi-row INSERT (Core, not an ORM object per row), ids returned in the rows' order
            ids = (
                session.execute(insert(Sighting).returning(Sighting.id, sort_by_parameter_order=True), rows)
                .scalars()
                .all()
                if rows
                else []
            )
            embedding_rows = []
            for i, sighting_id in enumerate(ids):
                if i not in emb_of:
                    continue
                vec = np.asarray(emb_of[i], dtype=np.float32)
                if not usable_embedding(vec):
                    self.rejected_embeddings += 1
                    continue
                embedding_rows.append(
                    {
                        "sighting_id": sighting_id,
                        "model_id": self.model_id,
                        "dims": int(vec.shape[0]),
                        "vector": vector_to_bytes(vec),
                    }
                )
                track = session.get(Track, rows[i]["track_id"])
                weight = max(float(observations[i].quality), 1e-3)
                self._sums[track.id] = self._sums.get(track.id, 0.0) + weight * vec
                track.num_embeddings += 1
                track.quality_sum += weight
                self.embeddings += 1
            if embedding_rows:
                session.execute(insert(Embedding), embedding_rows)
            best: dict[int, tuple[float, int]] = {}  # track id -> (quality, row) of its best newly encoded sighting
            for i, row in enumerate(rows):
                if i in emb_of and observations[i].quality >= best.get(row["track_id"], (-1.0, 0))[0]:
                    best[row["track_id"]] = (float(observations[i].quality), i)
            updates = []
            for track_id in touched:
                if track_id in self._sums:
                    total = self._sums[track_id]
                    norm = float(np.linalg.norm(total))
                    track = session.get(Track, track_id)
                    descriptor = total / norm if norm > 0 else total
                    track.descriptor = vector_to_bytes(descriptor)
                    track.descriptor_model_id = self.model_id
                    if track_id in best:
                        i = best[track_id][1]
                        updates.append(
                            TrackUpdate(
                                track_id,
                                int(track.local_track_id),
                                descriptor.astype(np.float32),
                                track.num_embeddings,
                                ids[i],
                                rows[i]["timestamp"],
                            )
                        )
            self.sightings += len(observations)
        return updates

    def update(self, frames_analysed: int, **facts) -> None:
        """Renew the lease and record what is known so far (a live recording's growing ``duration_s`` and
        ``frame_count``), in one transaction.

        Raises:
            LeaseLostError: the row was taken over or deleted.
        """
        with self.db.sessions.begin() as session:
            self._renew(session, frames_analysed, **facts)

    def release(self) -> None:
        """Give up the lease of an unfinished video (the ingest stopped): the next run, in this process or
        another, reclaims and redoes it at once."""
        with self.db.sessions.begin() as session:
            session.execute(
                update(Video)
                .where(Video.id == self.video_id, Video.owner == self.owner, Video.status.not_in(FINISHED_STATUSES))
                .values(owner=None, heartbeat_at=None)
            )

    def _renew(self, session: Session, frames_analysed: int, **values) -> None:
        """First statement of every write: renew the lease (taking SQLite's write lock) and make sure the row is
        still this process's."""
        values = {"frames_analysed": frames_analysed, "heartbeat_at": time.time(), **values}
        changed = session.execute(
            update(Video).where(Video.id == self.video_id, Video.owner == self.owner).values(**values)
        )
        if changed.rowcount != 1:
            raise LeaseLostError(
                f"video {self.video_id} in {self.db.location} was taken over or deleted by "
                f"another process; this ingest of it stopped"
            )

    def _track(self, session: Session, obs: Observation) -> Track:
        local = int(obs.detection.track_id)
        if local in self._track_ids:
            return session.get(Track, self._track_ids[local])
        track = Track(
            video_id=self.video_id,
            camera_id=self.camera_id,
            local_track_id=local,
            first_time_s=obs.time_s,
            last_time_s=obs.time_s,
            first_frame=obs.frame_index,
            last_frame=obs.frame_index,
            num_sightings=0,
            num_embeddings=0,
            quality_sum=0.0,
        )
        session.add(track)
        session.flush()
        self._track_ids[local] = track.id
        return track

    def finish(self, frames_analysed: int, frames_lost: int = 0, frames_total: int = 0, **facts) -> str:
        """Mark the video finished and, in the same transaction, delete any older copy of it.

        Args:
            frames_analysed: analysed frames in all.
            frames_lost: frames that could not be decoded (damaged packets).
            frames_total: frames met while decoding, lost ones included (0: unknown).
            facts: ``videos`` columns known only now (a live recording's ``duration_s`` and ``frame_count``).

        Returns:
            The status stored: ``damaged`` when more than 5% of ``frames_total`` were lost, else ``complete``.
        """
        status = "damaged" if frames_total and frames_lost > DAMAGED_FRACTION * frames_total else "complete"
        with self.db.sessions.begin() as session:
            self._renew(
                session,
                frames_analysed,
                status=status,
                frames_lost=int(frames_lost),
                owner=None,
                heartbeat_at=None,
                **facts,
            )
            fingerprint = session.scalar(select(Video.fingerprint).where(Video.id == self.video_id))
            session.execute(delete(Video).where(Video.fingerprint == fingerprint, Video.id != self.video_id))
        return status


def unencoded_tracks(db: Database, video_id: Optional[int] = None, short_s: float = 1.0) -> tuple[int, int]:
    """Tracks of a video (None: of the whole database; static ones aside) that got no descriptor, so they cannot
    be searched or clustered: ``(lasting under short_s seconds, lasting longer)``."""
    query = select(Track.last_time_s - Track.first_time_s).where(Track.descriptor.is_(None), Track.static.is_(False))
    if video_id is not None:
        query = query.where(Track.video_id == video_id)
    with db.session() as session:
        rows = session.execute(query).all()
    short = sum(1 for (d,) in rows if d < short_s)
    return short, len(rows) - short


def mark_static_tracks(
    db: Database,
    video_id: int,
    min_duration_s: float,
    max_motion: float,
    max_resize: float,
    low_score: float = 0.0,
    low_score_min_duration_s: float = 0.0,
) -> list[int]:
    """Mark the video's tracks whose box did not move (``pipelines.ingest.quality.StaticTrackConfig`` gives the meaning
    of the thresholds: seconds, box heights, fraction of the mean size, detection score); returns their ids."""
    if min_duration_s <= 0:
        return []
    cx, cy = (Sighting.x1 + Sighting.x2) / 2, (Sighting.y1 + Sighting.y2) / 2
    h, w = Sighting.y2 - Sighting.y1, Sighting.x2 - Sighting.x1
    spread = [func.max(v) - func.min(v) for v in (Sighting.time_s, cx, cy, h, w)]
    shortest = min(min_duration_s, low_score_min_duration_s or min_duration_s)
    with db.sessions.begin() as session:
        rows = session.execute(
            select(Sighting.track_id, *spread, func.avg(h), func.avg(w), func.avg(Sighting.score))
            .where(Sighting.video_id == video_id)
            .group_by(Sighting.track_id)
        )
        ids = [
            track
            for track, duration, dx, dy, dh, dw, mean_h, mean_w, score in rows
            if duration >= shortest
            and max(dx, dy) <= max_motion * mean_h
            and dh <= max_resize * mean_h
            and dw <= max_resize * mean_w
            and (duration >= min_duration_s or score < low_score)
        ]
        if ids:
            session.execute(update(Track).where(Track.id.in_(ids)).values(static=True))
    return ids


def skeletonless_tracks(
    db: Database, video_id: int, min_height: float, border_px: float, min_attempts: int
) -> list[int]:
    """Ids of the video's tracks that are no person (a shadow, a reflection, a poster): at least ``min_attempts``
    of their sightings were due a pose estimate (box at least ``min_height`` pixels tall and more than
    ``border_px`` pixels inside the frame: ``pipelines.ingest.quality.wants_pose`` and ``box_can_pass``) and not one
    has a skeleton (keypoints). ``min_attempts`` 0 finds none (a run without pose estimation)."""
    if min_attempts <= 0:
        return []
    with db.session() as session:
        size = session.execute(select(Video.width, Video.height).where(Video.id == video_id)).first()
        if size is None:
            return []
        width, height = size
        due = and_(
            Sighting.y2 - Sighting.y1 >= min_height,
            Sighting.x1 > border_px,
            Sighting.y1 > border_px,
            Sighting.x2 < width - border_px,
            Sighting.y2 < height - border_px,
        )
        rows = session.execute(
            select(Sighting.track_id, func.count(Sighting.id), func.count(Sighting.keypoints))
            .where(Sighting.video_id == video_id, or_(due, Sighting.keypoints.is_not(None)))
            .group_by(Sighting.track_id)
        )
        return [track for track, attempts, posed in rows if attempts >= min_attempts and posed == 0]


def delete_tracks(db: Database, track_ids: Sequence[int]) -> tuple[int, int]:
    """Delete tracks with their sightings and embeddings (identity memberships and verdicts go with them; an alert
    keeps its row without the track); returns ``(sightings, embeddings)`` deleted."""
    if not track_ids:
        return 0, 0
    ids = [int(t) for t in track_ids]
    with db.sessions.begin() as session:
        sightings = select(Sighting.id).where(Sighting.track_id.in_(ids))
        embeddings = session.execute(delete(Embedding).where(Embedding.sighting_id.in_(sightings))).rowcount
        gone = session.execute(delete(Sighting).where(Sighting.track_id.in_(ids))).rowcount
        session.execute(delete(Track).where(Track.id.in_(ids)))
    return gone, embeddings


def static_track_ids(db: Database) -> set[int]:
    """Ids of every track marked static."""
    with db.session() as session:
        return set(session.scalars(select(Track.id).where(Track.static.is_(True))))


@dataclass
class TrackInfo:
    """A track with its camera name and time range (seconds since the epoch), for result tables."""

    id: int
    camera_id: int
    camera: str
    local_track_id: int
    first_timestamp: float
    last_timestamp: float
    num_sightings: int
    descriptor_model_id: Optional[int]
    descriptor: Optional[np.ndarray]


def existing_tracks(db: Database, track_ids) -> set[int]:
    """Those of ``track_ids`` that still exist."""
    ids = sorted({int(t) for t in track_ids})
    if not ids:
        return set()
    with db.session() as session:
        return set(session.scalars(select(Track.id).where(Track.id.in_(ids))))


def get_tracks(db: Database, track_ids: Sequence[int], session: Optional[Session] = None) -> dict[int, TrackInfo]:
    """Track id -> :class:`TrackInfo` for the given ids (missing ids are absent from the result); read in
    ``session`` when given (see :meth:`Database.snapshot`)."""
    if not len(track_ids):
        return {}
    if session is None:
        with db.session() as own:
            return get_tracks(db, track_ids, own)
    rows = session.execute(
        select(Track, Camera.name, Video.start_time)
        .join(Video, Track.video_id == Video.id)
        .join(Camera, Track.camera_id == Camera.id)
        .where(Track.id.in_([int(t) for t in track_ids]))
    ).all()
    return {
        t.id: TrackInfo(
            t.id,
            t.camera_id,
            cam,
            t.local_track_id,
            start + t.first_time_s,
            start + t.last_time_s,
            t.num_sightings,
            t.descriptor_model_id,
            None if t.descriptor is None else bytes_to_vector(t.descriptor),
        )
        for t, cam, start in rows
    }


@dataclass
class SightingEmbedding:
    """A sighting's embedding with where it comes from."""

    sighting_id: int
    track_id: int
    camera_id: int
    model_id: int
    vector: np.ndarray


def get_sighting_embedding(db: Database, sighting_id: int) -> Optional[SightingEmbedding]:
    """The first embedding of a sighting, or None when the sighting has none (it was not sampled for encoding).

    Raises:
        LookupError: no sighting has this id.
    """
    with db.session() as session:
        sighting = session.get(Sighting, sighting_id)
        if sighting is None:
            raise LookupError(sighting_id)
        row = session.execute(
            select(Embedding, Track.camera_id)
            .join(Sighting, Embedding.sighting_id == Sighting.id)
            .join(Track, Sighting.track_id == Track.id)
            .where(Embedding.sighting_id == sighting_id)
        ).first()
    if row is None:
        return None
    emb, camera_id = row
    return SightingEmbedding(sighting_id, sighting.track_id, camera_id, emb.model_id, bytes_to_vector(emb.vector))


def list_models(db: Database) -> list[ReidModel]:
    """Every re-id model that has embeddings in this database, most embeddings first."""
    with db.session() as session:
        counts = session.execute(select(Embedding.model_id, func.count()).group_by(Embedding.model_id)).all()
        order = {mid: n for mid, n in counts}
        models = [m for m in session.scalars(select(ReidModel)) if m.id in order]
    return sorted(models, key=lambda m: -order[m.id])


def count_rows(db: Database) -> dict[str, int]:
    """Row counts of the main tables (for summaries and tests)."""
    with db.session() as session:
        return {
            name: session.scalar(select(func.count()).select_from(table))
            for name, table in (
                ("cameras", Camera),
                ("videos", Video),
                ("tracks", Track),
                ("sightings", Sighting),
                ("embeddings", Embedding),
            )
        }


@dataclass
class SightingInfo:
    """A sighting with where and when it was seen, for results, players and evidence.

    Attributes:
        id, track_id, video_id, camera_id: database ids.
        camera: camera name. video_path: the ingested file. fps: the video's frame rate (frames/s).
        frame_index: frame in the video. time_s: seconds from the video start. timestamp: seconds since the epoch.
        box: ``float32 [4]`` ``(x1, y1, x2, y2)`` in frame pixels.
        thumbnail: JPEG bytes, or None when the sighting was not encoded.
    """

    id: int
    track_id: int
    video_id: int
    camera_id: int
    camera: str
    video_path: str
    fps: float
    frame_index: int
    time_s: float
    timestamp: float
    box: np.ndarray
    thumbnail: Optional[bytes]


def get_sightings(db: Database, sighting_ids: Sequence[int]) -> dict[int, SightingInfo]:
    """Sighting id -> :class:`SightingInfo` (missing ids are absent)."""
    if not len(sighting_ids):
        return {}
    with db.session() as session:
        rows = session.execute(
            select(Sighting, Video.camera_id, Camera.name, Video.path, Video.fps)
            .join(Video, Sighting.video_id == Video.id)
            .join(Camera, Video.camera_id == Camera.id)
            .where(Sighting.id.in_([int(s) for s in sighting_ids]))
        ).all()
    return {
        s.id: SightingInfo(
            s.id,
            s.track_id,
            s.video_id,
            cam_id,
            cam,
            path,
            fps,
            s.frame_index,
            s.time_s,
            s.timestamp,
            np.array([s.x1, s.y1, s.x2, s.y2], np.float32),
            s.thumbnail,
        )
        for s, cam_id, cam, path, fps in rows
    }


def get_model(db: Database, model_id: int) -> Optional[ReidModel]:
    """The ``models`` row, or None."""
    with db.session() as session:
        return session.get(ReidModel, model_id)


def camera_ids_by_name(db: Database) -> dict[str, int]:
    """Camera name -> id."""
    with db.session() as session:
        return {name: cid for cid, name in session.execute(select(Camera.id, Camera.name))}


def ensure_cameras(db: Database, names: Sequence[str]) -> dict[str, int]:
    """Camera name -> id for ``names``, creating the cameras that do not exist yet (one transaction)."""
    with db.sessions.begin() as session:
        lock_for_writing(session)
        ids = {
            name: cid
            for cid, name in session.execute(select(Camera.id, Camera.name).where(Camera.name.in_(list(names))))
        }
        for name in names:
            if name not in ids:
                camera = Camera(name=name)
                session.add(camera)
                session.flush()
                ids[name] = camera.id
        return ids


def abandoned_videos_under(db: Database, folder: str) -> list[tuple[int, str]]:
    """``(video id, path)`` of the ``ingesting`` videos under ``folder`` (a path prefix) whose owner is dead (a
    killed live watch)."""
    prefix = folder.rstrip("/") + "/"
    with db.session() as session:
        rows = session.execute(
            select(Video.id, Video.path, Video.owner, Video.heartbeat_at).where(
                Video.status.not_in(FINISHED_STATUSES), Video.path.startswith(prefix)
            )
        ).all()
    now = time.time()
    return [(vid, path) for vid, path, owner, beat in rows if not owner_alive(owner, beat, now)]


def finish_abandoned(db: Database, video_id: int, duration_s: float, frame_count: int) -> bool:
    """Mark an abandoned ``ingesting`` video ``complete`` with what it holds (its file's ``duration_s`` seconds and
    ``frame_count`` frames); False when it is gone or was taken over meanwhile."""
    with db.sessions.begin() as session:
        lock_for_writing(session)
        row = session.get(Video, video_id)
        if row is None or row.status in FINISHED_STATUSES or owner_alive(row.owner, row.heartbeat_at):
            return False
        row.status, row.owner, row.heartbeat_at = "complete", None, None
        row.duration_s, row.frame_count = float(duration_s), int(frame_count)
        _drop_past(session, video_id, float(duration_s))
        return True


def _drop_past(session: Session, video_id: int, duration_s: float) -> None:
    """Delete the sightings of a video past its file's end (stored before a kill cut the file short: their frames
    cannot be shown), then the tracks left without one; the others' counts and time ranges follow."""
    past = select(Sighting.id).where(Sighting.video_id == video_id, Sighting.time_s >= duration_s)
    if session.scalar(select(func.count()).select_from(past.subquery())) == 0:
        return
    session.execute(delete(Embedding).where(Embedding.sighting_id.in_(past)))
    session.execute(delete(Sighting).where(Sighting.id.in_(past.scalar_subquery())))
    tracks = select(Track.id).where(Track.video_id == video_id)
    alive = select(Sighting.track_id).where(Sighting.video_id == video_id)
    session.execute(delete(Track).where(Track.id.in_(tracks), Track.id.not_in(alive)))
    recount_tracks(session, Track.video_id == video_id)


def recount_tracks(session: Session, which) -> None:
    """Set the time and frame range and the sighting and embedding counts of the tracks ``which`` selects (a
    condition on ``Track``) from the sightings they hold now (after sightings were moved or deleted)."""
    of_track = lambda column: select(column).where(Sighting.track_id == Track.id).scalar_subquery()  # noqa: E731
    session.execute(
        update(Track)
        .where(which)
        .values(
            first_time_s=of_track(func.min(Sighting.time_s)),
            last_time_s=of_track(func.max(Sighting.time_s)),
            first_frame=of_track(func.min(Sighting.frame_index)),
            last_frame=of_track(func.max(Sighting.frame_index)),
            num_sightings=of_track(func.count(Sighting.id)),
            num_embeddings=select(func.count(Embedding.id))
            .join(Sighting, Sighting.id == Embedding.sighting_id)
            .where(Sighting.track_id == Track.id)
            .scalar_subquery(),
        )
    )
