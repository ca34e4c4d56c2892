"""Accounts an auditor would accept: throttling, sessions, CSRF, roles and the admin page."""

from __future__ import annotations

import re
import sqlite3

import pytest
import socketio
from durable_db import run_sql
from protocol_client import CounselorClient, console_login, error_code, ok
from sqlalchemy.ext.asyncio import AsyncEngine
from support import (
    CSRF_FIELD,
    TEST_USER_AGENT,
    Account,
    MakeCounselor,
    ServerProcess,
    http_session,
    login_cookie,
)

from tillit.counselor_console import accounts, sessions
from tillit.counselor_console.totp_crypto import TotpSealer

# `durable`: each test once on SQLite and once on PostgreSQL (tests/durable_db.py).
pytest_plugins = ["durable_fixtures"]


async def test_twelve_wrong_logins_in_a_row_are_throttled(server: ServerProcess) -> None:
    acct = server.add_user("counselor_lyra_twelve")
    statuses = []
    for _ in range(12):
        status, body, cookie, _ = await console_login(
            server.base_url, acct.username, "fel-lösenord-igen", acct.wrong_totp())
        assert cookie is None
        statuses.append(status)
    assert statuses[:5] == [401] * 5 and statuses[5:] == [429] * 7, statuses
    assert body["error"]["code"] == "rate_limited"
    # While this account is throttled, even the right password and code are refused.
    status, _, cookie, _ = await console_login(
        server.base_url, acct.username, acct.password, acct.next_totp())
    assert (status, cookie) == (429, None)
    with sqlite3.connect(server.data_dir / "tillit.sqlite3") as conn:
        actions = [a for (a,) in conn.execute(
            "SELECT action FROM audit WHERE actor = ?", (acct.username,))]
    # Failures of a real account are audited one by one; throttled attempts only counted.
    assert actions.count("login.failed") == 5 and "login.throttled" not in actions, actions


async def test_session_expiry_and_idle_timeout_with_a_mocked_clock(durable: AsyncEngine) -> None:
    conn = durable  # on SQLite and on PostgreSQL (durable_db.py)
    await accounts.create(conn, "counselor_orion", "ett-långt-lösenord-42", "counselor",
                          display_name="Orion", sealer=TotpSealer(bytes(32)))
    t0 = 1_750_000_000.0
    token = await sessions.start(conn, "counselor_orion")
    await run_sql(conn, "UPDATE sessions SET created_at = :t, last_seen = :t", t=t0)
    max_age, idle = 3600.0, 600.0
    # Active use keeps it alive past the idle limit...
    for minute in (9, 18, 27, 36, 45, 54):
        live = await sessions.lookup(conn, token, max_age, idle, now=t0 + minute * 60)
        assert live is not None and live.username == "counselor_orion", minute
    # ...but not past the absolute age.
    assert await sessions.lookup(conn, token, max_age, idle, now=t0 + 3601) is None
    assert await sessions.lookup(conn, token, max_age, idle, now=t0 + 60) is None  # gone

    token = await sessions.start(conn, "counselor_orion")
    await run_sql(conn, "UPDATE sessions SET created_at = :t, last_seen = :t", t=t0)
    assert await sessions.lookup(conn, token, max_age, idle, now=t0 + 599) is not None
    assert await sessions.lookup(conn, token, max_age, idle, now=t0 + 599 + 601) is None
    assert await sessions.lookup(conn, token, max_age, idle, now=t0 + 1) is None  # deleted


async def test_logout_needs_csrf_and_ends_the_session(server: ServerProcess) -> None:
    acct = server.add_user("counselor_nova_logout")
    cookie = await login_cookie(server, acct)
    async with http_session(cookie) as client:
        async with client.post(f"{server.base_url}/api/console/logout") as resp:
            assert resp.status == 403
        async with client.get(f"{server.base_url}/console") as resp:
            assert resp.status == 200
            page = await resp.text()
        csrf = re.search(r'"csrf_token": "([^"]+)"', page).group(1)
        async with client.post(f"{server.base_url}/api/console/logout",
                               headers={"X-CSRF-Token": csrf,
                                        "Origin": "https://elsewhere.example"}) as resp:
            assert resp.status == 403
        async with client.post(f"{server.base_url}/api/console/logout",
                               headers={"X-CSRF-Token": csrf}) as resp:
            assert resp.status == 200
        async with client.get(f"{server.base_url}/console", allow_redirects=False) as resp:
            assert resp.status == 302 and resp.headers["Location"] == "/console/login"
    with pytest.raises(socketio.exceptions.ConnectionError):
        await CounselorClient(server.base_url, cookie, TEST_USER_AGENT).connect()


async def test_a_counselor_cannot_reach_supervisor_or_admin_pages(server: ServerProcess) -> None:
    counselor = server.add_user("counselor_iris_pages")
    supervisor = server.add_user("supervisor_iris_pages", role="supervisor")
    admin = server.add_user("admin_iris_pages", role="admin")
    protected = ["/console/admin"]
    async with http_session() as anon:
        for path in ("/console/stats", "/console/supervisor", "/console/statistics"):
            async with anon.get(server.base_url + path, allow_redirects=False) as resp:
                if resp.status != 404:
                    protected.append(path)  # the supervisor pages (issue 5), wherever they are
        for path in protected:
            async with anon.get(server.base_url + path, allow_redirects=False) as resp:
                assert resp.status in (302, 401), path
    async with http_session(await login_cookie(server, counselor)) as client:
        for path in protected:
            async with client.get(server.base_url + path, allow_redirects=False) as resp:
                assert resp.status == 403, path
        async with client.post(f"{server.base_url}/console/admin/accounts",
                               data={"username": "x", "role": "admin"}) as resp:
            assert resp.status == 403
    async with http_session(await login_cookie(server, supervisor)) as client:
        async with client.get(f"{server.base_url}/console/admin") as resp:
            assert resp.status == 403
    async with http_session(await login_cookie(server, admin)) as client:
        async with client.get(f"{server.base_url}/console/admin") as resp:
            assert resp.status == 200
            assert counselor.username in await resp.text()


