"""Fixtures of the durable database on both engines (tests/durable_db.py says how).

A plugin, not a module to import from: `pytest_plugins = ["durable_fixtures"]`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from durable_db import DATABASES, create_pg_database, drop_pg_database
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.durable.engine import database_url
from tillit.durable.migrate import open_migrated


@pytest.fixture(params=DATABASES)
async def durable_url(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[str]:
    """The URL of an empty durable database, once on SQLite and once on PostgreSQL."""
    if request.param == "sqlite":
        yield database_url("", tmp_path)
        return
    url = await create_pg_database()
    try:
        yield url
    finally:
        await drop_pg_database(url)


@pytest.fixture
async def durable(durable_url: str) -> AsyncIterator[AsyncEngine]:
    """A migrated durable database on each engine (see `durable_url`)."""
    engine = await open_migrated(durable_url)
    try:
        yield engine
    finally:
        await engine.dispose()
