"""Tracks judged after their video is written: static ones (boxes that never moved), ones with no human skeleton, ones
without a descriptor; and deleting tracks."""

from __future__ import annotations

from typing import Optional, Sequence

from sqlalchemy import and_, delete, func, or_, select, update

from storage.database import Database
from storage.schema import (
    Embedding,
    Sighting,
    Track,
    Video,
)


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
