"""Global identities as stored: each a set of member tracks with a confidence, per re-id model."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Optional, Sequence

from sqlalchemy import case, delete, func, insert, select
from sqlalchemy.orm import Session

from storage.database import Database, lock_for_writing
from storage.schema import Identity, IdentityLabel, IdentityTrack, Meta, Track, utcnow


@dataclass
class StoredIdentity:
    """An identity row with its member track ids (ascending)."""

    id: int
    model_id: int
    confidence: float
    threshold: float
    track_ids: list[int]


def replace_identities(
    db: Database,
    model_id: int,
    clusters: Sequence[tuple[Sequence[int], float]],
    threshold: float,
    replaced: Optional[Sequence[int]] = None,
) -> list[int]:
    """Replace the model's identities by ``clusters`` (member track ids, confidence) in one transaction; with
    ``replaced``, only those identities (a re-clustering of the components a feedback action touched), the others
    staying as they are.

    A new identity keeps the id of the old identity it shares most tracks with (each old id used once), so the
    ids users wrote down stay valid while clustering refines the membership. Any other identity gets an id never
    used before in this database (a counter in ``reid_meta``), so an id that once meant one person never comes
    back meaning another.

    Member tracks deleted meanwhile (a re-ingest replaced their video while the clusters were computed) are left
    out; a cluster left with none gets no identity (its id is 0).

    Returns:
        The identity id of each cluster, in order.
    """
    with db.sessions.begin() as session:
        lock_for_writing(session)
        wanted = sorted({int(t) for members, _ in clusters for t in members})
        existing = {
            t
            for start in range(0, len(wanted), 10000)
            for t in session.scalars(select(Track.id).where(Track.id.in_(wanted[start : start + 10000])))
        }
        clusters = [([int(t) for t in members if int(t) in existing], confidence) for members, confidence in clusters]
        old = {}
        chosen = Identity.model_id == model_id
        if replaced is not None:
            chosen = chosen & Identity.id.in_([int(i) for i in replaced])
        for identity_id, track_id in session.execute(
            select(IdentityTrack.identity_id, IdentityTrack.track_id).join(Identity).where(chosen)
        ):
            old[int(track_id)] = int(identity_id)
        overlaps = []
        for i, (members, _) in enumerate(clusters):
            counts: dict[int, int] = {}
            for t in members:
                if int(t) in old:
                    counts[old[int(t)]] = counts.get(old[int(t)], 0) + 1
            overlaps += [(-n, i, ident) for ident, n in counts.items()]
        reuse: dict[int, int] = {}
        taken: set[int] = set()
        for _, i, ident in sorted(overlaps):
            if i not in reuse and ident not in taken:
                reuse[i] = ident
                taken.add(ident)
        next_id = _next_identity_id(session)  # before the delete: the ids being replaced count as used
        session.execute(delete(Identity).where(chosen))
        if replaced is not None:  # a track that was in an identity left in place moves to its new one
            session.execute(delete(IdentityTrack).where(IdentityTrack.track_id.in_(wanted)))
        session.flush()
        ids: list[int] = [0] * len(clusters)
        for i, (members, _) in enumerate(clusters):
            if members:
                if i in reuse:
                    ids[i] = reuse[i]
                else:
                    ids[i], next_id = next_id, next_id + 1
        # every id is known: two multi-row INSERTs (Core) instead of an ORM object and a flush per identity
        made = [i for i in range(len(clusters)) if ids[i]]
        if made:
            session.execute(
                insert(Identity),
                [
                    {
                        "id": ids[i],
                        "model_id": model_id,
                        "confidence": float(clusters[i][1]),
                        "threshold": float(threshold),
                        "created_at": utcnow(),
                    }
                    for i in made
                ],
            )
            session.execute(
                insert(IdentityTrack),
                [{"identity_id": ids[i], "track_id": int(t)} for i in made for t in clusters[i][0]],
            )
        session.merge(Meta(key=_NEXT_ID_KEY, value=str(next_id)))
        return ids


_NEXT_ID_KEY = "identities.next_id"


def add_to_identities(
    db: Database, model_id: int, assignments: Sequence[tuple[Optional[int], Sequence[int], float]], threshold: float
) -> list[int]:
    """Add tracks to the model's identities without touching the others' members (incremental matching), in one
    transaction.

    Args:
        assignments: ``(identity id or None, track ids, confidence)``: the tracks join that existing identity (its
            confidence becomes the given one), or with None form a new identity with a never-used id. Tracks
            deleted meanwhile are left out; an existing identity that was deleted meanwhile becomes a new one.
        threshold: the clustering threshold in force, stored with new identities.

    Returns:
        The identity id of each assignment, in order (0 when none of its tracks exists any more).
    """
    with db.sessions.begin() as session:
        lock_for_writing(session)
        wanted = sorted({int(t) for _, members, _ in assignments for t in members})
        existing = set(session.scalars(select(Track.id).where(Track.id.in_(wanted)))) if wanted else set()
        taken = set(session.scalars(select(IdentityTrack.track_id).where(IdentityTrack.track_id.in_(wanted))))
        next_id = _next_identity_id(session)
        ids = []
        for identity_id, members, confidence in assignments:
            members = [int(t) for t in members if int(t) in existing and int(t) not in taken]
            if not members:
                ids.append(0)
                continue
            row = session.get(Identity, identity_id) if identity_id is not None else None
            if row is None:
                row = Identity(id=next_id, model_id=model_id, confidence=float(confidence), threshold=float(threshold))
                next_id += 1
                session.add(row)
                session.flush()
            else:
                row.confidence = float(confidence)
            session.add_all([IdentityTrack(identity_id=row.id, track_id=t) for t in members])
            taken.update(members)
            ids.append(row.id)
        session.merge(Meta(key=_NEXT_ID_KEY, value=str(next_id)))
        return ids


def _next_identity_id(session: Session) -> int:
    """The next never-used identity id: the stored counter, or one past every id in use (older databases)."""
    stored = session.scalar(select(Meta.value).where(Meta.key == _NEXT_ID_KEY))
    highest = session.scalar(select(func.max(Identity.id))) or 0
    return max(int(stored) if stored and stored.isdigit() else 1, highest + 1)


def stored_threshold(db: Database, model_id: int) -> Optional[float]:
    """The clustering threshold the model's identities were made with, or None when it has none."""
    with db.session() as session:
        return session.scalar(select(Identity.threshold).where(Identity.model_id == model_id).limit(1))


