"""Go-live security of staff logins: no global lockout, race-free per-account limit,
one TOTP code for one login, no audit flood and no attacker-chosen names on disk."""

from __future__ import annotations

import asyncio
import base64
import json
import sqlite3
import time
from pathlib import Path

import aiohttp
import pytest
import socketio
from protocol_client import console_login
from sqlalchemy.ext.asyncio import AsyncEngine
from support import (
    PRODUCTION_ENV,
    TEST_USER_AGENT,
    Account,
    ServerProcess,
    server_fixture,
    start_server,
)

# `durable`: once on SQLite and once on PostgreSQL (tests/durable_fixtures.py).
pytest_plugins = ["durable_fixtures"]

login_server = server_fixture(
    {"TILLIT_CONSOLE_LOGIN_AUDIT_INTERVAL_S": "1"},
    doc="A server that writes its login counts every second instead of every minute.")


def audit_rows(srv: ServerProcess) -> list[tuple[str | None, str, str | None]]:
    with sqlite3.connect(srv.data_dir / "tillit.sqlite3") as conn:
        return list(conn.execute("SELECT actor, action, detail FROM audit ORDER BY id"))


async def test_random_name_failures_never_lock_out_a_correct_admin_login(
    login_server: ServerProcess,
) -> None:
    admin = login_server.add_user("admin_vega_nolock", role="admin")
    names = [f"guess_zq{i:03d}" for i in range(60)]
    results = await asyncio.gather(*(
        console_login(login_server.base_url, name, "x" * 12, "123456", TEST_USER_AGENT)
        for name in names))
    assert [r[0] for r in results] == [401] * 60
    # The old global limit (50) answered 429 here for 15 minutes.
    status, body, cookie, _ = await console_login(
        login_server.base_url, admin.username, admin.password, admin.next_totp())
    assert status == 200 and cookie, body
    # No durable row carries a name the attacker chose; the failures are one count.
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        rows = audit_rows(login_server)
        summed = sum(_detail(d).get("failed_unknown", 0)
                     for _, a, d in rows if a == "login.summary")
        if summed >= 60:
            break
        await asyncio.sleep(0.5)
    assert summed == 60, rows
    raw = b"".join(p.read_bytes() for p in login_server.data_dir.glob("tillit.sqlite3*"))
    assert b"guess_zq" not in raw


async def test_parallel_wrong_guesses_for_one_account_meet_the_per_account_limit(
    login_server: ServerProcess,
) -> None:
    acct = login_server.add_user("counselor_lyra_parallel")
    results = await asyncio.gather(*(
        console_login(login_server.base_url, acct.username, f"fel-lösenord-{i:02d}",
                      acct.wrong_totp(), TEST_USER_AGENT)
        for i in range(40)))
    statuses = [r[0] for r in results]
    # Before: all 40 reached Argon2 (401) and none was refused.
    assert statuses.count(401) <= 5 and statuses.count(401) + statuses.count(429) == 40, statuses
    assert statuses.count(429) >= 35
    failed = [a for actor, a, _ in audit_rows(login_server)
              if actor == acct.username and a == "login.failed"]
    assert len(failed) == statuses.count(401)


async def test_throttled_logins_are_counted_not_written_one_row_each(
    login_server: ServerProcess,
) -> None:
    acct = login_server.add_user("counselor_orion_flood")
    for _ in range(5):
        status, *_ = await console_login(
            login_server.base_url, acct.username, "fel-lösenord-igen", acct.wrong_totp())
        assert status == 401
    before = len(audit_rows(login_server))
    started = time.monotonic()
    for batch in range(4):
        results = await asyncio.gather(*(
            console_login(login_server.base_url, acct.username.upper() if i % 2 else
                          acct.username, "fel-lösenord-igen", "000000", TEST_USER_AGENT)
            for i in range(100)))
        assert {r[0] for r in results} == {429}, batch
    elapsed = time.monotonic() - started
    await asyncio.sleep(2.5)  # two periods of the summary
    rows = audit_rows(login_server)[before:]
    # 400 throttled attempts: a few summary rows (one per second at most), not 400.
    assert len(rows) <= 2 + int(elapsed) + 3, rows
    assert all(a == "login.summary" for _, a, _ in rows), rows
    assert sum(_detail(d).get("throttled", 0) for _, _, d in rows) == 400


