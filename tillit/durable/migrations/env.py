"""Alembic's environment, run only through tillit.durable.migrate: the caller hands in
an open connection of the async engine ("connection sharing with asyncio", Alembic's
cookbook), so no alembic.ini and no URL are read here."""

from __future__ import annotations

from alembic import context

from tillit.durable.schema import metadata

connection = context.config.attributes.get("connection")
if connection is None:
    raise RuntimeError("run migrations with `tillit db upgrade` (tillit/durable/migrate.py)")
context.configure(connection=connection, target_metadata=metadata,
                  render_as_batch=connection.dialect.name == "sqlite")
with context.begin_transaction():
    context.run_migrations()
