"""Display names (visitors never read a login) and staff pages that fit each role:
the landing page per role, navigation and logout on every staff page, a styled 403."""

from __future__ import annotations

import json
import re
import sqlite3
import subprocess
import sys
from pathlib import Path

from durable_db import open_sqlite, run_sql
from protocol_client import CounselorClient, console_login, ok, open_chat
from support import (
    CSRF_FIELD,
    PRE_ALEMBIC_ACCOUNTS,
    ROOT,
    TEST_USER_AGENT,
    Account,
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    http_session,
)

from tillit.counselor_console import accounts, sessions


async def login(srv: ServerProcess, acct: Account) -> tuple[str, dict]:
    status, body, cookie, _ = await console_login(
        srv.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT)
    assert status == 200 and cookie, body
    return cookie, body


def visitor_payloads(visitor) -> str:  # noqa: ANN001 - a protocol_client.VisitorClient
    return json.dumps([data for _, data in visitor.events], ensure_ascii=False)


# --------------------------------------------------------------------- point 9: display names


def test_user_add_without_display_name_fails_with_a_clear_message(
    server: ServerProcess,
) -> None:
    def run(*extra: str) -> subprocess.CompletedProcess[bytes]:
        return subprocess.run(
            [sys.executable, "-m", "tillit", "user", "add", "counselor_aster_nameless",
             "--role", "counselor", "--data-dir", str(server.data_dir), *extra],
            input=b"ett-langt-losenord-42\n", capture_output=True, cwd=ROOT,
            env=server._env(), timeout=30)

    res = run()
    assert res.returncode == 2
    err = res.stderr.decode()
    assert "--display-name is required" in err and "visitors see" in err, err
    same = run("--display-name", "counselor_aster_nameless")
    assert same.returncode == 2 and b"must differ from the username" in same.stderr
    blank = run("--display-name", "   ")
    assert blank.returncode == 2 and b"--display-name is required" in blank.stderr
    listing = server.cli("user", "list", "--data-dir", str(server.data_dir))
    assert "counselor_aster_nameless" not in listing
    made = run("--display-name", "Aster")
    assert made.returncode == 0, made.stderr
    listing = server.cli("user", "list", "--data-dir", str(server.data_dir))
    assert "counselor_aster_nameless\tAster\tcounselor\tactive" in listing


async def test_the_visitor_reads_the_display_name_and_never_the_login_name(
    server: ServerProcess, make_counselor: MakeCounselor, make_visitor: MakeVisitor
) -> None:
    counselor = await make_counselor(display_name="Aster Blomkvist")
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor, lang="sv")
    assigned = visitor.events_named("chat:assigned")[-1]
    assert assigned["counselor_name"] == "Aster Blomkvist"
    resumed = ok(await visitor.resume())
    assert resumed["counselor_name"] == "Aster Blomkvist"
    assert counselor.account.username not in visitor_payloads(visitor) + json.dumps(resumed)
    assert chat_id


async def test_an_account_without_a_display_name_shows_none_to_the_visitor(
    server: ServerProcess, make_visitor: MakeVisitor
) -> None:
    acct = server.add_user("counselor_aster_legacy")
    admin = server.add_user("admin_aster_names", role="admin")
    with sqlite3.connect(server.data_dir / "tillit.sqlite3") as conn:  # an account from before
        conn.execute("UPDATE accounts SET display_name = NULL WHERE username = ?",
                     (acct.username,))
    cookie, _ = await login(server, acct)
    counselor = CounselorClient(server.base_url, cookie, TEST_USER_AGENT)
    await counselor.connect()
    visitor = await make_visitor()
    try:
        chat_id = await open_chat(visitor, counselor, lang="sv")
        # The visitor page then reads "a counselor" (its own catalogue).
        assert visitor.events_named("chat:assigned")[-1]["counselor_name"] is None
        assert acct.username not in visitor_payloads(visitor)
        ok(await counselor.close(chat_id, {}))
    finally:
        await counselor.disconnect()

    # The admin page asks for the missing name, and takes it.
    admin_cookie, _ = await login(server, admin)
    async with http_session(admin_cookie) as client:
        async with client.get(f"{server.base_url}/console/admin") as resp:
            page = await resp.text()
        prompt = re.search(r'id="unnamed-accounts"[^>]*>(.*?)</div>', page, re.S)
        assert prompt and acct.username in prompt.group(1)
        csrf = CSRF_FIELD.search(page).group(1)
        url = f"{server.base_url}/console/admin/accounts/{acct.username}/display-name"
        async with client.post(url, data={"display_name": "Aster", "csrf_token": "x"}) as resp:
            assert resp.status == 403
        async with client.post(url, data={"display_name": "", "csrf_token": csrf}) as resp:
            assert resp.status == 400
        async with client.post(url, data={"display_name": " Aster  Lind ", "csrf_token": csrf},
                               allow_redirects=False) as resp:
            assert resp.status == 303
        async with client.get(f"{server.base_url}/console/admin") as resp:
            page = await resp.text()
        assert 'id="unnamed-accounts"' not in page or acct.username not in re.search(
            r'id="unnamed-accounts"[^>]*>(.*?)</div>', page, re.S).group(1)
    with sqlite3.connect(server.data_dir / "tillit.sqlite3") as conn:
        (name,) = conn.execute("SELECT display_name FROM accounts WHERE username = ?",
                               (acct.username,)).fetchone()
    assert name == "Aster Lind"




