"""One trip to aiosqlite's thread for a whole group commit.

aiosqlite runs every statement in its connection's own thread, and each `await` of one
hands the result back through the event loop: a batch of N statements is N trips, each
waiting for a turn of a busy loop, and the writes arriving meanwhile wait for the next
batch. `Connection._execute(fn, ...)` (private) runs any function in that thread, and
`Connection._conn` (private) is the `sqlite3.Connection` it owns: with both, a batch is
one trip (bench/README.md, "one aiosqlite trip per group commit").

Without them (a release that renamed them) `commit_runs` does the same statement by
statement; tests/test_library_canary.py names the missing name first.
"""

from __future__ import annotations

import sqlite3
from typing import Any

import aiosqlite

# Consecutive writes of one statement: (sql, [params, ...]).
Runs = list[tuple[str, list[Any]]]


def has_fast_path(conn: aiosqlite.Connection) -> bool:
    """Whether this aiosqlite still has the two private names the fast path uses."""
    return callable(getattr(conn, "_execute", None)) and hasattr(type(conn), "_conn")


async def commit_runs(conn: aiosqlite.Connection, runs: Runs) -> None:
    """Write `runs` in one transaction (`BEGIN IMMEDIATE` … `COMMIT`, rolled back on error)."""
    if has_fast_path(conn):
        await conn._execute(_commit_in_thread, conn._conn, runs)
        return
    await conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in runs:
            await conn.executemany(sql, params)
        await conn.execute("COMMIT")
    except BaseException:
        await conn.execute("ROLLBACK")
        raise


def _commit_in_thread(conn: sqlite3.Connection, runs: Runs) -> None:
    """Runs in the connection's own thread, where aiosqlite runs everything else."""
    conn.execute("BEGIN IMMEDIATE")
    try:
        for sql, params in runs:
            conn.executemany(sql, params)
        conn.execute("COMMIT")
    except BaseException:
        conn.execute("ROLLBACK")
        raise
