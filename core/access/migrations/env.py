"""Alembic environment for the access schema, run programmatically by ``core.access.store.upgrade``."""

from alembic import context

from core.access.store import metadata

connection = context.config.attributes.get("connection")
if connection is None:  # pragma: no cover - only reachable from the alembic command line
    raise SystemExit("Run migrations through core.access.store.upgrade(), which supplies the connection.")

context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
