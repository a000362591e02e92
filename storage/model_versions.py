"""Versions of a site's re-id model (issue 31, site self-adaptation): which model is current, what is recorded of each
version, the sightings a new version still has to encode, and the switch that makes a version current.

A database may hold embeddings of several models. Exactly one is *current*: its embeddings make the track
descriptors (``tracks.descriptor``), its identities are the ones shown, and search, identities, the watchlist and
the app use it. The current model is recorded in ``reid_meta`` (``models.current``); a database that never switched
has none recorded and its current model is the one with the most embeddings, as before versions existed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

import numpy as np
from sqlalchemy import func, select, update

from storage.database import Database, lock_for_writing
from storage.leases import owner_alive
from storage.schema import Embedding, Identity, Meta, ReidModel, Sighting, Track, Video
from storage.vectors import bytes_to_keypoints, bytes_to_vector, usable_embedding, vector_to_bytes

CURRENT_KEY = "models.current"


def _info_key(model_id: int) -> str:
    return f"model.{model_id}.version"


def embedding_counts(db: Database) -> dict[int, int]:
    """Model id -> number of stored embeddings (models without any are absent)."""
    with db.session() as session:
        return _counts_in(session)


def recorded_current_model(db: Database) -> Optional[int]:
    """The model id recorded as current by :func:`switch_model`, or None (never switched, or unreadable)."""
    with db.session() as session:
        return _recorded_in(session)


def set_version_info(db: Database, model_id: int, info: dict) -> None:
    """Record plain facts about a model version (``reid_meta`` ``model.<id>.version``, JSON): what it was adapted
    from, when, on how many tracklets, its check; merged into what was recorded before."""
    merged = dict(version_info(db, model_id))
    merged.update(info)
    with db.sessions.begin() as session:
        session.merge(Meta(key=_info_key(model_id), value=json.dumps(merged, sort_keys=True)))


def version_info(db: Database, model_id: int) -> dict:
    """What :func:`set_version_info` recorded for a model (``{}`` when nothing, or unreadable)."""
    with db.session() as session:
        value = session.scalar(select(Meta.value).where(Meta.key == _info_key(model_id)))
    try:
        info = json.loads(value) if value else {}
    except ValueError:
        return {}
    return info if isinstance(info, dict) else {}


def all_models(db: Database) -> list[ReidModel]:
    """Every ``models`` row, oldest first (with or without embeddings)."""
    with db.session() as session:
        return list(session.scalars(select(ReidModel).order_by(ReidModel.id)))


@dataclass(frozen=True)
class PendingSighting:
    """A stored sighting to cut again from its footage (to encode, or to adapt on): where to cut it from (frame
    index, box in frame pixels) and its stored COCO-17 keypoints (``float32 [17, 3]`` in frame pixels, or None)."""

    id: int
    track_id: int
    frame_index: int
    box: tuple[float, float, float, float]
    keypoints: Optional[np.ndarray]


@dataclass(frozen=True)
class VideoToEncode:
    """A complete video with sightings encoded by the source model: its file, and how many of them the target
    model has encoded already."""

    id: int
    camera_id: int
    path: str
    sightings: int
    encoded: int


def videos_to_encode(db: Database, source_model: int, target_model: int) -> list[VideoToEncode]:
    """The complete (or damaged) videos holding embeddings of ``source_model``, with how many of those sightings
    ``target_model`` has encoded, in video id order."""
    with db.session() as session:
        done = dict(
            session.execute(
                select(Sighting.video_id, func.count())
                .join(Embedding, Embedding.sighting_id == Sighting.id)
                .where(Embedding.model_id == target_model)
                .group_by(Sighting.video_id)
            ).all()
        )
        rows = session.execute(
            select(Video.id, Video.camera_id, Video.path, func.count())
            .join(Sighting, Sighting.video_id == Video.id)
            .join(Embedding, Embedding.sighting_id == Sighting.id)
            .where(Embedding.model_id == source_model, Video.status.in_(("complete", "damaged")))
            .group_by(Video.id, Video.camera_id, Video.path)
            .order_by(Video.id)
        ).all()
    return [VideoToEncode(int(v), int(c), str(p), int(n), int(done.get(v, 0))) for v, c, p, n in rows]


#: What :class:`PendingSighting` is read from, in :func:`_pending`'s order.
_PENDING_COLUMNS = (
    Sighting.id,
    Sighting.track_id,
    Sighting.frame_index,
    Sighting.x1,
    Sighting.y1,
    Sighting.x2,
    Sighting.y2,
    Sighting.keypoints,
)


def pending_sightings(db: Database, video_id: int, source_model: int, target_model: int) -> list[PendingSighting]:
    """The sightings of a video that ``source_model`` encoded and ``target_model`` has not, in frame order."""
    encoded = select(Embedding.sighting_id).where(Embedding.model_id == target_model)
    with db.session() as session:
        rows = session.execute(
            select(*_PENDING_COLUMNS)
            .join(Embedding, Embedding.sighting_id == Sighting.id)
            .where(
                Sighting.video_id == video_id,
                Embedding.model_id == source_model,
                Sighting.id.not_in(encoded),
            )
            .order_by(Sighting.frame_index, Sighting.id)
        ).all()
    return [_pending(row) for row in rows]


def encoded_sightings(db: Database, model_id: int, track_ids: Sequence[int]) -> dict[int, list[PendingSighting]]:
    """Track id -> its sightings ``model_id`` encoded, in frame order (tracks without any are absent)."""
    out: dict[int, list[PendingSighting]] = {}
    ids = sorted({int(t) for t in track_ids})
    with db.session() as session:
        for start in range(0, len(ids), 5000):
            rows = session.execute(
                select(*_PENDING_COLUMNS)
                .join(Embedding, Embedding.sighting_id == Sighting.id)
                .where(Embedding.model_id == model_id, Sighting.track_id.in_(ids[start : start + 5000]))
                .order_by(Sighting.track_id, Sighting.frame_index, Sighting.id)
            ).all()
            for row in rows:
                sighting = _pending(row)
                out.setdefault(sighting.track_id, []).append(sighting)
    return out


def _pending(row) -> PendingSighting:
    sid, tid, frame, x1, y1, x2, y2, kp = row
    return PendingSighting(
        int(sid), int(tid), int(frame), (float(x1), float(y1), float(x2), float(y2)), bytes_to_keypoints(kp)
    )


def add_embeddings(db: Database, model_id: int, rows: Sequence[tuple[int, np.ndarray]]) -> int:
    """Store ``(sighting id, float32 [D] embedding)`` rows of ``model_id`` in one transaction, skipping sightings
    that already have one of this model (a resumed re-encode never stores a sighting twice) and unusable vectors.

    Returns:
        Embeddings stored.
    """
    if not rows:
        return 0
    with db.sessions.begin() as session:
        lock_for_writing(session)
        ids = [int(s) for s, _ in rows]
        have = set(
            session.scalars(
                select(Embedding.sighting_id).where(Embedding.model_id == model_id, Embedding.sighting_id.in_(ids))
            )
        )
        alive = set(session.scalars(select(Sighting.id).where(Sighting.id.in_(ids))))
        fresh = [
            {"sighting_id": int(s), "model_id": model_id, "dims": int(v.shape[0]), "vector": vector_to_bytes(v)}
            for s, v in rows
            if int(s) not in have and int(s) in alive and usable_embedding(np.asarray(v, np.float32))
        ]
        if fresh:  # under the write lock: no other process can add one of these meanwhile
            session.execute(Embedding.__table__.insert(), fresh)
    return len(fresh)


def _descriptors(session, model_id: int, track_ids: Iterable[int]) -> dict[int, tuple[np.ndarray, int, float]]:
    """Track id -> (quality-weighted mean of its ``model_id`` embeddings, L2-normalised; count; weight sum), as
    ``storage.writer`` makes them (weights ``max(quality, 1e-3)``)."""
    out = {}
    ids = sorted({int(t) for t in track_ids})
    for start in range(0, len(ids), 5000):
        sums: dict[int, list] = {}
        rows = session.execute(
            select(Sighting.track_id, Sighting.quality, Embedding.vector)
            .join(Embedding, Embedding.sighting_id == Sighting.id)
            .where(Embedding.model_id == model_id, Sighting.track_id.in_(ids[start : start + 5000]))
        )
        for track_id, quality, blob in rows:
            weight = max(float(quality or 0.0), 1e-3)
            entry = sums.setdefault(int(track_id), [0.0, 0, 0.0])
            entry[0] = entry[0] + weight * bytes_to_vector(blob).astype(np.float64)
            entry[1] += 1
            entry[2] += weight
        for track_id, (total, count, weights) in sums.items():
            norm = float(np.linalg.norm(total))
            out[track_id] = ((total / norm if norm > 0 else total).astype(np.float32), count, weights)
    return out


@dataclass(frozen=True)
class SwitchReport:
    """What :func:`switch_model` did: the model made current, the one it replaced (None: none recorded), tracks
    whose descriptor it rebuilt, videos and identities moved to it."""

    model_id: int
    previous: Optional[int]
    tracks: int
    videos: int
    identities: int


class IncompleteVersionError(ValueError):
    """A model version cannot be made current: some sightings of the current model have no embedding of it."""


def switch_model(db: Database, model_id: int) -> SwitchReport:
    """Make ``model_id`` the current model in one transaction: every track's descriptor is rebuilt from that
    model's embeddings, the complete videos and the identities move to it (identities keep their ids and names;
    re-clustering them is the caller's next step), and ``models.current`` records it. Nothing changes when it
    fails.

    Raises:
        LookupError: no such model.
        IncompleteVersionError: a sighting encoded by the current model has no embedding of ``model_id`` (its
            re-encoding is not complete).
    """
    with db.sessions.begin() as session:
        lock_for_writing(session)
        if session.get(ReidModel, model_id) is None:
            raise LookupError(model_id)
        previous = _current_in(session)
        if previous is not None and previous != model_id:
            theirs = select(Embedding.sighting_id).where(Embedding.model_id == model_id)
            missing = session.scalar(
                select(func.count())
                .select_from(Embedding)
                .where(Embedding.model_id == previous, Embedding.sighting_id.not_in(theirs))
            )
            if missing:
                raise IncompleteVersionError(
                    f"model {model_id} has not encoded {missing} sightings of the current model {previous} yet"
                )
        described = list(session.scalars(select(Track.id).where(Track.descriptor.is_not(None))))
        encoded = list(
            session.scalars(
                select(Sighting.track_id)
                .join(Embedding, Embedding.sighting_id == Sighting.id)
                .where(Embedding.model_id == model_id)
                .distinct()
            )
        )
        made = _descriptors(session, model_id, set(described) | set(encoded))
        for track_id, (descriptor, count, weights) in made.items():
            session.execute(
                update(Track)
                .where(Track.id == track_id)
                .values(
                    descriptor=vector_to_bytes(descriptor),
                    descriptor_model_id=model_id,
                    num_embeddings=count,
                    quality_sum=weights,
                )
            )
        videos = session.execute(
            update(Video)
            .where(Video.id.in_(select(Track.video_id).where(Track.descriptor_model_id == model_id)))
            .values(model_id=model_id)
        ).rowcount
        moved = 0
        if previous is not None and previous != model_id:
            session.execute(Identity.__table__.delete().where(Identity.model_id == model_id))
            moved = session.execute(
                update(Identity).where(Identity.model_id == previous).values(model_id=model_id)
            ).rowcount
        session.merge(Meta(key=CURRENT_KEY, value=str(model_id)))
        return SwitchReport(model_id, previous, len(made), int(videos or 0), int(moved or 0))


def _current_in(session) -> Optional[int]:
    """:func:`current_model_id` read in ``session`` (inside the switch's transaction)."""
    return _pick_current(_recorded_in(session), _counts_in(session))


def _recorded_in(session) -> Optional[int]:
    value = session.scalar(select(Meta.value).where(Meta.key == CURRENT_KEY))
    try:
        return None if value is None else int(value)
    except ValueError:
        return None


def _counts_in(session) -> dict[int, int]:
    rows = session.execute(select(Embedding.model_id, func.count()).group_by(Embedding.model_id))
    return {int(m): int(n) for m, n in rows}


def _pick_current(recorded: Optional[int], counts: dict[int, int]) -> Optional[int]:
    if recorded is not None and counts.get(recorded):
        return recorded
    return max(counts, key=lambda m: (counts[m], -m)) if counts else None


def current_model_id(db: Database, counts: Optional[dict[int, int]] = None) -> Optional[int]:
    """The current model (module docstring): the one recorded by :func:`switch_model` when it still has
    embeddings, else the model with the most embeddings; None when the database holds no embeddings.

    Args:
        counts: :func:`embedding_counts` when the caller has them already (they are one aggregate over every
            embedding: not worth reading twice).
    """
    return _pick_current(recorded_current_model(db), embedding_counts(db) if counts is None else counts)


def videos_being_ingested(db: Database) -> list[str]:
    """Paths of the videos a live process is ingesting now (their embeddings are the current model's, so a model
    switch must wait for them)."""
    with db.session() as session:
        rows = session.execute(
            select(Video.path, Video.owner, Video.heartbeat_at).where(Video.status == "ingesting")
        ).all()
    return [str(path) for path, owner, beat in rows if owner_alive(owner, beat)]
