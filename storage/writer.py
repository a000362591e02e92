"""Writing one video's analysis: :class:`VideoWriter` stores sightings, embeddings and thumbnails in batches and keeps
each track's descriptor (the quality-weighted mean of its embeddings, L2-normalised) and counts up to date."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np
from sqlalchemy import delete, func, insert, select, update
from sqlalchemy.orm import Session

from common.types import Observation
from storage.database import Database
from storage.leases import LeaseLostError
from storage.schema import (
    DAMAGED_FRACTION,
    FINISHED_STATUSES,
    Embedding,
    Sighting,
    Track,
    Video,
)
from storage.vectors import usable_embedding, vector_to_bytes


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
