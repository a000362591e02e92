"""Joining tracks of one video into one (tracklet stitching, ``pipelines.ingest.stitching``): the rows it reads and the
one transaction that merges them."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sqlalchemy import delete, select, update

from storage.database import Database, lock_for_writing
from storage.schema import Alert, Embedding, Sighting, Track
from storage.vectors import bytes_to_vector, vector_to_bytes
from storage.writer import recount_tracks


def track_boxes(db: Database, video_id: int) -> dict[int, dict]:
    """Per track of the video (static ones aside): ``{"times": float [N] s, "boxes": float [N, 4] xyxy,
    "descriptor": float32 [D] or None}``, sightings in time order."""
    with db.session() as session:
        tracks = {
            tid: {"descriptor": None if blob is None else bytes_to_vector(blob), "times": [], "boxes": []}
            for tid, blob in session.execute(
                select(Track.id, Track.descriptor).where(Track.video_id == video_id, Track.static.is_(False))
            )
        }
        for tid, t, x1, y1, x2, y2 in session.execute(
            select(Sighting.track_id, Sighting.time_s, Sighting.x1, Sighting.y1, Sighting.x2, Sighting.y2)
            .where(Sighting.video_id == video_id)
            .order_by(Sighting.track_id, Sighting.time_s)
        ):
            if tid in tracks:
                tracks[tid]["times"].append(t)
                tracks[tid]["boxes"].append((x1, y1, x2, y2))
    return {
        tid: {**info, "times": np.array(info["times"], float), "boxes": np.array(info["boxes"], float)}
        for tid, info in tracks.items()
        if info["times"]
    }


def merge_tracks(db: Database, chains: Sequence[Sequence[int]]) -> int:
    """Join each chain of track ids into its first track, in one transaction: sightings move to it, its time and
    frame range, counts and quality sum cover them all, its descriptor becomes the quality-weighted mean of all
    their embeddings (``storage.writer.VideoWriter``'s rule), alerts raised for the others point to it, and the
    others are deleted. Returns the tracks absorbed."""
    absorbed = 0
    with db.sessions.begin() as session:
        lock_for_writing(session)
        for chain in chains:
            keep, rest = int(chain[0]), [int(t) for t in chain[1:]]
            if not rest:
                continue
            session.execute(update(Sighting).where(Sighting.track_id.in_(rest)).values(track_id=keep))
            session.execute(update(Alert).where(Alert.track_id.in_(rest)).values(track_id=keep))  # kept, re-pointed
            session.execute(delete(Track).where(Track.id.in_(rest)))
            recount_tracks(session, Track.id == keep)
            rows = session.execute(
                select(Embedding.vector, Sighting.quality)
                .join(Sighting, Sighting.id == Embedding.sighting_id)
                .where(Sighting.track_id == keep)
            ).all()
            if rows:
                weights = np.array([max(float(q), 1e-3) for _, q in rows])
                total = (weights[:, None] * np.stack([bytes_to_vector(v) for v, _ in rows])).sum(axis=0)
                norm = float(np.linalg.norm(total))
                session.execute(
                    update(Track)
                    .where(Track.id == keep)
                    .values(
                        quality_sum=float(weights.sum()),
                        descriptor=vector_to_bytes((total / norm if norm > 0 else total).astype(np.float32)),
                    )
                )
            absorbed += len(rest)
    return absorbed
