"""The durable store on SQLite and on PostgreSQL: migrations (an empty database, a data
folder from before Alembic, a schema newer than the code), the queries every staff
feature relies on, `tillit db`, and a real server whose accounts live in PostgreSQL.

`durable` and `durable_url` run a test once per database (tests/durable_fixtures.py);
the PostgreSQL runs skip without a PostgreSQL on 127.0.0.1:5432, and fail under CI.
"""

from __future__ import annotations

import asyncio
import os
import sqlite3
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest
from durable_db import create_pg_database, drop_pg_database, open_sqlite, run_sql
from protocol_client import console_login
from sqlalchemy import inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine
from support import PRE_ALEMBIC_ACCOUNTS, ROOT, TEST_USER_AGENT, ServerProcess, totp_code

from tillit.counselor_console import accounts, audit, sessions, stats_facts
from tillit.counselor_console.audit_routes import query_audit
from tillit.counselor_console.notes import NoteBook
from tillit.counselor_console.notes_crypto import NoteCipher
from tillit.counselor_console.purge import DAY_S, run_purge
from tillit.counselor_console.totp_crypto import TotpSealer
from tillit.durable.engine import create_engine, database_url, shown
from tillit.durable.migrate import SchemaTooNew, head, open_migrated, status, upgrade

pytest_plugins = ["durable_fixtures"]

TABLES = {"accounts", "sessions", "console_sockets", "audit", "stats_facts", "notes",
          # docs/protocol.md E12.11 (migration 0003_mailboxes)
          "mailboxes", "mailbox_messages", "mailbox_reads", "mailbox_notes", "counselor_keys",
          "team_key", "mailbox_counts"}
SEALER = TotpSealer(bytes(range(32)))
PASSWORD = "ett-långt-lösenord-42"
T0 = 1_750_000_000.0  # a fixed clock for TOTP steps


