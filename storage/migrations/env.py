"""Alembic environment: migrations run on the connection ``storage.database`` hands over
(``config.attributes["connection"]``), in batch mode so that SQLite can alter tables."""

from alembic import context

from storage.schema import Base

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=Base.metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