async def test_six_parallel_logins_with_one_code_give_one_session(
    login_server: ServerProcess,
) -> None:
    acct = login_server.add_user("counselor_nova_replay")
    code = acct.next_totp()
    results = await asyncio.gather(*(
        console_login(login_server.base_url, acct.username, acct.password, code,
                      TEST_USER_AGENT)
        for _ in range(6)))
    statuses = [r[0] for r in results]
    assert statuses.count(200) == 1, statuses
    assert sum(1 for r in results if r[2]) == 1
    with sqlite3.connect(login_server.data_dir / "tillit.sqlite3") as conn:
        (sessions,) = conn.execute(
            "SELECT COUNT(*) FROM sessions WHERE username = ?", (acct.username,)).fetchone()
    assert sessions == 1


def _detail(text: str | None) -> dict:
    return json.loads(text) if text else {}


def test_the_per_name_memory_is_bounded() -> None:
    from tillit.safety.login_throttle import LoginThrottle

    throttle = LoginThrottle(per_account=2, window_s=900, max_concurrent=2, max_names=100)
    for i in range(1000):
        assert throttle.reserve(f"name_{i}", now=float(i))
    assert len(throttle._attempts) <= 100
    assert throttle.reserve("victim", now=2000.0) and throttle.reserve("victim", now=2001.0)
    assert not throttle.reserve("VICTIM", now=2002.0)
    throttle.succeeded("victim")
    assert throttle.reserve("victim", now=2003.0)


def _cookie_attrs(header: str) -> tuple[str, dict[str, str]]:
    first, *rest = [part.strip() for part in header.split(";")]
    attrs = {a.split("=", 1)[0].lower(): a for a in rest if a}
    return first.split("=", 1)[0], attrs


