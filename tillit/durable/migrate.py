"""Migrations, run programmatically: at start-up, by `tillit db upgrade`, and read by
`tillit db check`.

Alembic runs on a connection of the async engine (its cookbook's "connection sharing
with asyncio"), inside one transaction that also serialises processes starting at the
same time: `BEGIN IMMEDIATE` on SQLite, an advisory lock on PostgreSQL. On SQLite
foreign keys are off while migrating (a table rebuild must not cascade) and on again
after the commit. A database at a revision this code does not know (made by a newer
Tillit) is never touched: `SchemaTooNew`.

A schema change is a new file in migrations/versions/ (revision "0002", down_revision
"0001", ...) plus the same change in schema.py; Alembic's `command.revision` can write the
skeleton from migrations/script.py.mako (`Config()` with `script_location` set, as below).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, text
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.durable.engine import create_engine, is_sqlite

MIGRATIONS = Path(__file__).with_name("migrations")
_PG_LOCK = 0x7111_1717  # pg_advisory_xact_lock key: one migrating process at a time


class SchemaTooNew(RuntimeError):
    """The database was migrated by a newer Tillit than this one."""


@dataclass(frozen=True)
class SchemaStatus:
    current: str | None  # None: no schema yet (an empty database or a pre-Alembic file)
    head: str

    @property
    def at_head(self) -> bool:
        return self.current == self.head


def _config() -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    return config


def head() -> str:
    """The newest revision this code knows."""
    found = ScriptDirectory.from_config(_config()).get_current_head()
    assert found is not None
    return found


def _known(revision: str) -> bool:
    script = ScriptDirectory.from_config(_config())
    return any(r.revision == revision for r in script.walk_revisions())


def _current(conn: Connection) -> str | None:
    return MigrationContext.configure(conn).get_current_revision()


def _refuse_newer(current: str | None) -> None:
    if current is not None and not _known(current):
        raise SchemaTooNew(
            f"the database's schema is at revision {current!r}, which this Tillit does not "
            f"know (its newest is {head()!r}): a newer Tillit migrated it; run that "
            "version, or restore a backup made for this one")


def _upgrade_sync(conn: Connection) -> bool:
    current = _current(conn)
    _refuse_newer(current)
    if current == head():
        return False
    config = _config()
    config.attributes["connection"] = conn
    command.upgrade(config, "head")
    return True


async def upgrade(engine: AsyncEngine) -> bool:
    """Migrate to head; True if anything was done. Raises SchemaTooNew."""
    sqlite = is_sqlite(engine)
    async with engine.connect() as conn:
        if sqlite:
            await conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # outside a transaction
            await conn.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            await conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _PG_LOCK})
        try:
            changed = await conn.run_sync(_upgrade_sync)
            await conn.commit()
        except BaseException:
            await conn.rollback()
            raise
        finally:
            if sqlite:
                await conn.exec_driver_sql("PRAGMA foreign_keys=ON")
                await conn.commit()
    return changed


async def status(engine: AsyncEngine) -> SchemaStatus:
    """The database's revision and this code's head (connects: raises if unreachable)."""
    async with engine.connect() as conn:
        current = await conn.run_sync(_current)
    return SchemaStatus(current, head())


async def open_migrated(url: str) -> AsyncEngine:
    """An engine for `url`, its database migrated to head (see `upgrade`)."""
    engine = create_engine(url)
    try:
        await upgrade(engine)
    except BaseException:
        await engine.dispose()
        raise
    return engine
