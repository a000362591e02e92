"""Alembic migrations of the reid-app schema, run by ``storage.database`` when a database is opened (see
``storage/migrations/env.py``). One revision per schema change; ``schema_version`` in ``reid_meta`` follows them."""
