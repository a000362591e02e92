"""The webhook outbox: alerts waiting for their POST, kept in the database so that a restart loses none and sends
none twice (``storage.schema.WebhookOutbox``; the URL itself is never stored)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

from sqlalchemy import func, select, update

from storage.database import Database, lock_for_writing
from storage.schema import Alert, WebhookOutbox


@dataclass
class OutboxItem:
    """An alert claimed for sending: its outbox row, alert, JSON body and the attempts made before this one."""

    id: int
    alert_id: int
    body: str
    attempts: int


def enqueue(db: Database, alert_id: int, body: str, now: float) -> None:
    """Queue an alert's POST (due at once)."""
    with db.sessions.begin() as session:
        session.add(
            WebhookOutbox(alert_id=alert_id, body=body, state="queued", attempts=0, next_attempt_at=now, outcome="")
        )


def claim_due(db: Database, now: float) -> Optional[OutboxItem]:
    """The oldest queued alert due by ``now`` (seconds since the epoch), marked ``sending`` in the same
    transaction under the write lock, so that no two posters take the same one; None when none is due."""
    with db.sessions.begin() as session:
        lock_for_writing(session)
        row = session.scalars(
            select(WebhookOutbox)
            .where(WebhookOutbox.state == "queued", WebhookOutbox.next_attempt_at <= now)
            .order_by(WebhookOutbox.next_attempt_at, WebhookOutbox.id)
            .limit(1)
        ).first()
        if row is None:
            return None
        row.state = "sending"
        return OutboxItem(row.id, row.alert_id, row.body, row.attempts)


def settle(
    db: Database, item: OutboxItem, state: str, outcome: str, delivered: str, next_attempt_at: float = 0.0
) -> None:
    """Store what one attempt did: ``state`` (``queued`` again with ``next_attempt_at``, or a final state), the
    real ``outcome``, and the alert's ``delivered`` text."""
    with db.sessions.begin() as session:
        session.execute(
            update(WebhookOutbox)
            .where(WebhookOutbox.id == item.id)
            .values(state=state, outcome=outcome, attempts=item.attempts + 1, next_attempt_at=next_attempt_at)
        )
        session.execute(update(Alert).where(Alert.id == item.alert_id).values(delivered=delivered))


def abandon_interrupted(db: Database, outcome: str, delivered: str) -> int:
    """Mark rows left ``sending`` by a process that died mid-POST as ``unknown`` (the POST may have arrived: at most
    once per alert, so never sent again); returns how many."""
    with db.sessions.begin() as session:
        lock_for_writing(session)
        ids = list(session.scalars(select(WebhookOutbox.alert_id).where(WebhookOutbox.state == "sending")))
        if ids:
            session.execute(
                update(WebhookOutbox).where(WebhookOutbox.state == "sending").values(state="unknown", outcome=outcome)
            )
            session.execute(update(Alert).where(Alert.id.in_(ids)).values(delivered=delivered))
        return len(ids)


def pending(db: Database) -> tuple[int, Optional[float]]:
    """``(rows queued or being sent, the earliest next attempt time or None)``."""
    with db.session() as session:
        count, first = session.execute(
            select(func.count(), func.min(WebhookOutbox.next_attempt_at)).where(
                WebhookOutbox.state.in_(("queued", "sending"))
            )
        ).one()
    return int(count), first
