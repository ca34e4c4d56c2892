"""What the tests share: the real server as a subprocess, staff accounts, connected
clients, the test Redis and the durable database.

Test modules and conftest.py import from here (`from support import ServerProcess`);
conftest.py keeps only the fixtures. A server runs through its CLI
(`python -m tillit serve`) on 127.0.0.1 with a fresh data folder. Every client sends
the User-Agent `TEST_USER_AGENT`, so tests can prove that it is stored and logged nowhere.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import hashlib
import hmac
import itertools
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import subprocess
import sys
import time
import tomllib
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import redis
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from durable_db import create_pg_database, drop_pg_database
from protocol_client import CounselorClient, VisitorClient, console_login

from tillit.chat_server.chats import hash_token
from tillit.chat_server.model import Chat, ServerFlags, VisitorAnswers
from tillit.chat_server.stores.redis_store import RedisStore
from tillit.chat_server.stores.sqlite_store import SqliteStore
from tillit.counselor_console.key_files import new_key_line

# A staff page form's CSRF token (the console's forms carry it as a hidden field).
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')

ROOT = Path(__file__).resolve().parent.parent
TEST_USER_AGENT = "TillitTestAgent/1.0"
REDIS_URL = os.environ.get("TILLIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STARTUP_TIMEOUT_S = 15.0
POW_FOR_TESTS = {
    "TILLIT_ABUSE_POW_BITS_BASE": "8",
    "TILLIT_ABUSE_POW_FILL_STEPS": "",
    "TILLIT_ABUSE_POW_RATE_STEPS": "",
    # The same for mailbox:create and mailbox:open (docs/protocol.md E12.8).
    "TILLIT_CONTINUITY_POW_BITS_BASE": "8",
    "TILLIT_CONTINUITY_POW_FAIL_STEPS": "",
    # Tests end queued chats at once and count their facts; test_flood_stats.py sets it.
    "TILLIT_STATS_MIN_WAIT_S_UNANSWERED": "0",
}
# What a production server (server.development = false) cannot start without; tests
# that start one add or remove entries from this (invented address and number).
PRODUCTION_ENV = {
    "TILLIT_SERVER_DEVELOPMENT": "false",
    "TILLIT_SERVER_PUBLIC_ORIGINS": "https://chatt.example.se",
    "TILLIT_RESOURCES_SOCIAL_SERVICES_NUMBER": "020-000 00 00",
}
# Opening hours with every day closed (TILLIT_HOURS_* set empty).
CLOSED_ALL_WEEK = {
    f"TILLIT_HOURS_{day}": "" for day in ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
}
_names = itertools.count(1)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_ready(
    proc: subprocess.Popen, ready: Callable[[], bool], what: str,
    stop: Callable[[], None], log_text: Callable[[], str],
) -> None:
    """Poll `ready()` until it holds; fail the test (after `stop()`, with the log) if the
    process exits first or is not ready within STARTUP_TIMEOUT_S."""
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            stop()
            pytest.fail(f"{what} exited with {proc.returncode}:\n{log_text()}")
        if ready():
            return
        time.sleep(0.1)
    stop()
    pytest.fail(f"{what} not ready within {STARTUP_TIMEOUT_S}s:\n{log_text()}")


def end_process(proc: subprocess.Popen | None, sig: int) -> None:
    """Send `sig` to a running process and wait for it; kill it after 10 s."""
    if proc is not None and proc.poll() is None:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=5)


# --------------------------------------------------------------------------- staff accounts


def totp_code(secret: str, step: int) -> str:
    """The RFC 6238 code (SHA-1, 6 digits, 30 s) of time step `step`."""
    totp = TOTP(base64.b32decode(secret), 6, hashes.SHA1(), 30)
    return totp.generate(step * 30).decode()


@dataclass
class Account:
    """A staff account made with the CLI; hands out TOTP codes that were never used.

    The server accepts a code once and allows one step of clock drift, so a test may
    log in up to three times within one 30 s step (steps t-1, t, t+1) per account.
    """

    username: str
    password: str
    role: str
    totp_secret: str
    display_name: str = ""
    _last_step: int = field(default=0, repr=False)

    def next_totp(self) -> str:
        """A code for a step not used yet (one code, one login), still valid when a busy
        server checks it: the previous step's code only while its step has 10 s to run."""
        while True:
            now = time.time()
            now_step = int(now // 30)
            seconds_left = 30 - now % 30
            for step in (now_step - 1, now_step, now_step + 1):
                if step == now_step - 1 and seconds_left < 10:
                    continue
                if step > self._last_step:
                    self._last_step = step
                    return totp_code(self.totp_secret, step)
            time.sleep(1)

    def wrong_totp(self) -> str:
        """A 6-digit code valid for no step near now."""
        now_step = int(time.time() // 30)
        valid = {totp_code(self.totp_secret, s) for s in range(now_step - 3, now_step + 4)}
        for candidate in ("000000", "123456", "999999", "314159"):
            if candidate not in valid:
                return candidate
        raise AssertionError("unlucky TOTP secret")


# --------------------------------------------------------------------------- the server

# `TILLIT_TEST_STORE=redis` runs every server on Redis (a key prefix each);
# `TILLIT_TEST_DATABASE=postgresql` gives every data folder a throwaway PostgreSQL
# database (tests/durable_db.py) and distributed key files (.ci/run runs the suite so
# once more). Modules that open the server's durable SQLite file (or count the files in
# its data folder) themselves keep SQLite; conftest.py sets `durable_choice` per module.
READS_DURABLE_SQLITE = frozenset({
    "test_app_in_process", "test_audit_retention", "test_console_accounts",
    "test_durable_store", "test_flood_stats", "test_login_security", "test_mailboxes",
    "test_no_trace_server",
    "test_notes_and_purge", "test_password_and_recovery", "test_purge_and_traces",
    "test_queue_and_transfer",
    "test_reporting_workflow", "test_staff_names_and_pages", "test_stats_sector_region",
    "test_stores",
})
PG_DATABASES: dict[Path, str] = {}  # data folder -> its throwaway database
T = TypeVar("T")


@dataclass
class DurableChoice:
    keep_sqlite: bool = False


durable_choice = DurableChoice()


def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end from sync or async code (a loop of its own, in a thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def drop_test_databases() -> None:
    """Drop the throwaway databases (at the end of the session, every server stopped)."""
    for url in PG_DATABASES.values():
        in_thread(drop_pg_database(url))
    PG_DATABASES.clear()



class ServerProcess:
    """`python -m tillit serve` on a free port with its own data dir and log file."""

    def __init__(self, tmp: Path, extra_env: dict[str, str] | None = None) -> None:
        self.tmp = tmp
        # TILLIT_* settings for this server only, e.g. {"TILLIT_SAFETY_EXIT_URL": ...}.
        self.extra_env = dict(extra_env or {})
        if os.environ.get("TILLIT_TEST_STORE") == "redis":
            # The whole suite against the Redis store: `TILLIT_TEST_STORE=redis pytest`.
            # Each server gets its own key prefix, so servers never see each other's chats.
            self.extra_env.setdefault("TILLIT_STORE", "redis")
            self.extra_env.setdefault(
                "TILLIT_REDIS_URL",
                REDIS_URL,
            )
            self.extra_env.setdefault(
                "TILLIT_SERVER_REDIS_PREFIX", f"tillit-test-{os.getpid()}-{next(_names)}"
            )
        # Under TILLIT_TEST_DATABASE=postgresql: a database of its own, unless the
        # module opens the server's SQLite file itself (READS_DURABLE_SQLITE).
        self.keep_sqlite = durable_choice.keep_sqlite
        self.data_dir = tmp / "data"
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.log_path = tmp / "server.log"
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None
        self._log = None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("TILLIT_")}
        env["PYTHONUNBUFFERED"] = "1"
        env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
        env["TILLIT_SERVER_DEVELOPMENT"] = "true"
        # The chat:start proof-of-work at a few ms per chat and without the steps: tests
        # open many chats quickly; every unanswered chat writes its fact. The abuse tests
        # set the shipped values (extra_env).
        env.update(POW_FOR_TESTS)
        env.update(self.extra_env)
        env.update(self._durable_env())
        return env

    def _durable_env(self) -> dict[str, str]:
        """The database URL under TILLIT_TEST_DATABASE=postgresql (one throwaway database
        per data folder: servers given one data folder share it, as they share a SQLite
        file), and, with any database URL, key files as an operator distributes them (the
        same for every server of that data folder, never inside it)."""
        env: dict[str, str] = {}
        url = self.extra_env.get("TILLIT_DATABASE_URL", "")
        if not url and os.environ.get("TILLIT_TEST_DATABASE") == "postgresql" \
                and not self.keep_sqlite:
            if self.data_dir not in PG_DATABASES:
                PG_DATABASES[self.data_dir] = in_thread(create_pg_database())
            url = env["TILLIT_DATABASE_URL"] = PG_DATABASES[self.data_dir]
        if url:
            keys = self.data_dir.parent / f"{self.data_dir.name}-keys"
            for setting, name in (("TILLIT_NOTES_KEY_FILE", "notes.keyring"),
                                  ("TILLIT_CONSOLE_TOTP_KEY_FILE", "totp.keyring")):
                if setting not in self.extra_env:
                    path = keys / name
                    if not path.exists():
                        keys.mkdir(parents=True, exist_ok=True)
                        path.write_text(new_key_line() + "\n")
                    env[setting] = str(path)
        return env

    def cli(self, *args: str, stdin: str | None = None, timeout: float = 30) -> str:
        """Run `python -m tillit ARGS`; returns stdout, fails the test on error."""
        res = subprocess.run(
            [sys.executable, "-m", "tillit", *args],
            input=(stdin or "").encode(),
            capture_output=True,
            cwd=ROOT,
            env=self._env(),
            timeout=timeout,
        )
        if res.returncode != 0:
            pytest.fail(
                f"CLI {args} exited {res.returncode}\nstdout: {res.stdout.decode(errors='replace')}"
                f"\nstderr: {res.stderr.decode(errors='replace')}"
            )
        return res.stdout.decode()

    def start(self) -> None:
        self._log = open(self.log_path, "wb")  # noqa: SIM115 - closed in stop()
        self.proc = subprocess.Popen(
            [
                sys.executable, "-m", "tillit", "serve",
                "--host", "127.0.0.1", "--port", str(self.port),
                "--data-dir", str(self.data_dir),
            ],
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=ROOT,
            env=self._env(),
        )
        wait_until_ready(self.proc, self._healthy, "server", self.stop, self.log_text)

    def _healthy(self) -> bool:
        req = urllib.request.Request(
            f"{self.base_url}/healthz", headers={"User-Agent": TEST_USER_AGENT}
        )
        try:
            with urllib.request.urlopen(req, timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
            return False

    def stop(self) -> None:
        end_process(self.proc, signal.SIGTERM)
        if self._log is not None:
            self._log.close()
            self._log = None

    def log_text(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def add_user(
        self, username: str | None = None, role: str = "counselor", languages: str | None = None,
        display_name: str | None = None,
    ) -> Account:
        """`user add NAME --role ROLE --display-name "Aster N" [--languages sv,ar] --json`,
        the password on stdin. The display name is invented, like the username."""
        number = next(_names)
        username = username or f"counselor_aster_{number}"
        display_name = display_name or f"Aster {number}"
        password = f"Lösen-{username}-kanel-97"
        extra = ("--languages", languages) if languages else ()
        out = self.cli(
            "user", "add", username, "--role", role, "--data-dir", str(self.data_dir), "--json",
            "--display-name", display_name, *extra, stdin=password + "\n",
        )
        info = json.loads(out.strip().splitlines()[-1])
        assert info["username"] == username and info["role"] == role, info
        base64.b32decode(info["totp_secret"])  # must be base32
        return Account(username, password, role, info["totp_secret"], display_name)

    def data_files(self) -> list[Path]:
        return sorted(p for p in self.data_dir.rglob("*") if p.is_file())


def start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> ServerProcess:
    """A started server; the caller stops it (or use `running_server`)."""
    srv = ServerProcess(tmp, extra_env)
    srv.start()
    return srv


@contextmanager
def running_server(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[ServerProcess]:
    """A started server, stopped when the block ends."""
    srv = start_server(tmp, extra_env)
    try:
        yield srv
    finally:
        srv.stop()


def server_fixture(
    extra_env: dict[str, str] | None = None, scope: str = "module", doc: str = ""
) -> Any:
    """A pytest fixture: a server with these TILLIT_* settings, e.g.
    `roomy_server = server_fixture(ROOMY)`. A test may add settings with an indirect
    parametrize (`@pytest.mark.parametrize("roomy_server", [{...}], indirect=True)`)."""

    def fixture(
        tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
    ) -> Iterator[ServerProcess]:
        env = {**(extra_env or {}), **getattr(request, "param", {})}
        with running_server(tmp_path_factory.mktemp("tillit"), env) as srv:
            yield srv

    fixture.__doc__ = doc or None
    return pytest.fixture(scope=scope)(fixture)  # type: ignore[call-overload]


@dataclass
class ServerPair:
    """Two server processes on one Redis key prefix and one durable store (data folder)."""

    a: ServerProcess
    b: ServerProcess
    prefix: str

    @property
    def servers(self) -> tuple[ServerProcess, ServerProcess]:
        return (self.a, self.b)


@contextmanager
def server_pair(tmp: Path, extra_env: dict[str, str] | None = None) -> Iterator[ServerPair]:
    """Two processes as behind a load balancer: one Redis key prefix of their own (its
    keys deleted afterwards) and one data folder (accounts, sessions, audit)."""
    prefix = f"tillit-pair-{secrets.token_hex(6)}"
    env = {"TILLIT_STORE": "redis", "TILLIT_REDIS_URL": REDIS_URL,
           "TILLIT_SERVER_REDIS_PREFIX": prefix, **(extra_env or {})}
    a = ServerProcess(tmp / "a", env)
    b = ServerProcess(tmp / "b", env)
    b.data_dir = a.data_dir  # one durable store for both processes on this host
    try:
        a.start()
        b.start()
        yield ServerPair(a, b, prefix)
    finally:
        b.stop()
        a.stop()
        delete_redis_keys(prefix)


def shipped_pow_env() -> dict[str, str]:
    """The `[abuse]` settings as shipped in tillit/config/default.toml, as TILLIT_* variables
    (test servers otherwise run with the easy `POW_FOR_TESTS`)."""
    from tillit.chat_server.settings import CONFIG_DIR  # here: only the flood tests need it

    with open(CONFIG_DIR / "default.toml", "rb") as fh:
        abuse = tomllib.load(fh)["abuse"]
    return {f"TILLIT_ABUSE_{key.upper()}": ",".join(v) if isinstance(v, list) else str(v)
            for key, v in abuse.items()}


# --------------------------------------------------------------------------- the test Redis


async def redis_keys(prefix: str) -> list[str]:
    """Every key under `prefix:` in the test Redis, sorted."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return sorted([k async for k in client.scan_iter(match=f"{prefix}:*")])
    finally:
        await client.aclose()


async def redis_holders(match: str, needle: str) -> list[str]:
    """The keys matching `match` (e.g. `prefix:*`) in the test Redis whose name or any
    value holds `needle`, read type by type (a DUMP may be LZF-compressed and hide it),
    except the mailbox open throttle's counters (`mbopen:<mailbox id>:<window>`,
    docs/protocol.md E12.8), which expire by themselves and link to no chat."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    found = []
    try:
        async for key in client.scan_iter(match=match):
            if ":mbopen:" in key:
                continue
            kind = await client.type(key)
            if kind == "hash":
                text = json.dumps(await client.hgetall(key))
            elif kind == "string":
                text = await client.get(key) or ""
            elif kind == "set":
                text = json.dumps(sorted(await client.smembers(key)))
            elif kind == "zset":
                text = json.dumps(await client.zrange(key, 0, -1))
            elif kind == "list":
                text = json.dumps(await client.lrange(key, 0, -1))
            else:
                text = ""
            if needle in key or needle in text:
                found.append(key)
    finally:
        await client.aclose()
    return sorted(found)


def delete_redis_keys(prefix: str) -> None:
    """Delete every key under `prefix:` in the test Redis (a test's own prefix)."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        keys = list(client.scan_iter(match=f"{prefix}:*"))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


# --------------------------------------------------------------------------- crypto reference


def rfc5869(ikm: bytes, salt: bytes, info: bytes, length: int = 32) -> bytes:
    """HKDF-SHA256 written from RFC 5869 with hmac alone: a reference that shares no code
    with `cryptography`'s HKDF, which the protocol client and the vectors use."""
    prk = hmac.new(salt, ikm, hashlib.sha256).digest()
    out, block, counter = b"", b"", 1
    while len(out) < length:
        block = hmac.new(prk, block + info + bytes([counter]), hashlib.sha256).digest()
        out += block
        counter += 1
    return out[:length]


# --------------------------------------------------------------------------- stores in process


def new_chat(**changes: Any) -> Chat:
    """A queued chat of a child in danger now (fields as `changes` say otherwise)."""
    chat = Chat(
        chat_id=secrets.token_urlsafe(16),
        resume_hash=hash_token(secrets.token_urlsafe(32)),
        visitor_pubkey="BPub" + secrets.token_urlsafe(60),
        answers=VisitorAnswers(lang="sv", age_group="13_15", topics=["control"],
                               danger_now=True),
        created_at=time.time(),
        flags=ServerFlags(child=True),
    )
    for key, value in changes.items():
        setattr(chat, key, value)
    return chat


@asynccontextmanager
async def open_redis_store(ciphertext_grace_s: float = 0) -> AsyncIterator[RedisStore]:
    """A RedisStore under a prefix of its own, every key of which is gone afterwards."""
    st = RedisStore(REDIS_URL, prefix=f"tillit-storetest-{secrets.token_hex(6)}",
                    ttl_s=600, ciphertext_grace_s=ciphertext_grace_s)
    await st.open()
    try:
        yield st
    finally:
        keys = await redis_keys(st.prefix)
        if keys:
            await st.redis.delete(*keys)
        await st.close()


@asynccontextmanager
async def open_store(kind: str, tmp_path: Path) -> AsyncIterator[RedisStore | SqliteStore]:
    """An opened ephemeral store of this kind ("sqlite": a file in `tmp_path`, "redis":
    `open_redis_store`), closed afterwards."""
    if kind == "redis":
        async with open_redis_store() as st:
            yield st
        return
    store = SqliteStore(tmp_path / "ephemeral.sqlite3")
    await store.open()
    try:
        yield store
    finally:
        await store.close()


# --------------------------------------------------------------------------- clients

MakeCounselor = Callable[..., Awaitable[CounselorClient]]
MakeVisitor = Callable[..., Awaitable[VisitorClient]]


async def connect_visitor(base_url: str) -> VisitorClient:
    """A visitor socket with the test User-Agent, connected (no chat started yet)."""
    visitor = VisitorClient(base_url, TEST_USER_AGENT)
    await visitor.connect()
    return visitor


async def connect_counselor(
    srv: ServerProcess, username: str | None = None, languages: str | None = None,
    role: str = "counselor", display_name: str | None = None,
) -> CounselorClient:
    """A new staff account (`srv.add_user`), logged in over HTTP with password and TOTP
    and connected to `/counselor`; its `Account` is on `.account`."""
    acct = srv.add_user(username, role=role, languages=languages, display_name=display_name)
    counselor = await CounselorClient.login(
        srv.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT
    )
    counselor.account = acct  # type: ignore[attr-defined]
    await counselor.connect()
    return counselor


async def close_held_chats(counselor: CounselorClient) -> None:
    """Close every chat the counselor still holds (a decision first where one is due),
    so that a shared server's queue and capacity are not disturbed by earlier tests."""
    if not counselor.connected:
        await counselor.connect()
    mine = await counselor.mine()
    for chat in mine.get("chats", []) if mine.get("ok") else []:
        if chat.get("state") != "ended":
            ack = await counselor.close(chat["chat_id"], {})
            if (ack.get("error") or {}).get("code") == "conflict":  # a decision is due
                await counselor.decision(chat["chat_id"], "no_report", reason="below_threshold")
                await counselor.close(chat["chat_id"], {})


def http_session(cookie: str | None = None) -> aiohttp.ClientSession:
    """HTTP with the test User-Agent and, if given, a console session cookie; keeps no
    cookies of its own."""
    headers = {"User-Agent": TEST_USER_AGENT}
    if cookie:
        headers["Cookie"] = f"tillit_session={cookie}"
    return aiohttp.ClientSession(headers=headers, cookie_jar=aiohttp.DummyCookieJar())


async def login_cookie(srv: ServerProcess, acct: Account) -> str:
    """The session cookie of a login over HTTP with password and TOTP (it must succeed)."""
    status, body, cookie, _ = await console_login(
        srv.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT)
    assert status == 200 and cookie, body
    return cookie


async def staff_cookie(srv: ServerProcess, role: str) -> str:
    """The session cookie of a new account with this role."""
    return await login_cookie(srv, srv.add_user(f"{role}_tindra_{next(_names)}", role=role))


async def http_get(srv: ServerProcess, path: str, cookie: str | None) -> tuple[int, str, dict]:
    """GET a path (redirects not followed): status, body and headers."""
    async with http_session(cookie) as http, http.get(
        f"{srv.base_url}{path}", allow_redirects=False
    ) as resp:
        return resp.status, await resp.text(), dict(resp.headers)


# --------------------------------------------------------------------------- the database


def server_database(srv: ServerProcess) -> sqlite3.Connection:
    """The server's durable SQLite database (the default `server.database_url`), rows
    readable by column name."""
    conn = sqlite3.connect(srv.data_dir / "tillit.sqlite3")
    conn.row_factory = sqlite3.Row
    return conn


# The accounts and sessions tables as Tillit made them before Alembic (display names NOT
# NULL): the start of every pre-Alembic durable file the upgrade tests plant.
PRE_ALEMBIC_ACCOUNTS = """
CREATE TABLE accounts (
    username TEXT PRIMARY KEY,
    display_name TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('counselor', 'supervisor', 'admin')),
    password_hash TEXT NOT NULL,
    totp_secret TEXT NOT NULL,
    totp_last_step INTEGER NOT NULL DEFAULT 0,
    languages TEXT NOT NULL DEFAULT '[]',
    disabled INTEGER NOT NULL DEFAULT 0,
    created_day TEXT NOT NULL
);
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    username TEXT NOT NULL REFERENCES accounts(username) ON DELETE CASCADE,
    csrf_token TEXT NOT NULL,
    created_at REAL NOT NULL,
    last_seen REAL NOT NULL
);
"""
