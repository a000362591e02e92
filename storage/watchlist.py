"""The watchlist (persons of interest with their re-id descriptors) and the alerts raised when a live track matches
one of them."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Optional

import numpy as np
from sqlalchemy import delete, select

from storage.database import Database
from storage.schema import Alert, WatchlistEntry
from storage.vectors import bytes_to_vector, vector_to_bytes

WATCHLIST_KINDS = ("identity", "track", "image")


@dataclass
class Watched:
    """One watchlist entry: ``vector`` is ``float32 [D]``, L2-normalised, made by ``model_id``."""

    id: int
    name: str
    kind: str
    source: str
    note: str
    model_id: int
    vector: np.ndarray
    created_at: datetime


@dataclass
class StoredAlert:
    """One alert row (see :class:`storage.schema.Alert` for units)."""

    id: int
    watchlist_id: int
    name: str
    camera: str
    track_id: Optional[int]
    sighting_id: Optional[int]
    timestamp: float
    similarity: float
    delivered: str
    created_at: datetime


def add_entry(
    db: Database, name: str, kind: str, source: str, model_id: int, vector: np.ndarray, note: str = ""
) -> int:
    """Store a watchlist entry; returns its id.

    Raises:
        ValueError: ``kind`` is not one of :data:`WATCHLIST_KINDS`, or ``vector`` is not a finite non-zero 1-D
            ``float32`` vector.
    """
    if kind not in WATCHLIST_KINDS:
        raise ValueError(f"watchlist kind must be one of {', '.join(WATCHLIST_KINDS)}, got {kind!r}")
    vector = np.asarray(vector, np.float32)
    norm = float(np.linalg.norm(vector)) if vector.ndim == 1 else 0.0
    if not (np.isfinite(norm) and norm > 1e-6):
        raise ValueError("watchlist descriptor must be a finite, non-zero 1-D vector")
    with db.sessions.begin() as session:
        row = WatchlistEntry(
            name=name,
            kind=kind,
            source=str(source),
            note=note,
            model_id=model_id,
            vector=vector_to_bytes(vector / norm),
        )
        session.add(row)
        session.flush()
        return row.id


def list_entries(db: Database, model_id: Optional[int] = None) -> list[Watched]:
    """Every watchlist entry (of one model when given), oldest first."""
    query = select(WatchlistEntry).order_by(WatchlistEntry.id)
    if model_id is not None:
        query = query.where(WatchlistEntry.model_id == model_id)
    with db.session() as session:
        return [
            Watched(e.id, e.name, e.kind, e.source, e.note, e.model_id, bytes_to_vector(e.vector), e.created_at)
            for e in session.scalars(query)
        ]


def remove_entry(db: Database, entry_id: int) -> bool:
    """Delete a watchlist entry and its alerts; False when no entry has this id."""
    with db.sessions.begin() as session:
        return session.execute(delete(WatchlistEntry).where(WatchlistEntry.id == entry_id)).rowcount > 0


def add_alert(
    db: Database,
    watchlist_id: int,
    camera: str,
    track_id: Optional[int],
    sighting_id: Optional[int],
    timestamp: float,
    similarity: float,
    delivered: str = "",
) -> int:
    """Store an alert; returns its id."""
    with db.sessions.begin() as session:
        row = Alert(
            watchlist_id=watchlist_id,
            camera=camera,
            track_id=track_id,
            sighting_id=sighting_id,
            timestamp=float(timestamp),
            similarity=float(similarity),
            delivered=delivered,
        )
        session.add(row)
        session.flush()
        return row.id


def list_alerts(db: Database, limit: int = 100, since: Optional[float] = None) -> list[StoredAlert]:
    """The latest alerts, newest first (at most ``limit``; from ``since`` epoch seconds on when given)."""
    query = (
        select(Alert, WatchlistEntry.name)
        .join(WatchlistEntry, Alert.watchlist_id == WatchlistEntry.id)
        .order_by(Alert.id.desc())
        .limit(limit)
    )
    if since is not None:
        query = query.where(Alert.timestamp >= since)
    with db.session() as session:
        return [
            StoredAlert(
                a.id,
                a.watchlist_id,
                name,
                a.camera,
                a.track_id,
                a.sighting_id,
                a.timestamp,
                a.similarity,
                a.delivered,
                a.created_at,
            )
            for a, name in session.execute(query)
        ]


def alerted_tracks(db: Database) -> set[tuple[int, int]]:
    """``(watchlist id, track id)`` of every stored alert whose track still exists (repeat suppression)."""
    with db.session() as session:
        return {
            (w, t)
            for w, t in session.execute(select(Alert.watchlist_id, Alert.track_id).where(Alert.track_id.is_not(None)))
        }