async def test_an_old_database_is_migrated_in_place(tmp_path: Path) -> None:
    with sqlite3.connect(tmp_path / "tillit.sqlite3") as old:
        old.executescript(PRE_ALEMBIC_ACCOUNTS)
        for username, display in (("counselor_aster_old", "counselor_aster_old"),
                                  ("counselor_vega_old", "Vega")):
            old.execute("INSERT INTO accounts (username, display_name, role, password_hash, "
                        "totp_secret, languages, created_day) VALUES (?, ?, 'counselor', 'h', "
                        "'S', '[\"sv\"]', '2026-01-01')", (username, display))
        old.execute("INSERT INTO sessions VALUES ('t', 'counselor_aster_old', 'c', 1, 1)")
    for _ in range(2):  # the second opening finds nothing to do
        db = await open_sqlite(tmp_path)  # migrated to head (tillit/durable/migrations/)
        try:
            legacy = await accounts.get(db, "counselor_aster_old")
            named = await accounts.get(db, "counselor_vega_old")
            assert legacy is not None and legacy.display_name is None
            assert legacy.label == "counselor_aster_old" and legacy.languages == ["sv"]
            assert named is not None and named.display_name == "Vega"
            rows = await run_sql(db, "SELECT username FROM sessions")
            assert [r.username for r in rows] == ["counselor_aster_old"]  # no cascade
            cols = await run_sql(db, "PRAGMA table_info(accounts)")
            assert not next(c for c in cols if c.name == "display_name").notnull
            assert (await run_sql(db, "PRAGMA foreign_keys"))[0][0] == 1
        finally:
            await db.dispose()
    db = await open_sqlite(tmp_path)
    try:
        await accounts.set_display_name(db, "counselor_aster_old", "Aster")
        assert (await accounts.get(db, "counselor_aster_old")).display_name == "Aster"
        token = await sessions.start(db, "counselor_aster_old")
        assert token
    finally:
        await db.dispose()


# ------------------------------------------------------- point 14: landing pages, nav, 403


async def test_each_role_lands_on_its_own_page(server: ServerProcess) -> None:
    expected = {"counselor": "/console", "supervisor": "/console/stats",
                "admin": "/console/admin"}
    for role, home in expected.items():
        acct = server.add_user(f"{role}_aster_lands", role=role)
        cookie, body = await login(server, acct)
        assert body["home"] == home, (role, body)
        async with http_session(cookie) as client:
            async with client.get(f"{server.base_url}/console/login",
                                  allow_redirects=False) as resp:
                assert (resp.status, resp.headers.get("Location")) == (302, home), role
            async with client.get(f"{server.base_url}/console", allow_redirects=False) as resp:
                if role == "counselor":
                    assert resp.status == 200
                else:  # no queue with "this account does not take chats" banners
                    assert (resp.status, resp.headers.get("Location")) == (302, home), role
            async with client.get(server.base_url + home) as resp:
                assert resp.status == 200, role


async def test_a_counselor_opening_statistics_gets_a_styled_localized_403(
    server: ServerProcess,
) -> None:
    acct = server.add_user("counselor_aster_403")
    cookie, _ = await login(server, acct)
    async with http_session(cookie) as client:
        for lang, title, text in (
            ("sv", "Inte för det här kontot", "Ditt konto kan inte öppna den här sidan."),
            ("en", "Not for this account", "Your account cannot open this page."),
        ):
            async with client.get(f"{server.base_url}/console/stats?lang={lang}") as resp:
                assert resp.status == 403
                assert resp.content_type == "text/html"
                page = await resp.text()
            assert f'<html lang="{lang}"' in page
            assert '<link rel="stylesheet" href="/static/console.css">' in page
            assert f"<h1>{title}</h1>" in page and text in page
            assert 'href="/console"' in page  # the way back to the account's own page
            assert 'action="/console/logout"' in page and 'class="staff-nav"' in page
            assert acct.display_name in page
        async with client.get(f"{server.base_url}/console/stats.csv") as resp:
            assert resp.status == 403  # files and APIs keep a plain answer


async def test_every_staff_page_has_navigation_and_a_logout_that_works(
    server: ServerProcess,
) -> None:
    admin = server.add_user("admin_aster_nav", role="admin")
    supervisor = server.add_user("supervisor_aster_nav", role="supervisor")
    for acct, paths in ((admin, ("/console/admin", "/console/stats", "/console/audit",
                                 "/console/ops")),
                        (supervisor, ("/console/stats",))):
        cookie, _ = await login(server, acct)
        async with http_session(cookie) as client:
            for path in paths:
                async with client.get(server.base_url + path) as resp:
                    assert resp.status == 200, path
                    page = await resp.text()
                assert 'class="staff-nav"' in page and 'action="/console/logout"' in page, path
                assert ('href="/console/admin"' in page) == (acct.role == "admin"), path
                assert 'href="/console/stats"' in page, path
                assert acct.display_name in page and acct.username not in page.split(
                    "<main")[0], path
            csrf = CSRF_FIELD.search(page).group(1)
            async with client.post(f"{server.base_url}/console/logout",
                                   data={"csrf_token": "wrong"}) as resp:
                assert resp.status == 403
            async with client.post(f"{server.base_url}/console/logout",
                                   data={"csrf_token": csrf}, allow_redirects=False) as resp:
                assert (resp.status, resp.headers["Location"]) == (303, "/console/login")
            async with client.get(server.base_url + paths[0], allow_redirects=False) as resp:
                assert (resp.status, resp.headers["Location"]) == (302, "/console/login")
