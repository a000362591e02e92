"""A video's life in the database: looked up by fingerprint, begun under a lease, reclaimed when its ingest was
abandoned, finished or deleted; cameras by name."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

from sqlalchemy import delete, func, select, update
from sqlalchemy.orm import Session

from storage.database import Database, lock_for_writing
from storage.leases import VideoBusyError, owner_alive, owner_parts, owner_token
from storage.recorded_files import note_recorded
from storage.schema import (
    FINISHED_STATUSES,
    Camera,
    Embedding,
    Sighting,
    Track,
    Video,
)
from storage.writer import VideoWriter, recount_tracks


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
            host, pid = owner_parts(owner)
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
