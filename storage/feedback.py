"""User knowledge that matching must honour: verdicts on pairs of tracks and cameras that overlap."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Iterable, Optional

from sqlalchemy import delete, select, tuple_

from storage.database import Database, lock_for_writing
from storage.schema import CameraOverlap, PairFeedback

SAME = "same"
DIFFERENT = "different"


@dataclass
class PairVerdict:
    """A stored verdict: ``track_a < track_b``, ``verdict`` is :data:`SAME` or :data:`DIFFERENT`."""

    track_a: int
    track_b: int
    verdict: str
    created_at: datetime


def _ordered(a: int, b: int) -> tuple[int, int]:
    return (int(a), int(b)) if a < b else (int(b), int(a))


def set_verdicts(
    db: Database,
    same: Iterable[tuple[int, int]] = (),
    different: Iterable[tuple[int, int]] = (),
    forget: Iterable[tuple[int, int]] = (),
) -> None:
    """In one transaction: delete the verdicts on the pairs of ``forget``, and store :data:`SAME` for each pair of
    ``same`` and :data:`DIFFERENT` for each of ``different``, replacing older verdicts on those pairs."""
    new = {_ordered(a, b): SAME for a, b in same if a != b}
    new.update({_ordered(a, b): DIFFERENT for a, b in different if a != b})
    gone = {_ordered(a, b) for a, b in forget} | set(new)
    with db.sessions.begin() as session:
        if gone:
            session.execute(
                delete(PairFeedback).where(tuple_(PairFeedback.track_a_id, PairFeedback.track_b_id).in_(sorted(gone)))
            )
        session.add_all([PairFeedback(track_a_id=a, track_b_id=b, verdict=v) for (a, b), v in sorted(new.items())])


def forget_verdict(db: Database, a: int, b: int) -> bool:
    """Delete the verdict on a pair; True when there was one."""
    a, b = _ordered(a, b)
    with db.sessions.begin() as session:
        result = session.execute(delete(PairFeedback).where(PairFeedback.track_a_id == a, PairFeedback.track_b_id == b))
        return result.rowcount > 0


def load_verdicts(db: Database, track_ids: Optional[Iterable[int]] = None) -> list[PairVerdict]:
    """Every stored verdict, or those touching ``track_ids``, oldest first."""
    query = select(PairFeedback).order_by(PairFeedback.id)
    if track_ids is not None:
        ids = [int(t) for t in track_ids]
        query = query.where(PairFeedback.track_a_id.in_(ids) | PairFeedback.track_b_id.in_(ids))
    with db.session() as session:
        return [PairVerdict(f.track_a_id, f.track_b_id, f.verdict, f.created_at) for f in session.scalars(query)]


def set_overlap(db: Database, camera_ids: Iterable[int], overlapping: bool = True) -> None:
    """Mark every pair of the given cameras as overlapping (seeing a common area), or unmark them."""
    ids = sorted({int(c) for c in camera_ids})
    pairs = [(a, b) for i, a in enumerate(ids) for b in ids[i + 1 :]]
    with db.sessions.begin() as session:
        lock_for_writing(session)
        existing = {(o.camera_a_id, o.camera_b_id) for o in session.scalars(select(CameraOverlap))}
        for a, b in pairs:
            if overlapping and (a, b) not in existing:
                session.add(CameraOverlap(camera_a_id=a, camera_b_id=b))
            elif not overlapping and (a, b) in existing:
                session.execute(
                    delete(CameraOverlap).where(CameraOverlap.camera_a_id == a, CameraOverlap.camera_b_id == b)
                )


def load_overlaps(db: Database) -> set[tuple[int, int]]:
    """Overlapping camera pairs ``(a, b)`` with ``a < b``."""
    with db.session() as session:
        return {(o.camera_a_id, o.camera_b_id) for o in session.scalars(select(CameraOverlap))}
