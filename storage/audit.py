"""The audit log: every search and every feedback action, with its time (UTC) and details."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Optional

from sqlalchemy import select

from storage.database import Database
from storage.schema import AuditEntry


@dataclass
class AuditRecord:
    """One audit row: id, UTC time, action (``search``, ``confirm``, ``reject``, ``merge``, ``split``,
    ``forget``, ``cluster``, ``overlap``) and its details."""

    id: int
    created_at: datetime
    action: str
    details: dict[str, Any]


def record(db: Database, action: str, **details: Any) -> None:
    """Append one audit row (its own transaction)."""
    with db.sessions.begin() as session:
        session.add(AuditEntry(action=action, details=json.dumps(details, default=str, sort_keys=True)))


def read_log(db: Database, action: Optional[str] = None, limit: int = 100) -> list[AuditRecord]:
    """The latest audit rows, newest first, optionally of one action."""
    query = select(AuditEntry).order_by(AuditEntry.id.desc()).limit(limit)
    if action is not None:
        query = query.where(AuditEntry.action == action)
    with db.session() as session:
        return [AuditRecord(e.id, e.created_at, e.action, json.loads(e.details)) for e in session.scalars(query)]
