"""Two `tillit serve` processes with different, empty data folders, one PostgreSQL and one
Redis serve one installation (issue 15, "Done when").

An account made with `tillit user add` against the database logs in on either process; a
chat flows across them; a reporting decision made on one shows in the statistics read on
the other; killing either loses nothing; a PostgreSQL restart mid-chat is survived (the
audit rows and the fact written meanwhile land once it is back, through the outbox).

PostgreSQL here is a private instance (initdb in a temporary folder, as the postgres
user, on a free port), so that stopping it disturbs nobody else's database. Without its
binaries (or not as root, which `runuser` needs) the module skips, unless CI is set.
"""

from __future__ import annotations

import asyncio
import glob
import json
import os
import secrets
import shutil
import signal
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

import asyncpg
import pytest
import redis
from protocol_client import CounselorClient, VisitorClient, console_login, ok, open_chat
from support import REDIS_URL, TEST_USER_AGENT, ServerProcess, free_port, in_thread
from support import http_get as get

TODAY = date.today().isoformat()


def _unavailable(why: str) -> None:
    if os.environ.get("CI"):
        pytest.fail(f"{why} (CI is set)")
    pytest.skip(why)


class PrivatePostgres:
    """A PostgreSQL server of this test's own: initdb, start, stop (fast), start again."""

    def __init__(self) -> None:
        found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
        if not found or os.geteuid() != 0 or shutil.which("runuser") is None:
            _unavailable("no PostgreSQL binaries, or not root (runuser -u postgres)")
        self.bin = Path(found[-1]).parent
        self.root = Path(tempfile.mkdtemp(prefix="tillit-pg-"))
        self.root.chmod(0o755)
        self.data = self.root / "data"
        self.data.mkdir()
        shutil.chown(self.data, "postgres", "postgres")
        self.port = free_port()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/tillit"
        self.proc: subprocess.Popen[bytes] | None = None
        self._as_postgres(str(self.bin / "initdb"), "-D", str(self.data), "-A", "trust",
                          "-U", "postgres", "--no-sync", "-E", "UTF8")

    def _as_postgres(self, *cmd: str) -> None:
        subprocess.run(["runuser", "-u", "postgres", "--", *cmd], check=True,
                       capture_output=True, timeout=120)

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["runuser", "-u", "postgres", "--", str(self.bin / "postgres"), "-D", str(self.data),
             "-p", str(self.port), "-k", str(self.data), "-c", "listen_addresses=127.0.0.1",
             "-c", "fsync=off"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        in_thread(self._wait_ready())

    async def _wait_ready(self) -> None:
        deadline = time.monotonic() + 30
        while True:
            try:
                conn = await asyncpg.connect(self.url.replace("/tillit", "/postgres"), timeout=2)
                await conn.close()
                return
            except (OSError, asyncpg.PostgresError, TimeoutError):
                if time.monotonic() > deadline:
                    raise
                await asyncio.sleep(0.2)

    def stop(self) -> None:
        """A fast shutdown (SIGINT to the postmaster), as a restart by the operator does."""
        if self.proc is None:
            return
        pid_file = self.data / "postmaster.pid"
        if pid_file.exists():
            os.kill(int(pid_file.read_text().split()[0]), signal.SIGINT)
        self.proc.wait(timeout=30)
        self.proc = None

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.root, ignore_errors=True)

    async def query(self, sql: str, *args: object) -> list[asyncpg.Record]:
        conn = await asyncpg.connect(self.url, timeout=5)
        try:
            return await conn.fetch(sql, *args)
        finally:
            await conn.close()


@dataclass
class Installation:
    pg: PrivatePostgres
    a: ServerProcess
    b: ServerProcess
    prefix: str


@pytest.fixture(scope="module")
def installation(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Installation]:
    pg = PrivatePostgres()
    pg.start()
    tmp = tmp_path_factory.mktemp("machines")
    prefix = f"tillit-machines-{secrets.token_hex(6)}"
    try:
        asyncio.run(_create_database(pg))
        keys = tmp / "distributed-keys"  # what the operator copies to every machine
        keys.mkdir()
        env = {"TILLIT_STORE": "redis", "TILLIT_REDIS_URL": REDIS_URL,
               "TILLIT_SERVER_REDIS_PREFIX": prefix, "TILLIT_DATABASE_URL": pg.url,
               "TILLIT_STATS_MIN_CELL": "2"}
        for setting, name in (("TILLIT_NOTES_KEY_FILE", "notes.keyring"),
                              ("TILLIT_CONSOLE_TOTP_KEY_FILE", "totp.keyring")):
            subprocess.run(["python3", "-m", "tillit", "keys", "generate", "--output",
                            str(keys / name)], check=True, capture_output=True,
                           cwd=Path(__file__).resolve().parent.parent, timeout=30)
            env[setting] = str(keys / name)
        a = ServerProcess(tmp / "a", env)
        b = ServerProcess(tmp / "b", env)
        a.start()
        b.start()
        yield Installation(pg, a, b, prefix)
        a.stop()
        b.stop()
    finally:
        pg.remove()
        client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
        keys_left = list(client.scan_iter(match=f"{prefix}:*"))
        if keys_left:
            client.delete(*keys_left)
        client.close()


