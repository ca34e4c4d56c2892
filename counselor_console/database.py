"""The durable store: staff accounts, sessions and the audit log, in one SQLite file."""

from __future__ import annotations

from pathlib import Path

import aiosqlite

from safety.sqlite_files import open_database

DURABLE_FILE = "tillit.sqlite3"

SCHEMA = """
CREATE TABLE IF NOT EXISTS accounts (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('counselor', 'supervisor', 'admin')),
    password_hash TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    languages TEXT NOT NULL DEFAULT '[]',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_day TEXT NOT NULL
);
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
    return conn