def tillit_cli(*args: str, url: str | None, data_dir: Path,
               stdin: str = "") -> subprocess.CompletedProcess[str]:
    """`python -m tillit ARGS --data-dir D` with TILLIT_DATABASE_URL=url (if given)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("TILLIT_")}
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    if url is not None:
        env["TILLIT_DATABASE_URL"] = url
    return subprocess.run(
        [sys.executable, "-m", "tillit", *args, "--data-dir", str(data_dir)],
        input=stdin, capture_output=True, text=True, cwd=ROOT, env=env, timeout=60)


def sqlite_bytes(folder: Path) -> bytes:
    """Every byte of the durable SQLite file and its write-ahead log."""
    return b"".join(p.read_bytes() for p in folder.glob("tillit.sqlite3*"))


async def table_names(engine: AsyncEngine) -> set[str]:
    async with engine.connect() as conn:
        return set(await conn.run_sync(lambda c: inspect(c).get_table_names()))


# ------------------------------------------------------------------------- migrations


async def test_an_empty_database_is_migrated_to_head(durable_url: str) -> None:
    engine = create_engine(durable_url)
    try:
        before = await status(engine)
        assert before.current is None and not before.at_head
        assert await upgrade(engine) is True
        after = await status(engine)
        assert after.current == head() and after.at_head
        assert TABLES <= await table_names(engine)
        assert await upgrade(engine) is False  # at head: nothing to do
    finally:
        await engine.dispose()


async def test_processes_starting_together_migrate_once(durable_url: str) -> None:
    """Several processes start at the same time on an empty database: one migrates, the
    others find it done (a lock on each database), none fails."""
    engines = [create_engine(durable_url) for _ in range(3)]
    try:
        results = await asyncio.gather(*(upgrade(e) for e in engines))
        assert sorted(results) == [False, False, True]
        assert (await status(engines[0])).at_head
    finally:
        for engine in engines:
            await engine.dispose()


# The durable file as Tillit wrote it before Alembic: tables made at start-up, display
# names still NOT NULL, statistics facts without sector and contact, the old feedback table.
PRE_ALEMBIC_SCHEMA = PRE_ALEMBIC_ACCOUNTS + """
CREATE TABLE console_sockets (
    sid TEXT PRIMARY KEY,
    token_hash TEXT NOT NULL,
    username TEXT NOT NULL
);
CREATE TABLE audit (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    ts INTEGER NOT NULL,
    actor TEXT,
    action TEXT NOT NULL,
    target TEXT,
    detail TEXT
);
CREATE INDEX audit_ts ON audit (ts);
CREATE TABLE stats_facts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    day TEXT NOT NULL, lang TEXT, age_group TEXT, gender TEXT, role TEXT,
    child INTEGER NOT NULL DEFAULT 0, danger_now INTEGER NOT NULL DEFAULT 0,
    topics TEXT NOT NULL DEFAULT '[]', indicators TEXT NOT NULL DEFAULT '[]',
    decision TEXT, decision_to TEXT, referrals TEXT NOT NULL DEFAULT '[]', outcome TEXT,
    answered INTEGER NOT NULL DEFAULT 1, dropped INTEGER NOT NULL DEFAULT 0,
    wait_bucket TEXT, duration_bucket TEXT, wait_s INTEGER, helped TEXT, score INTEGER
);
CREATE INDEX stats_facts_day ON stats_facts (day);
CREATE TABLE notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author TEXT NOT NULL,
    chat_ref TEXT NOT NULL,
    created_at REAL NOT NULL,
    nonce BLOB NOT NULL,
    ct BLOB NOT NULL
);
CREATE TABLE feedback (id INTEGER PRIMARY KEY, helped TEXT);
"""


async def test_a_pre_alembic_data_folder_is_adopted_in_place_with_its_rows(
    tmp_path: Path,
) -> None:
    today = date.today().isoformat()
    with sqlite3.connect(tmp_path / "tillit.sqlite3") as old:
        old.executescript(PRE_ALEMBIC_SCHEMA)
        old.execute("PRAGMA journal_mode=WAL")
        for username, display in (("counselor_aster_pre", "counselor_aster_pre"),
                                  ("supervisor_vega_pre", "Vega")):
            old.execute("INSERT INTO accounts (username, display_name, role, password_hash, "
                        "totp_secret, totp_last_step, created_day) "
                        "VALUES (?, ?, 'counselor', 'h', 'S', 7, '2026-01-01')",
                        (username, display))
        old.execute("INSERT INTO sessions VALUES ('t1', 'counselor_aster_pre', 'c', 1, 1)")
        old.execute("INSERT INTO console_sockets VALUES ('sid1', 't1', 'counselor_aster_pre')")
        old.execute("INSERT INTO audit (ts, actor, action) VALUES (5, 'cli', 'account.create')")
        old.execute("INSERT INTO stats_facts (day, lang, decision) VALUES (?, 'sv', 'report')",
                    (today,))
        old.execute("INSERT INTO notes (author, chat_ref, created_at, nonce, ct) "
                    "VALUES ('counselor_aster_pre', 'chat-1', 1.5, x'00', x'01')")
        old.execute("INSERT INTO feedback VALUES (1, 'yes')")

    db = await open_sqlite(tmp_path)
    try:
        assert (await status(db)).at_head
        assert await table_names(db) == TABLES | {"alembic_version"}  # feedback is gone
        legacy = await accounts.get(db, "counselor_aster_pre")
        named = await accounts.get(db, "supervisor_vega_pre")
        assert legacy is not None and legacy.display_name is None  # was its username
        assert named is not None and named.display_name == "Vega"
        assert (await run_sql(db, "SELECT totp_last_step FROM accounts WHERE username = "
                                  "'counselor_aster_pre'"))[0][0] == 7
        assert [tuple(r) for r in await run_sql(db, "SELECT token_hash, username FROM sessions")
                ] == [("t1", "counselor_aster_pre")]  # the rebuild did not cascade
        assert len(await run_sql(db, "SELECT sid FROM console_sockets")) == 1
        assert [e["action"] for e in await audit.entries(db)] == ["account.create"]
        facts = await stats_facts.facts_between(db, date.today(), date.today())
        assert [(f["lang"], f["decision"], f["sector"]) for f in facts] == [
            ("sv", "report", None)]
        assert len(await run_sql(db, "SELECT id FROM notes")) == 1
        assert (await run_sql(db, "PRAGMA foreign_keys"))[0][0] == 1
        # New rows go on where the old ids ended, and the new columns take values.
        await stats_facts.record(db, {"lang": "ar", "sector": "school"})
        ids = [r[0] for r in await run_sql(db, "SELECT id FROM stats_facts ORDER BY id")]
        assert ids == [1, 2]
    finally:
        await db.dispose()
    db = await open_sqlite(tmp_path)  # a second start finds nothing to do
    try:
        assert await upgrade(db) is False
        assert len(await accounts.list_all(db)) == 2
    finally:
        await db.dispose()


async def test_a_schema_newer_than_the_code_is_refused(durable_url: str) -> None:
    engine = await open_migrated(durable_url)
    try:
        await accounts.create(engine, "counselor_aster_new", PASSWORD, "counselor",
                              display_name="Aster", sealer=SEALER)
        await run_sql(engine, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
        with pytest.raises(SchemaTooNew, match="9999_from_the_future"):
            await upgrade(engine)
        assert (await status(engine)).current == "9999_from_the_future"  # left as it was
        assert await accounts.get(engine, "counselor_aster_new") is not None
    finally:
        await engine.dispose()
    with pytest.raises(SchemaTooNew):
        await open_migrated(durable_url)


def test_tillit_serve_refuses_to_start_on_a_newer_schema(tmp_path: Path) -> None:
    async def make_newer() -> None:
        db = await open_sqlite(tmp_path)
        await run_sql(db, "UPDATE alembic_version SET version_num = '9999_from_the_future'")
        await db.dispose()

    asyncio.run(make_newer())
    res = subprocess.run(
        [sys.executable, "-m", "tillit", "serve", "--port", "1", "--data-dir", str(tmp_path)],
        capture_output=True, text=True, cwd=ROOT, timeout=60,
        env={**{k: v for k, v in os.environ.items() if not k.startswith("TILLIT_")},
             "TILLIT_SERVER_DEVELOPMENT": "true"})
    assert res.returncode == 2, res.stderr
    assert "9999_from_the_future" in res.stderr and "newer Tillit" in res.stderr


# ---------------------------------------------------------------------------- queries


async def test_accounts_create_verify_and_one_code_one_login(durable: AsyncEngine) -> None:
    secret = await accounts.create(durable, "counselor_aster_db", PASSWORD, "counselor",
                                   display_name="Aster", languages=["sv", "ar"], sealer=SEALER)
    with pytest.raises(accounts.AccountError, match="exists already"):
        await accounts.create(durable, "counselor_aster_db", PASSWORD, "counselor",
                              display_name="Aster", sealer=SEALER)
    step = int(T0 // 30)
    code = totp_code(secret, step)
    assert await accounts.verify_login(durable, "counselor_aster_db", "fel-lösenord-12345",
                                       code, now=T0, sealer=SEALER) is None
    account = await accounts.verify_login(durable, "counselor_aster_db", PASSWORD, code,
                                          now=T0, sealer=SEALER)
    assert account is not None and account.languages == ["sv", "ar"]
    assert account.display_name == "Aster" and not account.disabled
    # The same code again is a replay.
    assert await accounts.verify_login(durable, "counselor_aster_db", PASSWORD, code,
                                       now=T0, sealer=SEALER) is None
    # Parallel logins with one fresh code, all reading the old step before any writes it:
    # the compare-and-set in the database lets exactly one through.
    code = totp_code(secret, step + 1)
    results = await asyncio.gather(*(
        accounts.verify_login(durable, "counselor_aster_db", PASSWORD, code, now=T0 + 30,
                              sealer=SEALER) for _ in range(6)))
    assert sum(r is not None for r in results) == 1, results
    stored = await run_sql(durable, "SELECT totp_last_step FROM accounts")
    assert stored[0][0] == step + 1


async def test_disable_and_reset_end_every_session(durable: AsyncEngine) -> None:
    for name in ("counselor_lyra_db", "counselor_orion_db"):
        await accounts.create(durable, name, PASSWORD, "counselor",
                              display_name=name.split("_")[1].title(), sealer=SEALER)
    lyra = [await sessions.start(durable, "counselor_lyra_db") for _ in range(2)]
    orion = await sessions.start(durable, "counselor_orion_db")
    await accounts.set_disabled(durable, "counselor_lyra_db", True)
    for token in lyra:
        assert await sessions.lookup(durable, token, 3600, 600) is None
    assert (await sessions.lookup(durable, orion, 3600, 600)).username == "counselor_orion_db"
    await accounts.set_disabled(durable, "counselor_lyra_db", False)
    await accounts.reset(durable, "counselor_orion_db", PASSWORD + "-ny", sealer=SEALER)
    assert await sessions.lookup(durable, orion, 3600, 600) is None
    assert await run_sql(durable, "SELECT token_hash FROM sessions") == []
    with pytest.raises(accounts.AccountError, match="no account"):
        await accounts.set_disabled(durable, "nobody_db", True)
    await accounts.set_display_name(durable, "counselor_lyra_db", "Lyra N")
    assert [a.label for a in await accounts.list_all(durable)] == ["Lyra N", "Orion"]


async def test_console_sockets_are_found_and_forgotten_with_their_session(
    durable: AsyncEngine,
) -> None:
    await accounts.create(durable, "counselor_vega_db", PASSWORD, "counselor",
                          display_name="Vega", sealer=SEALER)
    token = await sessions.start(durable, "counselor_vega_db")
    live = await sessions.lookup(durable, token, 3600, 600)
    registry = sessions.SocketRegistry(durable)
    await registry.add("sid-a", live.token_hash, "counselor_vega_db")
    await registry.add("sid-b", "hash-of-an-ended-session", "counselor_vega_db")
    await registry.add("sid-a", live.token_hash, "counselor_vega_db")  # again: one row
    assert sorted(await registry.find(token_hash=live.token_hash)) == ["sid-a"]
    # The row of the ended session was forgotten by that look-up.
    assert await registry.find(username="counselor_vega_db") == ["sid-a"]
    await registry.drop("sid-a")
    assert await registry.find(username="counselor_vega_db") == []


async def test_audit_entries_are_filtered_and_paged(durable: AsyncEngine) -> None:
    for n in range(5):
        await audit.record(durable, "login", actor=f"counselor_{n % 2}_db")
    await audit.record(durable, "account.create", actor="cli", target="x", role="counselor")
    newest = await audit.entries(durable, limit=2)
    assert [e["action"] for e in newest] == ["account.create", "login"]
    assert newest[0]["detail"] == '{"role":"counselor"}'
    today = date.today()
    logins = await query_audit(durable, today, today, action="login", actor="counselor_0_db")
    assert len(logins) == 3 and all(e["actor"] == "counselor_0_db" for e in logins)
    older = await query_audit(durable, today, today, action="login", before=logins[0]["id"])
    assert [e["id"] for e in older] == sorted((e["id"] for e in older), reverse=True)
    assert all(e["id"] < logins[0]["id"] for e in older) and len(older) == 4


async def test_statistics_facts_and_late_feedback(durable: AsyncEngine) -> None:
    first = await stats_facts.record(durable, {
        "lang": "sv", "child": True, "topics": ["school", "home", "school"],
        "decision": "report", "decision_to": "social_services", "wait_s": 64})
    second = await stats_facts.record(durable, {"lang": "ar", "answered": 0, "dropped": True})
    assert second > first > 0
    await stats_facts.attach_feedback(durable, first, "yes", 4)
    facts = await stats_facts.facts_between(durable, date.today(), date.today())
    by_lang = {f["lang"]: f for f in facts}
    assert by_lang["sv"]["topics"] == ["home", "school"] and by_lang["sv"]["child"] == 1
    assert by_lang["sv"]["wait_s"] == 60 and by_lang["sv"]["decision"] == "report"
    assert (by_lang["sv"]["helped"], by_lang["sv"]["score"]) == ("yes", 4)
    assert (by_lang["ar"]["answered"], by_lang["ar"]["dropped"]) == (0, 1)
    with pytest.raises(ValueError, match="not a statistics field"):
        await stats_facts.record(durable, {"chat_id": "chat-1"})


async def test_purge_deletes_old_notes_sessions_and_audit(durable: AsyncEngine) -> None:
    book = NoteBook(durable, NoteCipher(bytes(32)), 1000)
    await book.add("counselor_aster", "chat-old", "gammal anteckning", now=T0)
    await book.add("counselor_aster", "chat-new", "ny anteckning", now=T0 + 6 * DAY_S)
    await accounts.create(durable, "counselor_aster", PASSWORD, "counselor",
                          display_name="Aster", sealer=SEALER)
    await sessions.start(durable, "counselor_aster")
    await run_sql(durable, "UPDATE sessions SET last_seen = :t", t=T0)
    counts = await run_purge(durable, notes_days=7, session_dead_after_s=1800,
                             now=T0 + 8 * DAY_S, audit_days=365)
    assert counts == {"notes": 1, "sessions": 1, "audit": 0}
    assert [n["text"] for n in await book.of_author("counselor_aster")] == ["ny anteckning"]
    assert (await audit.entries(durable))[0]["detail"] == '{"audit":0,"notes":1,"sessions":1}'


async def test_a_purged_note_leaves_no_bytes_in_the_sqlite_files(tmp_path: Path) -> None:
    db = await open_sqlite(tmp_path)
    try:
        book = NoteBook(db, NoteCipher(bytes(32)), 1000)
        await book.add("counselor_aster", "chat-old", "x" * 400, now=T0)
        [(ct,)] = await run_sql(db, "SELECT ct FROM notes")
        await run_purge(db, notes_days=7, session_dead_after_s=1800, now=T0 + 8 * DAY_S)
    finally:
        await db.dispose()
    raw = sqlite_bytes(tmp_path)
    assert len(ct) > 400 and ct[:64] not in raw  # zeroed (secure_delete), WAL truncated


# -------------------------------------------------------------------------- tillit db


def test_tillit_db_check_and_upgrade(durable_url: str, tmp_path: Path) -> None:
    url = durable_url.replace("+aiosqlite", "")  # as an operator writes it
    res = tillit_cli("db", "check", url=url, data_dir=tmp_path)
    assert res.returncode == 1, res  # reachable, no schema yet
    assert "reachable: yes" in res.stdout and "(none" in res.stdout
    res = tillit_cli("db", "upgrade", url=url, data_dir=tmp_path)
    assert res.returncode == 0 and f"migrated to schema revision {head()}" in res.stdout, res
    res = tillit_cli("db", "upgrade", url=url, data_dir=tmp_path)
    assert res.returncode == 0 and "already at" in res.stdout, res
    res = tillit_cli("db", "check", url=url, data_dir=tmp_path)
    assert res.returncode == 0, res
    assert f"schema revision: {head()}" in res.stdout and f"head: {head()}" in res.stdout


def test_tillit_db_check_of_an_unreachable_database_hides_the_password(
    tmp_path: Path,
) -> None:
    url = "postgresql://tillit:sekret-lösen-93@127.0.0.1:1/tillit"
    res = tillit_cli("db", "check", url=url, data_dir=tmp_path)
    assert res.returncode == 2 and "reachable: no" in res.stdout, res
    assert "sekret" not in res.stdout + res.stderr
    assert shown(database_url(url, tmp_path)).startswith("postgresql+asyncpg://tillit:***@")


# ------------------------------------------------------------------- a real server on PG


async def test_an_account_made_with_the_cli_logs_in_to_a_server_on_postgresql(
    tmp_path: Path,
) -> None:
    plain = await create_pg_database()
    # trust authentication ignores the password: it shows that none is ever printed.
    url = make_url(plain).set(password="sekret-lösen-71").render_as_string(hide_password=False)
    srv = ServerProcess(tmp_path, extra_env={"TILLIT_DATABASE_URL": url})
    try:
        srv.start()
        acct = srv.add_user("counselor_aster_pg")  # the CLI, with the same database_url
        status_code, body, cookie, _ = await console_login(
            srv.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT)
        assert status_code == 200 and cookie, body
        assert not (srv.data_dir / "tillit.sqlite3").exists()  # nothing durable in the folder
        engine = create_engine(url)
        try:
            rows = await run_sql(engine, "SELECT actor, action FROM audit ORDER BY id")
        finally:
            await engine.dispose()
        assert [tuple(r) for r in rows][-2:] == [
            ("cli", "account.create"), ("counselor_aster_pg", "login")]
    finally:
        srv.stop()
        await drop_pg_database(plain)
    assert "sekret" not in srv.log_text()
