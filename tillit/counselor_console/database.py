"""The durable store: staff accounts, sessions and the audit log, in one SQLite file."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from tillit.safety.sqlite_files import open_database

DURABLE_FILE = "tillit.sqlite3"

# display_name is NULL only for accounts made before every account had to have one: the
# admin page asks for it, and visitors read "your counselor" meanwhile.
ACCOUNTS_TABLE = """
CREATE TABLE IF NOT EXISTS {name} (
    username TEXT PRIMARY KEY,
    display_name TEXT,
    role TEXT NOT NULL CHECK (role IN ('counselor', 'supervisor', 'admin')),
    password_hash TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    languages TEXT NOT NULL DEFAULT '[]',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_day TEXT NOT NULL
);
"""
ACCOUNT_COLUMNS = ("username, display_name, role, password_hash, totp_secret, totp_last_step, "
                   "languages, disabled, created_day")

SCHEMA = ACCOUNTS_TABLE.format(name="accounts") + """
CREATE TABLE IF NOT EXISTS sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL
);
-- Which process-independent Socket.IO sid belongs to which session, so that a logout
-- handled by one process can disconnect the console's socket on another (through the
-- Socket.IO manager). Rows go with the socket, or with the session.
CREATE TABLE IF NOT EXISTS console_sockets (
    sid TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    username TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
CREATE INDEX IF NOT EXISTS audit_ts ON audit (ts);
"""


async def open_durable(data_dir: Path) -> aiosqlite.Connection:
    conn = await open_database(data_dir / DURABLE_FILE)
    await conn.executescript(SCHEMA)
    await _migrate_display_names(conn)
    return conn


async def _display_name_required(conn: aiosqlite.Connection) -> bool:
    rows = await conn.execute_fetchall("PRAGMA table_info(accounts)")
    return any(r["name"] == "display_name" and r["notnull"] for r in rows)


async def _migrate_display_names(conn: aiosqlite.Connection) -> None:
    """Databases from before display names: the column becomes nullable, in place.

    Such accounts were given their username as display name, which visitors then read;
    those become NULL (the admin page asks for a real one). SQLite cannot drop a NOT NULL,
    so the table is rebuilt (sqlite.org/lang_altertable.html, "other kinds of table schema
    changes"), with foreign keys off so that dropping the old table does not cascade
    into sessions. Runs once: afterwards the column is nullable.
    """
    if not await _display_name_required(conn):
        return
    await conn.execute("PRAGMA foreign_keys=OFF")
    try:
        await conn.execute("BEGIN IMMEDIATE")
        if await _display_name_required(conn):  # another process may have been first
            await conn.execute(ACCOUNTS_TABLE.format(name="accounts_new"))
            await conn.execute(
                f"INSERT INTO accounts_new ({ACCOUNT_COLUMNS}) SELECT {ACCOUNT_COLUMNS} "
                "FROM accounts")
            await conn.execute(
                "UPDATE accounts_new SET display_name = NULL WHERE display_name = username")
            await conn.execute("DROP TABLE accounts")
            await conn.execute("ALTER TABLE accounts_new RENAME TO accounts")
            if await conn.execute_fetchall("PRAGMA foreign_key_check"):
                raise RuntimeError("accounts migration broke a foreign key")
        await conn.execute("COMMIT")
    except BaseException:
        if conn.in_transaction:
            await conn.execute("ROLLBACK")
        raise
    finally:
        await conn.execute("PRAGMA foreign_keys=ON")