def load_identities(
    db: Database,
    model_id: Optional[int] = None,
    identity_ids: Optional[Iterable[int]] = None,
    session: Optional[Session] = None,
) -> list[StoredIdentity]:
    """Stored identities (of one model, or the given ids), by id; read in ``session`` when given (e.g. one of
    :meth:`Database.snapshot`, so that other reads see the same state), else in a snapshot of its own."""
    query = select(Identity).order_by(Identity.id)
    if model_id is not None:
        query = query.where(Identity.model_id == model_id)
    if identity_ids is not None:
        query = query.where(Identity.id.in_([int(i) for i in identity_ids]))
    if session is None:
        with db.snapshot() as own:
            return load_identities(db, model_id, identity_ids, own)
    rows = list(session.scalars(query))
    members: dict[int, list[int]] = {r.id: [] for r in rows}
    for identity_id, track_id in session.execute(
        select(IdentityTrack.identity_id, IdentityTrack.track_id)
        .where(IdentityTrack.identity_id.in_(list(members)))
        .order_by(IdentityTrack.track_id)
    ):
        members[identity_id].append(track_id)
    return [StoredIdentity(r.id, r.model_id, r.confidence, r.threshold, members[r.id]) for r in rows]


def identities_of_tracks(db: Database, track_ids: Iterable[int]) -> dict[int, int]:
    """Track id -> identity id, for the tracks that belong to one."""
    ids = [int(t) for t in track_ids]
    with db.session() as session:
        return {
            t: i
            for t, i in session.execute(
                select(IdentityTrack.track_id, IdentityTrack.identity_id).where(IdentityTrack.track_id.in_(ids))
            )
        }


def set_label(db: Database, identity_id: int, label: Optional[str], note: str = "") -> None:
    """Name identity ``identity_id`` (a person of interest) with a note, or remove its name (``label`` None)."""
    with db.sessions.begin() as session:
        if label is None:
            session.execute(delete(IdentityLabel).where(IdentityLabel.identity_id == identity_id))
        else:
            session.merge(IdentityLabel(identity_id=identity_id, label=label, note=note, updated_at=utcnow()))


def labels(db: Database) -> dict[int, tuple[str, str]]:
    """Identity id -> ``(label, note)`` for every named identity."""
    with db.session() as session:
        return {row.identity_id: (row.label, row.note) for row in session.scalars(select(IdentityLabel))}


def described_tracks(db: Database, model_id: int) -> int:
    """How many tracks have a descriptor made by ``model_id``."""
    with db.session() as session:
        return session.scalar(select(func.count(Track.id)).where(Track.descriptor_model_id == model_id)) or 0


def identity_counts(db: Database, model_id: int) -> tuple[int, int, int]:
    """(identities, identities seen by several cameras, member tracks) of the model, counted by the database."""
    per_identity = (
        select(
            IdentityTrack.identity_id,
            func.count(func.distinct(Track.camera_id)).label("cameras"),
            func.count(Track.id).label("tracks"),
        )
        .join(Track, Track.id == IdentityTrack.track_id)
        .join(Identity)
        .where(Identity.model_id == model_id)
        .group_by(IdentityTrack.identity_id)
        .subquery()
    )
    with db.session() as session:
        count, multi, total = session.execute(
            select(
                func.count(),
                func.coalesce(func.sum(case((per_identity.c.cameras > 1, 1), else_=0)), 0),
                func.coalesce(func.sum(per_identity.c.tracks), 0),
            )
        ).one()
    return int(count), int(multi), int(total)
