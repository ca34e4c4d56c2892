"""The durable database for tests: SQLite in a temporary folder, or a throwaway
PostgreSQL database on 127.0.0.1:5432 (created per test, dropped after).

Without a reachable PostgreSQL the PostgreSQL variants skip, unless CI is set: there
they fail (`.ci/run` starts one). TILLIT_TEST_PG_URL names another server (its
maintenance database, with a role allowed to create databases).

The fixtures `durable_url` and `durable` are in durable_fixtures.py, a plugin: a test
module that uses them says `pytest_plugins = ["durable_fixtures"]`.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.durable.engine import database_url
from tillit.durable.migrate import open_migrated

PG_ADMIN_URL = os.environ.get("TILLIT_TEST_PG_URL",
                              "postgresql://postgres@127.0.0.1:5432/postgres")
DATABASES = ["sqlite", "postgresql"]


async def _pg_admin() -> asyncpg.Connection:
    try:
        return await asyncpg.connect(PG_ADMIN_URL, timeout=5)
    except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
        message = f"no PostgreSQL at {make_url(PG_ADMIN_URL).render_as_string()}: {exc}"
        if os.environ.get("CI"):
            pytest.fail(message + " (CI is set: .ci/run starts one)")
        pytest.skip(message)


async def create_pg_database() -> str:
    """A new, empty database (tillit_test_<hex>); its plain postgresql:// URL."""
    admin = await _pg_admin()
    name = f"tillit_test_{secrets.token_hex(6)}"
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    return make_url(PG_ADMIN_URL).set(database=name).render_as_string(hide_password=False)


async def drop_pg_database(url: str) -> None:
    name = make_url(url).database
    admin = await _pg_admin()
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


async def open_sqlite(data_dir: Path) -> AsyncEngine:
    """The durable SQLite database of a data folder, migrated (as the server opens it)."""
    return await open_migrated(database_url("", data_dir))


async def run_sql(engine: AsyncEngine, sql: str, **params: Any) -> list[Any]:
    """One statement in its own transaction, for a test to set up or look at rows."""
    async with engine.begin() as conn:
        result = await conn.execute(text(sql), params)
        return list(result.all()) if result.returns_rows else []
