"""Schema 4: the watchlist (persons of interest) and the alerts live tracks raised.

Revision ID: 0002_watchlist_alerts
Revises: 0001_schema3
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_watchlist_alerts"
down_revision = "0001_schema3"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "watchlist",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("model_id", sa.Integer, sa.ForeignKey("models.id"), nullable=False, index=True),
        sa.Column("vector", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
    )
    op.create_table(
        "alerts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column(
            "watchlist_id", sa.Integer, sa.ForeignKey("watchlist.id", ondelete="CASCADE"), nullable=False, index=True
        ),
        sa.Column("camera", sa.String(200), nullable=False),
        sa.Column("track_id", sa.Integer, sa.ForeignKey("tracks.id", ondelete="SET NULL"), nullable=True, index=True),
        sa.Column("sighting_id", sa.Integer, sa.ForeignKey("sightings.id", ondelete="SET NULL"), nullable=True),
        sa.Column("timestamp", sa.Float, nullable=False),
        sa.Column("similarity", sa.Float, nullable=False),
        sa.Column("delivered", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False, index=True),
    )


def downgrade() -> None:
    op.drop_table("alerts")
    op.drop_table("watchlist")
