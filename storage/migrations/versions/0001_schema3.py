"""Baseline: the schema of reid-app schema version 3 (cameras, videos, tracks, sightings, embeddings, models,
matching and audit tables), as databases made before Alembic have it.

Databases of schema 1-3 made before migrations existed are brought to this revision in place by
``storage.database`` (missing tables created, added columns added) and stamped with it; a new database is made from
the current models and stamped with the newest revision, so this baseline is only run on an empty database.

Revision ID: 0001_schema3
Revises:
"""

from alembic import op

revision = "0001_schema3"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    from storage.schema import SCHEMA3_TABLES, Base

    bind = op.get_bind()
    Base.metadata.create_all(bind, tables=[Base.metadata.tables[name] for name in SCHEMA3_TABLES])


def downgrade() -> None:
    from storage.schema import SCHEMA3_TABLES, Base

    bind = op.get_bind()
    Base.metadata.drop_all(bind, tables=[Base.metadata.tables[name] for name in SCHEMA3_TABLES])
