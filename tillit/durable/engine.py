"""The durable database's engine: SQLite in the data folder, or PostgreSQL by URL.

`server.database_url` empty means <data_dir>/tillit.sqlite3, with every connection set
as tillit.safety.sqlite_files sets the chat store's: WAL, `secure_delete=ON` (deleted
rows are zeroed), foreign keys on. A PostgreSQL URL (`postgresql://...`) is driven by
asyncpg. URLs are shown with their password hidden (`shown`).
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.util import await_only

DURABLE_FILE = "tillit.sqlite3"
_SQLITE_PRAGMAS = (
    # First: another process may be switching the file to WAL or migrating it (Alembic
    # loads its scripts inside the lock: over 5 s on a loaded two-core machine).
    "PRAGMA busy_timeout=30000",
    "PRAGMA journal_mode=WAL",
    "PRAGMA secure_delete=ON",
    "PRAGMA synchronous=NORMAL",
    "PRAGMA foreign_keys=ON",
    "PRAGMA journal_size_limit=0",  # a checkpointed WAL shrinks back to zero bytes
)
# How long a connection's set-up tries again when SQLite answers "database is locked"
# without waiting for `busy_timeout` (`_execute_when_unlocked`).
LOCKED_RETRY_S = 30.0
LOCKED_PAUSE_S = 0.05


def database_url(configured: str, data_dir: Path) -> str:
    """The SQLAlchemy URL of `server.database_url`, with its async driver."""
    configured = configured.strip()
    if not configured:
        return f"sqlite+aiosqlite:///{Path(data_dir).resolve() / DURABLE_FILE}"
    return with_async_driver(configured)


def with_async_driver(url: str) -> str:
    """`postgresql://` and `sqlite://` URLs with the drivers of this engine (asyncpg,
    aiosqlite); a URL that names its driver is kept."""
    for plain, driver in (("postgresql://", "postgresql+asyncpg://"),
                          ("postgres://", "postgresql+asyncpg://"),
                          ("sqlite://", "sqlite+aiosqlite://")):
        if url.startswith(plain):
            return driver + url[len(plain):]
    return url


def shown(url: str) -> str:
    """The URL as it may be printed or logged: never with its password."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - a malformed URL: say nothing of what it holds
        return "(a malformed database URL)"


def is_sqlite(engine: AsyncEngine) -> bool:
    return engine.dialect.name == "sqlite"


def create_engine(url: str) -> AsyncEngine:
    """An engine for `url` (see `database_url`); a SQLite folder is made if missing."""
    url = with_async_driver(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url)
        event.listen(engine.sync_engine, "connect", _set_sqlite_pragmas)
        return engine
    return create_async_engine(url, pool_pre_ping=True)


def _set_sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    try:
        for pragma in _SQLITE_PRAGMAS:
            _execute_when_unlocked(cursor, pragma)
    finally:
        cursor.close()


def _execute_when_unlocked(cursor: Any, pragma: str) -> None:
    """Run `pragma`, trying again for up to LOCKED_RETRY_S while the file is locked.

    `busy_timeout` does not cover every lock: processes opening a new file together (one
    switching it to WAL, another reading it) were told "database is locked" at once: 2 of
    60 runs of three engines migrating a new file together, 0 of 120 with this retry.
    """
    deadline = time.monotonic() + LOCKED_RETRY_S
    while True:
        try:
            cursor.execute(pragma)
            return
        except Exception as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
        _pause(LOCKED_PAUSE_S)


def _pause(seconds: float) -> None:
    """Sleep without holding up the event loop when called under an async engine."""
    sleep = asyncio.sleep(seconds)
    try:
        await_only(sleep)
    except Exception:  # not in an async engine's greenlet: a plain sleep
        sleep.close()
        time.sleep(seconds)


async def checkpoint(engine: AsyncEngine) -> None:
    """Copy SQLite's write-ahead log back and cut it to zero bytes, so that deleted rows
    (zeroed by `secure_delete`) leave no old copy in the log. PostgreSQL: nothing to do
    (its WAL is the server's, as are its backups)."""
    if not is_sqlite(engine):
        return
    async with engine.connect() as conn:
        await conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")


async def reachable(engine: AsyncEngine, timeout_s: float = 2.0) -> bool:
    """Whether the database answers a `SELECT 1` within `timeout_s` (for /healthz)."""
    try:
        async with asyncio.timeout(timeout_s), engine.connect() as conn:
            await conn.exec_driver_sql("SELECT 1")
    except Exception:  # noqa: BLE001 - any failure means: not now
        return False
    return True
