"""Schema 5: the files the recorder made (only those are deleted by retention) and the webhook outbox.

Revision ID: 0003_recorded_files_outbox
Revises: 0002_watchlist_alerts
"""

import hashlib

import sqlalchemy as sa
from alembic import op

revision = "0003_recorded_files_outbox"
down_revision = "0002_watchlist_alerts"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "recorded_files",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("path", sa.Text, nullable=False, unique=True),
        sa.Column("camera", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False, unique=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False),
    )
    _list_watch_segments()


def _list_watch_segments() -> None:
    """Segments that an older watch recorded are recognised by their fingerprint (``pipelines.live.watch.
    live_fingerprint``: the SHA-256 of ``live:`` and the path), so retention keeps deleting them after the upgrade."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text("SELECT v.path, v.fingerprint, c.name FROM videos v JOIN cameras c ON c.id = v.camera_id")
    ).all()
    seen = set()
    for path, fingerprint, camera in rows:
        if path not in seen and fingerprint == hashlib.sha256(f"live:{path}".encode()).hexdigest():
            seen.add(path)
            bind.execute(
                sa.text("INSERT INTO recorded_files (path, camera, created_at) VALUES (:p, :c, CURRENT_TIMESTAMP)"),
                {"p": path, "c": camera},
            )


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_table("recorded_files")
