"""The app in this process (pytest-aiohttp): fast checks beside the real-server tests.

`create_app` builds every service once at start-up, in dependency order, and closes
them at shutdown; these tests start it on a temporary data folder, read its pages, open
a chat through the visitor namespace, and stop it again, in about a second.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from support import connect_visitor

from tillit.app import create_app
from tillit.chat_server.app_keys import CHATS, SETTINGS, SOCKETIO, STORE
from tillit.chat_server.relay import COUNSELOR_NS, VISITOR_NS
from tillit.chat_server.settings import load_settings
from tillit.counselor_console.app_keys import DURABLE_DB, STAFF_ONLINE
from tillit.counselor_console.routes import END_SOCKETS
from tillit.safety.headers import NO_TRACE_HEADERS

Client = Callable[[web.Application], Awaitable[TestClient]]
JOBS = {"load-monitor", "chat-sweeper", "purge-job", "session-checks", "login-counts",
        "unjoined-sockets"}


def app_for(data_dir: Path) -> web.Application:
    settings = load_settings(environ={"TILLIT_SERVER_DEVELOPMENT": "true"}, overrides={
        "server": {"data_dir": str(data_dir)},
        # A few ms of proof-of-work per chat, as in the real-server tests.
        "abuse": {"pow_bits_base": 8, "pow_fill_steps": [], "pow_rate_steps": []},
    })
    return create_app(settings)


def running_jobs() -> set[str]:
    return {t.get_name() for t in asyncio.all_tasks() if not t.done()} & JOBS


@pytest.fixture
async def client(aiohttp_client: Client, tmp_path: Path) -> TestClient:
    return await aiohttp_client(app_for(tmp_path / "data"))


async def test_healthz_answers_ok_once_the_store_is_open(client: TestClient) -> None:
    res = await client.get("/healthz")
    assert res.status == 200
    assert await res.json() == {"status": "ok"}


async def test_the_visitor_page_leaves_no_trace(client: TestClient) -> None:
    res = await client.get("/")
    assert res.status == 200
    assert "text/html" in res.headers["Content-Type"]
    for name, value in NO_TRACE_HEADERS.items():
        assert res.headers.get(name) == value, name
    assert "Set-Cookie" not in res.headers
    assert "Server" not in res.headers
    assert not client.session.cookie_jar.filter_cookies(client.make_url("/"))


async def test_the_console_login_page_is_served_with_the_same_headers(
    client: TestClient,
) -> None:
    res = await client.get("/console/login")
    assert res.status == 200
    assert "text/html" in res.headers["Content-Type"]
    assert res.headers["Cache-Control"] == "no-store"
    assert res.headers["Content-Security-Policy"] == NO_TRACE_HEADERS["Content-Security-Policy"]


async def test_start_up_builds_every_service_and_shutdown_closes_them(
    aiohttp_client: Client, tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    app = app_for(data)
    assert not data.exists()  # nothing is built before start-up
    client = await aiohttp_client(app)
    # The durable database, both key files and the ephemeral store are open.
    assert {p.name for p in data.iterdir()} >= {"tillit.sqlite3", "ephemeral.sqlite3",
                                                 "notes.key", "totp.key"}
    durable = app[DURABLE_DB]
    async with durable.connect() as conn:
        assert (await conn.exec_driver_sql("SELECT count(*) FROM accounts")).scalar() == 0
    assert durable.sync_engine.pool.checkedin() >= 1  # pooled connections to the file
    assert app[CHATS].store is app[STORE]
    # Both namespaces are registered, sharing one traffic guard.
    handlers = app[SOCKETIO].namespace_handlers
    assert set(handlers) == {VISITOR_NS, COUNSELOR_NS}
    assert handlers[VISITOR_NS].guard is handlers[COUNSELOR_NS].guard
    assert handlers[COUNSELOR_NS].staff and not handlers[VISITOR_NS].staff
    assert await app[STAFF_ONLINE]() == set()
    assert await app[END_SOCKETS](username="nobody") == 0
    assert running_jobs() == JOBS

    await client.close()
    assert running_jobs() == set()
    # The engine was disposed of: no connection to the durable database is left open.
    assert durable.sync_engine.pool.checkedin() == 0
    assert durable.sync_engine.pool.checkedout() == 0


async def test_a_visitor_opens_a_chat_that_the_chat_service_queues(
    client: TestClient,
) -> None:
    visitor = await connect_visitor(str(client.make_url("")).rstrip("/"))
    try:
        ack = await visitor.start(lang="sv")
        assert ack["ok"] and ack["position"] == 1
        chats = client.app[CHATS]
        assert [c.chat_id for c in await chats.queue()] == [ack["chat_id"]]
        # The sweeper sees this process's visitor socket through the shared registry.
        assert set(chats.visitors_here()) == {ack["chat_id"]}
        assert (await visitor.end())["ok"]
    finally:
        await visitor.disconnect()
    assert client.app[SETTINGS].server.development
