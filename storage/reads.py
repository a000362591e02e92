"""Read-only views of stored tracks and sightings for search, feedback and the app (plain dataclasses, no ORM objects
leave the session)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from storage.database import Database
from storage.schema import (
    Camera,
    Embedding,
    Sighting,
    Track,
    Video,
)
from storage.vectors import bytes_to_keypoints, bytes_to_vector


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
        out[sid] = (np.array([x1, y1, x2, y2], np.float32), bytes_to_keypoints(kp))
    return out


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