async def _create_database(pg: PrivatePostgres) -> None:
    conn = await asyncpg.connect(pg.url.replace("/tillit", "/postgres"), timeout=5)
    try:
        await conn.execute("CREATE DATABASE tillit")
    finally:
        await conn.close()


@pytest.fixture
async def clients() -> AsyncIterator[list[VisitorClient | CounselorClient]]:
    made: list[VisitorClient | CounselorClient] = []
    yield made
    for c in made:
        await c.disconnect()


async def _counselor(made_on: ServerProcess, login_on: ServerProcess,
                     clients: list) -> CounselorClient:
    acct = made_on.add_user()
    c = await CounselorClient.login(login_on.base_url, acct.username, acct.password,
                                    acct.next_totp(), TEST_USER_AGENT)
    await c.connect()
    c.account = acct  # type: ignore[attr-defined]
    clients.append(c)
    return c


async def _visitor(srv: ServerProcess, clients: list) -> VisitorClient:
    v = VisitorClient(srv.base_url, TEST_USER_AGENT)
    await v.connect()
    clients.append(v)
    return v


def _health(srv: ServerProcess) -> tuple[int, dict]:
    req = urllib.request.Request(f"{srv.base_url}/healthz",
                                 headers={"User-Agent": TEST_USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


async def _eventually(check, what: str, wait_s: float = 30.0):  # noqa: ANN001, ANN202
    deadline = time.monotonic() + wait_s
    while True:
        found = await check()
        if found:
            return found
        if time.monotonic() > deadline:
            raise AssertionError(f"not within {wait_s} s: {what}")
        await asyncio.sleep(0.3)


def _assert_data_dirs_empty(inst: Installation) -> None:
    for srv in (inst.a, inst.b):
        assert srv.data_files() == [], srv.data_files()


async def test_an_account_made_with_the_cli_logs_in_on_either_process(
    installation: Installation,
) -> None:
    acct = installation.a.add_user(role="supervisor")
    for srv in (installation.a, installation.b):
        status, body, cookie, _ = await console_login(
            srv.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT)
        assert status == 200 and cookie, body
    rows = await installation.pg.query("SELECT role FROM accounts WHERE username = $1",
                                       acct.username)
    assert [r["role"] for r in rows] == ["supervisor"]
    _assert_data_dirs_empty(installation)


async def test_a_chat_across_processes_and_its_decision_in_the_statistics_of_the_other(
    installation: Installation, clients: list,
) -> None:
    inst = installation
    counselor = await _counselor(inst.a, inst.b, clients)
    chat_ids = []
    # Two chats: statistics show nothing of fewer than two (stats.min_cell is at least 2).
    for n in range(2):
        visitor = await _visitor(inst.a, clients)
        chat_id = await open_chat(visitor, counselor, lang="sv", age_group="13_15",
                                  gender="girl", role="self")
        chat_ids.append(chat_id)
        ok(await visitor.send(f"Hej från process A ({n})"))
        assert (await counselor.receive()).text == f"Hej från process A ({n})"
        ok(await counselor.send(chat_id, "Hej från process B"))
        assert (await visitor.receive()).text == "Hej från process B"

        # The decision is made on B; the supervisor reads the statistics on A.
        ok(await counselor.informed(chat_id))
        ok(await counselor.indicators(chat_id, ["phone_checked", "trip_to_origin"]))
        ok(await counselor.decision(chat_id, "report_made", to="social_services",
                                    channel="oral"))
        ok(await counselor.close(chat_id, {"outcome": "completed", "topics": ["control"]}))
        await visitor.wait_for_event("chat:ended")

    supervisor = inst.a.add_user(role="supervisor")
    status, body, cookie, _ = await console_login(
        inst.a.base_url, supervisor.username, supervisor.password, supervisor.next_totp(),
        TEST_USER_AGENT)
    assert status == 200, body

    async def decision_shown() -> bool:
        status, csv_text, _ = await get(inst.a, f"/console/stats.csv?from={TODAY}&to={TODAY}",
                                        cookie)
        assert status == 200, csv_text
        return "decision,report_made,2" in csv_text.splitlines()

    await _eventually(decision_shown, "the decisions in the statistics read on A")
    csv_text = (await get(inst.a, f"/console/stats.csv?from={TODAY}&to={TODAY}", cookie))[1]
    assert not any(chat_id in csv_text for chat_id in chat_ids)
    _assert_data_dirs_empty(inst)


def _kill(srv: ServerProcess) -> None:
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(timeout=10)
    srv.stop()  # closes its log


async def test_killing_either_process_loses_nothing(
    installation: Installation, clients: list,
) -> None:
    inst = installation
    visitor = await _visitor(inst.a, clients)
    counselor = await _counselor(inst.b, inst.b, clients)
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="18_25")
    last_seen = ok(await visitor.send("Första"))["id"]  # what each side has seen so far
    assert (await counselor.receive()).text == "Första"

    # A (the visitor's) dies; the counselor writes on B; the visitor resumes on B.
    _kill(inst.a)
    texts = ["Är du kvar?", "Jag skriver medan du är borta"]
    ids = [ok(await counselor.send(chat_id, t), "msg:send")["id"] for t in texts]
    visitor.base_url = inst.b.base_url
    res = ok(await visitor.resume(after_id=last_seen), "chat:resume")
    assert [e["id"] for e in res["missed"]] == ids
    assert [m.text for m in visitor.drain_inbox()] == texts
    inst.a.start()

    # B (the counselor's) dies; the visitor, on B too, resumes on A and writes there.
    last_counselor = ids[-1]
    _kill(inst.b)
    visitor.base_url = inst.a.base_url
    ok(await visitor.resume(after_id=visitor.last_id), "chat:resume on A")
    texts = ["Hallå?", "Nu är jag på A"]
    ids = [ok(await visitor.send(t), "msg:send")["id"] for t in texts]
    counselor.base_url = inst.a.base_url
    await counselor.reconnect()  # the same session, read from PostgreSQL by A
    res = ok(await counselor.rejoin(chat_id, after_id=last_counselor), "chat:rejoin")
    assert [e["id"] for e in res["missed"]] == ids
    assert [m.text for m in counselor.drain_inbox()] == texts
    assert counselor.duplicates == 0 and visitor.duplicates == 0
    inst.b.start()

    await visitor.wait_for_event("key:update")
    ok(await counselor.send(chat_id, "Tack för att du väntade"))
    assert (await visitor.receive()).text == "Tack för att du väntade"
    ok(await counselor.close(chat_id, {}))
    _assert_data_dirs_empty(inst)


async def test_a_postgresql_restart_mid_chat_is_survived(
    installation: Installation, clients: list,
) -> None:
    inst = installation
    visitor = await _visitor(inst.a, clients)
    counselor = await _counselor(inst.a, inst.b, clients)
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="18_25")
    facts_before = len(await inst.pg.query("SELECT id FROM stats_facts"))

    inst.pg.stop()
    try:
        for srv in (inst.a, inst.b):
            status, body = _health(srv)
            assert status == 503 and body == {"status": "degraded", "database": "unavailable"}
        # Chat traffic does not wait on the database: both ways, then the close (its fact
        # and audit rows wait in the outbox).
        for n in range(3):
            ok(await visitor.send(f"Meddelande {n} under omstarten"))
            assert (await counselor.receive()).text == f"Meddelande {n} under omstarten"
            ok(await counselor.send(chat_id, f"Svar {n}"))
            assert (await visitor.receive()).text == f"Svar {n}"
        ok(await counselor.close(chat_id, {"outcome": "completed"}))
        await visitor.wait_for_event("chat:ended")
        waiting = redis.Redis.from_url(REDIS_URL).llen(f"{inst.prefix}:outbox")
        assert waiting >= 2, waiting  # at least the fact and the chat.close audit row
    finally:
        inst.pg.start()

    async def healthy() -> bool:
        return all(_health(srv)[0] == 200 for srv in (inst.a, inst.b))

    await _eventually(healthy, "both processes healthy again by themselves")

    async def landed() -> bool:
        closes = await inst.pg.query(
            "SELECT id FROM audit WHERE action = 'chat.close' AND target = $1", chat_id)
        facts = await inst.pg.query("SELECT id FROM stats_facts")
        return len(closes) == 1 and len(facts) == facts_before + 1

    await _eventually(landed, "the close's audit row and its fact, once each")
    await asyncio.sleep(2)  # a retried entry would land twice by now: it does not
    assert await landed()
    assert redis.Redis.from_url(REDIS_URL).llen(f"{inst.prefix}:outbox") == 0
    _assert_data_dirs_empty(inst)
