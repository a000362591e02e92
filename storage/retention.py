"""Retention: removing the videos (with their tracks, sightings, embeddings and identity memberships) whose footage
is older than a cut-off, in one transaction with its audit entry."""

from __future__ import annotations

import json
from dataclasses import dataclass, field

from sqlalchemy import delete, exists, func, select

from storage.database import Database, lock_for_writing
from storage.schema import AuditEntry, Embedding, Identity, IdentityTrack, Sighting, Track, Video


@dataclass
class PurgeResult:
    """What one purge removed: ``(video id, file path)`` of each video, and row counts."""

    videos: list[tuple[int, str]] = field(default_factory=list)
    tracks: int = 0
    sightings: int = 0
    embeddings: int = 0
    identities: int = 0


def purge_videos_before(db: Database, cutoff: float, dry_run: bool = False) -> PurgeResult:
    """Delete every finished video whose footage ended before ``cutoff`` (wall-clock seconds since the epoch:
    ``start_time + duration_s < cutoff``), with everything recorded of it, and the identities left without a
    member, in one transaction that also appends a ``retention`` audit entry. Videos without a known start time
    (``start_time`` 0: a file with no creation time and no ``--start``) have no age and are never removed; nor are
    videos being ingested.

    Args:
        dry_run: count what would go, change nothing (no audit entry either).

    Returns:
        The removed (or, with ``dry_run``, removable) videos and row counts.
    """
    result = PurgeResult()
    with db.sessions.begin() as session:
        lock_for_writing(session)
        old = select(Video.id).where(
            Video.start_time > 0, Video.status != "ingesting", Video.start_time + Video.duration_s < cutoff
        )
        result.videos = [
            (vid, path)
            for vid, path in session.execute(select(Video.id, Video.path).where(Video.id.in_(old)).order_by(Video.id))
        ]
        if not result.videos:
            return result
        ids = [vid for vid, _ in result.videos]
        tracks = select(Track.id).where(Track.video_id.in_(ids))
        result.tracks = session.scalar(select(func.count()).select_from(tracks.subquery()))
        result.sightings = session.scalar(select(func.count(Sighting.id)).where(Sighting.video_id.in_(ids)))
        result.embeddings = session.scalar(
            select(func.count(Embedding.id))
            .join(Sighting, Sighting.id == Embedding.sighting_id)
            .where(Sighting.video_id.in_(ids))
        )
        emptied = select(Identity.id).where(
            exists().where(IdentityTrack.identity_id == Identity.id, IdentityTrack.track_id.in_(tracks)),
            ~exists().where(IdentityTrack.identity_id == Identity.id, IdentityTrack.track_id.not_in(tracks)),
        )
        emptied_ids = list(session.scalars(emptied))
        result.identities = len(emptied_ids)
        if dry_run:
            session.rollback()
            return result
        session.execute(delete(Video).where(Video.id.in_(ids)))  # tracks, sightings, embeddings: ON DELETE CASCADE
        if emptied_ids:
            session.execute(delete(Identity).where(Identity.id.in_(emptied_ids)))
        session.add(
            AuditEntry(
                action="retention",
                details=json.dumps(
                    {
                        "cutoff": cutoff,
                        "videos": ids,
                        "tracks": result.tracks,
                        "sightings": result.sightings,
                        "embeddings": result.embeddings,
                        "identities": result.identities,
                    },
                    sort_keys=True,
                ),
            )
        )
    return result
