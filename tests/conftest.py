"""The only conftest of the suite (keep it so: a second one would shadow `from conftest import`).

Fixtures that run the REAL server as a subprocess on 127.0.0.1, through its CLI.

* `server`: one server per test module (tests share it and must clean up their chats);
* `fresh_server`: a server of its own, for a test that inspects the data directory;
* `make_counselor`: creates a counselor account with the CLI (`user add --json`, with an
  invented display name such as "Aster 3"),
  logs in over HTTP with password + TOTP and connects to `/counselor`;
* `make_visitor`: a connected `VisitorClient`.

`TILLIT_TEST_STORE=redis` runs every server on Redis (a key prefix each);
`TILLIT_TEST_DATABASE=postgresql` gives every server a throwaway PostgreSQL database
(tests/durable_db.py) and distributed key files (.ci/run runs the suite so once more).

Every client sends the User-Agent `TEST_USER_AGENT`, so tests can prove that it is
stored and logged nowhere.
"""

from __future__ import annotations

import asyncio
import base64
import concurrent.futures
import itertools
import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest
import redis.asyncio as aioredis
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.twofactor.totp import TOTP
from durable_db import create_pg_database, drop_pg_database
from protocol_client import CounselorClient, VisitorClient

from tillit.counselor_console.key_files import new_key_line

