"""Schema 5: the files the recorder made (only those are deleted by retention) and the webhook outbox.

Revision ID: 0003_recorded_files_outbox
Revises: 0002_watchlist_alerts
"""

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
        sa.Column("created_at", sa.DateTime, nullable=False))
    op.create_table(
        "webhook_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("alert_id", sa.Integer, sa.ForeignKey("alerts.id", ondelete="CASCADE"), nullable=False,
                  unique=True),
        sa.Column("body", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False, index=True),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", sa.Float, nullable=False),
        sa.Column("outcome", sa.Text, nullable=False))


def downgrade() -> None:
    op.drop_table("webhook_outbox")
    op.drop_table("recorded_files")
