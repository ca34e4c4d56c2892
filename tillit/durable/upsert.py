"""`INSERT ... ON CONFLICT` for both databases: SQLAlchemy spells it per dialect."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncConnection


def insert_statement(conn: AsyncConnection, table: Table) -> Any:
    """The dialect's INSERT, which knows `on_conflict_do_nothing` and friends."""
    return (sqlite.insert if conn.dialect.name == "sqlite" else postgresql.insert)(table)


_insert = insert_statement


async def upsert(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> None:
    """Insert a row, or replace the columns of the one with the same primary key."""
    stmt = _insert(conn, table).values(values)
    key = [c.name for c in table.primary_key.columns]
    await conn.execute(stmt.on_conflict_do_update(
        index_elements=key,
        set_={name: stmt.excluded[name] for name in values if name not in key}))


async def insert_or_ignore(conn: AsyncConnection, table: Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same key exists; True if inserted."""
    stmt = _insert(conn, table).values(values).on_conflict_do_nothing()
    return (await conn.execute(stmt)).rowcount == 1