sys.path.insert(0, str(Path(__file__).resolve().parent / "browser"))
from pages import CHROMIUM_ARGS, ExitSite, chromium_path  # noqa: E402
from playwright.async_api import Browser, Playwright, async_playwright  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TEST_USER_AGENT = "TillitTestAgent/1.0"
REDIS_URL = os.environ.get("TILLIT_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
STARTUP_TIMEOUT_S = 15.0
POW_FOR_TESTS = {
    "TILLIT_ABUSE_POW_BITS_BASE": "8",
    "TILLIT_ABUSE_POW_FILL_STEPS": "",
    "TILLIT_ABUSE_POW_RATE_STEPS": "",
    # Tests end queued chats at once and count their facts; test_flood_stats.py sets it.
    "TILLIT_STATS_MIN_WAIT_S_UNANSWERED": "0",
}
_names = itertools.count(1)
T = TypeVar("T")


async def redis_keys(prefix: str) -> list[str]:
    """Every key under `prefix:` in the test Redis, sorted."""
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return sorted([k async for k in client.scan_iter(match=f"{prefix}:*")])
    finally:
        await client.aclose()


# What a production server (server.development = false) cannot start without; tests
# that start one add or remove entries from this (invented address and number).
PRODUCTION_ENV = {
    "TILLIT_SERVER_DEVELOPMENT": "false",
    "TILLIT_SERVER_PUBLIC_ORIGINS": "https://chatt.example.se",
    "TILLIT_RESOURCES_SOCIAL_SERVICES_NUMBER": "020-000 00 00",
}


def in_thread(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` to its end from sync or async code (a loop of its own, in a thread)."""
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        return pool.submit(asyncio.run, coro).result()


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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
        self.keep_sqlite = _module_reads_sqlite
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
            if self.data_dir not in _PG_DATABASES:
                _PG_DATABASES[self.data_dir] = in_thread(create_pg_database())
            url = env["TILLIT_DATABASE_URL"] = _PG_DATABASES[self.data_dir]
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
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                self.stop()
                pytest.fail(f"server exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                req = urllib.request.Request(
                    f"{self.base_url}/healthz", headers={"User-Agent": TEST_USER_AGENT}
                )
                with urllib.request.urlopen(req, timeout=1) as resp:
                    if resp.status == 200:
                        return
            except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                pass
            time.sleep(0.1)
        self.stop()
        pytest.fail(f"server not healthy within {STARTUP_TIMEOUT_S}s:\n{self.log_text()}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
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


# Modules that open the server's durable SQLite file (or count files in its data folder)
# themselves: under TILLIT_TEST_DATABASE=postgresql their servers keep SQLite.
READS_DURABLE_SQLITE = frozenset({
    "test_app_in_process", "test_audit_retention", "test_console_accounts",
    "test_durable_store", "test_flood_stats", "test_login_security", "test_no_trace_server",
    "test_notes_and_purge", "test_purge_and_traces", "test_queue_and_transfer",
    "test_reporting_workflow", "test_staff_names_and_pages", "test_stats_sector_region",
    "test_stores",
})
_module_reads_sqlite = False
_PG_DATABASES: dict[Path, str] = {}  # data folder -> its throwaway database


def pytest_sessionfinish(session: pytest.Session) -> None:
    """Drop the throwaway databases (servers sharing one are all stopped by now)."""
    for url in _PG_DATABASES.values():
        in_thread(drop_pg_database(url))
    _PG_DATABASES.clear()


@pytest.fixture(scope="module", autouse=True)
def _durable_of_this_module(request: pytest.FixtureRequest) -> Iterator[None]:
    """Before the module's servers start: may they get a PostgreSQL database?"""
    global _module_reads_sqlite
    _module_reads_sqlite = request.module.__name__.rpartition(".")[2] in READS_DURABLE_SQLITE
    yield
    _module_reads_sqlite = False


def _start_server(tmp: Path, extra_env: dict[str, str] | None = None) -> ServerProcess:
    srv = ServerProcess(tmp, extra_env)
    srv.start()
    return srv


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the whole test module."""
    srv = _start_server(tmp_path_factory.mktemp("tillit"))
    yield srv
    srv.stop()


@pytest.fixture
def fresh_server(tmp_path: Path) -> Iterator[ServerProcess]:
    """A server of its own (for tests that inspect the data directory)."""
    srv = _start_server(tmp_path)
    yield srv
    srv.stop()


MakeCounselor = Callable[..., Awaitable[CounselorClient]]
MakeVisitor = Callable[..., Awaitable[VisitorClient]]


async def _cleanup_counselor(c: CounselorClient) -> None:
    try:
        if not c.connected:
            await c.connect()
        mine = await c.mine()
        for chat in mine.get("chats", []) if mine.get("ok") else []:
            if chat.get("state") != "ended":
                ack = await c.close(chat["chat_id"], {})
                if (ack.get("error") or {}).get("code") == "conflict":  # a decision is due
                    await c.decision(chat["chat_id"], "no_report", reason="below_threshold")
                    await c.close(chat["chat_id"], {})
    except Exception:  # noqa: BLE001 - best effort: the test itself already reported
        pass
    await c.disconnect()


@pytest.fixture
async def make_counselor(request: pytest.FixtureRequest) -> AsyncIterator[MakeCounselor]:
    """Factory: a new counselor account, logged in and connected to `/counselor`.

    Closes the chats each one still holds on teardown, so a shared server's queue
    and counselor capacity are not disturbed by earlier tests.
    """
    made: list[CounselorClient] = []

    async def make(
        srv: ServerProcess | None = None, username: str | None = None,
        languages: str | None = None, role: str = "counselor", display_name: str | None = None,
    ) -> CounselorClient:
        srv = srv or request.getfixturevalue("server")
        acct = srv.add_user(username, role=role, languages=languages, display_name=display_name)
        c = await CounselorClient.login(
            srv.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT
        )
        c.account = acct  # type: ignore[attr-defined]
        await c.connect()
        made.append(c)
        return c

    yield make
    for c in made:
        await _cleanup_counselor(c)


@pytest.fixture
async def make_visitor(request: pytest.FixtureRequest) -> AsyncIterator[MakeVisitor]:
    """Factory: a connected visitor (not started); ends its chat on teardown."""
    made: list[VisitorClient] = []

    async def make(srv: ServerProcess | None = None) -> VisitorClient:
        v = VisitorClient((srv or request.getfixturevalue("server")).base_url, TEST_USER_AGENT)
        await v.connect()
        made.append(v)
        return v

    yield make
    for v in made:
        try:
            if v.chat_id and not v.events_named("chat:ended"):
                if not v.connected:
                    await v.resume()
                await v.end()
        except Exception:  # noqa: BLE001 - best effort
            pass
        await v.disconnect()


# -- browser fixtures (tests/browser/): one conftest for the whole suite, so that
# `from conftest import ...` in any test module always means this file.


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/browser" in str(item.fspath):
            item.add_marker(pytest.mark.browser)


@pytest.fixture
async def pw() -> AsyncIterator[Playwright]:
    async with async_playwright() as playwright:
        yield playwright


@pytest.fixture
async def browser(pw: Playwright) -> AsyncIterator[Browser]:
    browser = await pw.chromium.launch(executable_path=chromium_path(), args=CHROMIUM_ARGS)
    yield browser
    await browser.close()


@pytest.fixture(scope="module")
def exit_site() -> Iterator[ExitSite]:
    """A neutral site on another 127.0.0.1 port, standing in for `safety.exit_url`."""
    site = ExitSite().start()
    yield site
    site.stop()


@pytest.fixture(scope="module")
def exit_server(
    tmp_path_factory: pytest.TempPathFactory, exit_site: ExitSite
) -> Iterator[ServerProcess]:
    """A server whose quick exit leads to `exit_site` (nothing leaves the machine)."""
    srv = _start_server(
        tmp_path_factory.mktemp("tillit-exit"), {"TILLIT_SAFETY_EXIT_URL": exit_site.url}
    )
    yield srv
    srv.stop()