async def test_production_cookie_is_host_prefixed_secure_and_lasts_the_browser_session(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    srv = start_server(tmp_path_factory.mktemp("tillit-prod"), PRODUCTION_ENV)
    try:
        acct = srv.add_user("counselor_aster_prod")
        status, body, _, set_cookies = await console_login(
            srv.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT)
        assert status == 200, body
        (header,) = [h for h in set_cookies if "tillit_session=" in h]
        name, attrs = _cookie_attrs(header)
        assert name == "__Host-tillit_session", header
        assert "secure" in attrs and "httponly" in attrs, header
        assert attrs.get("path") == "Path=/" and attrs["samesite"].lower() == "samesite=strict"
        assert "max-age" not in attrs and "expires" not in attrs and "domain" not in attrs, header
        token = header.split(";", 1)[0].split("=", 1)[1]
        async with aiohttp.ClientSession(
            headers={"User-Agent": TEST_USER_AGENT}, cookie_jar=aiohttp.DummyCookieJar()
        ) as client:
            async with client.get(f"{srv.base_url}/console", allow_redirects=False,
                                  headers={"Cookie": f"__Host-tillit_session={token}"}) as resp:
                assert resp.status == 200
            # The unprefixed name (what a plain-http page could set) opens nothing.
            async with client.get(f"{srv.base_url}/console", allow_redirects=False,
                                  headers={"Cookie": f"tillit_session={token}"}) as resp:
                assert resp.status == 302
        sio = socketio.AsyncClient(reconnection=False)
        await sio.connect(srv.base_url, namespaces=["/counselor"], transports=["websocket"],
                          headers={"User-Agent": TEST_USER_AGENT,
                                   "Cookie": f"__Host-tillit_session={token}"},
                          wait_timeout=10)
        assert sio.connected
        await sio.disconnect()
    finally:
        srv.stop()


async def test_development_cookie_drops_secure_and_the_prefix_for_plain_http(
    login_server: ServerProcess,
) -> None:
    acct = login_server.add_user("counselor_aster_dev")
    status, _, cookie, set_cookies = await console_login(
        login_server.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT)
    assert status == 200 and cookie
    (header,) = [h for h in set_cookies if "tillit_session=" in h]
    name, attrs = _cookie_attrs(header)
    assert name == "tillit_session" and "secure" not in attrs, header
    assert "httponly" in attrs and "max-age" not in attrs and "expires" not in attrs, header


async def test_totp_secrets_are_sealed_at_rest_and_old_clear_ones_are_migrated(
    tmp_path: Path,
) -> None:
    from argon2 import PasswordHasher
    from durable_db import open_sqlite, run_sql

    from tillit.counselor_console.accounts import new_totp_secret

    srv = ServerProcess(tmp_path)
    # A database as older versions wrote it: the TOTP secret in clear.
    old = Account("counselor_aster_legacy", "ett-långt-lösenord-legacy", "counselor",
                  new_totp_secret())
    db = await open_sqlite(srv.data_dir)
    await run_sql(
        db, "INSERT INTO accounts (username, display_name, role, password_hash, totp_secret, "
        "created_day) VALUES (:name, :name, 'counselor', :hash, :secret, '2026-01-01')",
        name=old.username, hash=PasswordHasher().hash(old.password), secret=old.totp_secret)
    await db.dispose()
    assert old.totp_secret.encode() in (srv.data_dir / "tillit.sqlite3").read_bytes()

    srv.start()
    try:
        status, body, cookie, _ = await console_login(
            srv.base_url, old.username, old.password, old.next_totp(), TEST_USER_AGENT)
        assert status == 200 and cookie, body
        new = srv.add_user("counselor_aster_sealed")  # the CLI, another process
        admin = srv.add_user("admin_aster_sealed", role="admin")
        status, body, *_ = await console_login(
            srv.base_url, new.username, new.password, new.next_totp(), TEST_USER_AGENT)
        assert status == 200, body
    finally:
        srv.stop()

    key = srv.data_dir / "totp.key"
    assert key.stat().st_mode & 0o777 == 0o600 and len(key.read_bytes()) == 32
    raw = b"".join(p.read_bytes() for p in srv.data_dir.glob("tillit.sqlite3*"))
    for acct in (old, new, admin):
        assert acct.totp_secret.encode() not in raw, acct.username
        assert base64.b32decode(acct.totp_secret) not in raw, acct.username
    with sqlite3.connect(srv.data_dir / "tillit.sqlite3") as db:
        stored = [s for (s,) in db.execute("SELECT totp_secret FROM accounts")]
    assert len(stored) == 3 and all(s.startswith("v1:") for s in stored), stored


async def test_a_data_folder_restored_without_its_totp_key_refuses_to_start(
    tmp_path: Path, durable: AsyncEngine,
) -> None:
    """On SQLite and on PostgreSQL (`durable`, tests/durable_fixtures.py)."""
    from tillit.chat_server.settings import load_settings
    from tillit.counselor_console import accounts
    from tillit.counselor_console.totp_crypto import KeyFileMissing, open_sealer

    settings = load_settings(None, overrides={"server": {"data_dir": str(tmp_path)}})
    sealer = await open_sealer(durable, settings)
    await accounts.create(durable, "counselor_aster_nokey", "ett-långt-lösenord-42",
                          "counselor", display_name="Aster", sealer=sealer)
    (tmp_path / "totp.key").unlink()
    with pytest.raises(KeyFileMissing):
        await open_sealer(durable, settings)
    assert not (tmp_path / "totp.key").exists()  # no new key that opens nothing


async def test_a_correct_login_is_not_queued_behind_a_flood_of_invented_names(
    tmp_path: Path,
) -> None:
    srv = start_server(tmp_path)
    flood: list[asyncio.Task] = []
    try:
        admin = srv.add_user("admin_vega_flood", role="admin")
        flood = [asyncio.create_task(console_login(
            srv.base_url, f"invented_{i}", "x" * 12, "123456", TEST_USER_AGENT))
            for i in range(150)]
        await asyncio.sleep(1.0)  # the flood is queued for the password checks
        started = time.monotonic()
        status, body, cookie, _ = await console_login(
            srv.base_url, admin.username, admin.password, admin.next_totp(), TEST_USER_AGENT)
        took = time.monotonic() - started
        assert status == 200 and cookie, body
        # Behind the flood (2 checks at once, about 0.2-0.5 s each) it would take 15-40 s
        # and the TOTP code could expire on the way.
        assert took < 10, took
        assert sum(task.done() for task in flood) < 120
    finally:
        for task in flood:
            task.cancel()
        await asyncio.gather(*flood, return_exceptions=True)
        srv.stop()


async def test_the_priority_gate_lets_the_first_lane_in_first() -> None:
    from tillit.safety.login_throttle import PriorityGate

    gate = PriorityGate(1)
    order: list[str] = []
    release = asyncio.Event()

    async def hold(name: str, first: bool) -> None:
        async with gate.slot(first=first):
            order.append(name)
            if name == "holder":
                await release.wait()

    holder = asyncio.create_task(hold("holder", False))
    await asyncio.sleep(0)
    others = [asyncio.create_task(hold(f"low{i}", False)) for i in range(3)]
    await asyncio.sleep(0)
    cancelled = asyncio.create_task(hold("gone", True))
    high = asyncio.create_task(hold("high", True))
    await asyncio.sleep(0)
    cancelled.cancel()
    await asyncio.sleep(0)
    release.set()
    await asyncio.gather(holder, high, *others)
    assert order == ["holder", "high", "low0", "low1", "low2"]
    assert gate.busy == 0 and gate.waiting == 0
