"""SQLite files that forget: WAL, `secure_delete`, and checkpoints that truncate the WAL.

With `secure_delete=ON` SQLite overwrites deleted rows with zeros; with
`wal_checkpoint(TRUNCATE)` the write-ahead log, which still holds the old
frames, is copied back and cut to zero bytes. Together they keep a deleted
chat's ciphertext out of the files on disk.
"""

from __future__ import annotations

import os
from pathlib import Path

import aiosqlite


async def open_database(path: Path) -> aiosqlite.Connection:
    path.parent.mkdir(parents=True, exist_ok=True)
    os.chmod(path.parent, 0o700)
    conn = await aiosqlite.connect(path, isolation_level=None)
    os.chmod(path, 0o600)
    await conn.execute("PRAGMA journal_mode=WAL")
    await conn.execute("PRAGMA secure_delete=ON")
    await conn.execute("PRAGMA synchronous=NORMAL")
    await conn.execute("PRAGMA busy_timeout=5000")
    await conn.execute("PRAGMA foreign_keys=ON")
    # Never let a long-lived WAL keep old frames: truncate it at every checkpoint.
    await conn.execute("PRAGMA journal_size_limit=0")
    conn.row_factory = aiosqlite.Row
    return conn


async def checkpoint(conn: aiosqlite.Connection) -> None:
    """Copy the WAL into the database and cut it to zero bytes."""
    await conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