async def test_admin_creates_disables_and_resets_accounts_with_csrf(
    server: ServerProcess, make_counselor: MakeCounselor
) -> None:
    admin = server.add_user("admin_sirius", role="admin")
    base = server.base_url
    async with http_session(await login_cookie(server, admin)) as client:
        async with client.get(f"{base}/console/admin") as resp:
            csrf = CSRF_FIELD.search(await resp.text()).group(1)
        form = {"username": "counselor_made_by_admin", "role": "counselor",
                "display_name": "Aster", "languages": "sv,ar"}
        async with client.post(f"{base}/console/admin/accounts", data=form) as resp:
            assert resp.status == 403  # no CSRF token
        async with client.post(f"{base}/console/admin/accounts",
                               data={**form, "csrf_token": "wrong"}) as resp:
            assert resp.status == 403
        async with client.post(f"{base}/console/admin/accounts",
                               data={**form, "languages": "klingon", "csrf_token": csrf}) as resp:
            assert resp.status == 400
        async with client.post(f"{base}/console/admin/accounts",
                               data={**form, "csrf_token": csrf}) as resp:
            assert resp.status == 200
            page = await resp.text()
        password = re.search(r'id="secret-password">([^<]+)<', page).group(1)
        secret = re.search(r'id="secret-totp">([^<]+)<', page).group(1)
        made = Account("counselor_made_by_admin", password, "counselor", secret)
        counselor = await CounselorClient.login(base, made.username, password, made.next_totp(),
                                                TEST_USER_AGENT)
        await counselor.connect()
        ok(await counselor.queue_list())

        path = f"{base}/console/admin/accounts/{made.username}/disable"
        async with client.post(path, data={}) as resp:
            assert resp.status == 403
        async with client.post(path, data={"csrf_token": csrf}, allow_redirects=False) as resp:
            assert resp.status == 303
        # Disabling ends the sessions: the open socket's events stop within the recheck,
        # a new connection and a new login are refused at once.
        with pytest.raises(socketio.exceptions.ConnectionError):
            await counselor.connect()
        status, *_ = await console_login(base, made.username, password, made.next_totp())
        assert status == 401

        path = f"{base}/console/admin/accounts/{made.username}/reset"
        async with client.post(path, data={"csrf_token": csrf}) as resp:
            page = await resp.text()
        new_password = re.search(r'id="secret-password">([^<]+)<', page).group(1)
        assert new_password != password
        async with client.post(f"{base}/console/admin/accounts/{made.username}/enable",
                               data={"csrf_token": csrf}, allow_redirects=False) as resp:
            assert resp.status == 303
        secret = re.search(r'id="secret-totp">([^<]+)<', page).group(1)
        again = Account(made.username, new_password, "counselor", secret)
        status, *_ = await console_login(base, made.username, new_password, again.next_totp())
        assert status == 200
    with sqlite3.connect(server.data_dir / "tillit.sqlite3") as conn:
        actions = [a for (a,) in conn.execute(
            "SELECT action FROM audit WHERE actor = ? ORDER BY id", (admin.username,))]
    assert actions[-4:] == ["account.create", "account.disable", "account.reset",
                            "account.enable"]


async def test_a_supervisor_socket_may_not_take_chats(server: ServerProcess) -> None:
    supervisor = server.add_user("supervisor_lyra_socket", role="supervisor")
    client = CounselorClient(server.base_url, await login_cookie(server, supervisor),
                             TEST_USER_AGENT)
    await client.connect()
    try:
        for ack in (await client.queue_list(), await client.take_next(), await client.mine(),
                    await client.note_list(), await client.staff_online()):
            assert error_code(ack) == "forbidden", ack
    finally:
        await client.disconnect()


async def test_admin_forms_posted_by_a_browser_with_origin_null_are_accepted(
    server: ServerProcess,
) -> None:
    """Under `Referrer-Policy: no-referrer` Chromium posts a same-origin form with
    `Origin: null` (seen through nginx, tests/browser/test_nginx_deployment.py): the
    admin page refused every form with 403. `Sec-Fetch-Site` decides instead."""
    admin = server.add_user("admin_nova_forms", role="admin")
    target = server.add_user("counselor_pavo_forms")
    path = f"{server.base_url}/console/admin/accounts/{target.username}/disable"
    async with http_session(await login_cookie(server, admin)) as client:
        async with client.get(f"{server.base_url}/console/admin") as resp:
            csrf = CSRF_FIELD.search(await resp.text()).group(1)
        for headers in ({"Origin": "null", "Sec-Fetch-Site": "cross-site"},
                        {"Origin": "https://elsewhere.example", "Sec-Fetch-Site": "same-origin"},
                        {"Origin": "null", "Sec-Fetch-Site": "same-site"}):
            async with client.post(path, data={"csrf_token": csrf}, headers=headers,
                                   allow_redirects=False) as resp:
                assert resp.status == 403, headers
        async with client.post(path, data={"csrf_token": csrf}, allow_redirects=False,
                               headers={"Origin": "null", "Sec-Fetch-Site": "same-origin"}
                               ) as resp:
            assert resp.status == 303
