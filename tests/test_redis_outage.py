"""`store = "redis"` against a Redis of the test's own, which the test kills and restarts.

A restarted Redis must not crash the server: while it is gone, writes are refused with
`unavailable` (never acknowledged, so never lost) and /healthz says `degraded`; once it
is back the same chats go on, and a chat that ends leaves no key behind.
"""

from __future__ import annotations

import asyncio
import shutil
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from protocol_client import error_code, ok, open_chat
from support import (
    TEST_USER_AGENT,
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    free_port,
    new_chat,
)

from tillit.chat_server.model import ACTIVE
from tillit.chat_server.stores import StoreUnavailable
from tillit.chat_server.stores.redis_store import RedisStore

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="no redis-server")


class OwnRedis:
    """`redis-server` on a free port, persisting every write (appendfsync always)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(port=self.port)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                if client.ping():
                    return
            except redis.ConnectionError:
                time.sleep(0.05)
        raise AssertionError("redis-server did not start")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)

    def keys(self) -> list[str]:
        return sorted(k.decode() for k in redis.Redis(port=self.port).keys("*"))


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    folder = tmp_path / "redis"
    folder.mkdir()
    rds = OwnRedis(folder)
    rds.start()
    yield rds
    rds.kill()


@pytest.fixture
def redis_server(tmp_path: Path, own_redis: OwnRedis) -> Iterator[ServerProcess]:
    srv = ServerProcess(tmp_path / "srv", {"TILLIT_STORE": "redis",
                                           "TILLIT_REDIS_URL": own_redis.url})
    srv.start()
    yield srv
    srv.stop()


def health(srv: ServerProcess) -> tuple[int, str]:
    req = urllib.request.Request(f"{srv.base_url}/healthz",
                                 headers={"User-Agent": TEST_USER_AGENT})
    try:
        with urllib.request.urlopen(req, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


async def test_redis_outage_is_reported_and_recovered_without_loss(
    redis_server: ServerProcess, own_redis: OwnRedis,
    make_visitor: MakeVisitor, make_counselor: MakeCounselor,
) -> None:
    counselor = await make_counselor(redis_server)
    visitor = await make_visitor(redis_server)
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="over_25")
    first = ok(await visitor.send("före avbrottet"))
    assert (await counselor.receive()).text == "före avbrottet"
    assert any(chat_id in k for k in own_redis.keys())

    own_redis.kill()
    status, body = health(redis_server)
    assert status == 503 and "degraded" in body, (status, body)
    assert error_code(await visitor.send("under avbrottet")) == "unavailable"
    assert error_code(await counselor.send(chat_id, "svar under avbrottet")) == "unavailable"
    newcomer = await make_visitor(redis_server)
    assert error_code(await newcomer.start(lang="sv")) == "unavailable"
    assert redis_server.proc is not None and redis_server.proc.poll() is None  # still serving
    assert visitor.connected and counselor.connected

    own_redis.start()  # same port, same append-only file
    deadline = time.monotonic() + 15
    while health(redis_server)[0] != 200:
        assert time.monotonic() < deadline, "the server did not recover"
        await asyncio.sleep(0.2)
    again = ok(await visitor.send("efter avbrottet"))
    assert again["id"] > first["id"]  # ids increase; refused sends may leave a gap
    assert (await counselor.receive()).text == "efter avbrottet"
    reply = ok(await counselor.send(chat_id, "välkommen tillbaka"))
    assert (await visitor.receive()).text == "välkommen tillbaka"
    # What was stored before the outage is still there for a resume.
    resumed = ok(await visitor.resume(after_id=0))
    assert [e["id"] for e in resumed["missed"]] == [first["id"], again["id"], reply["id"]]
    ok(await newcomer.start(lang="sv"), "a new chat after the outage")
    ok(await newcomer.end())

    # The chat ends and is closed: no key of it (or of the new one) remains.
    ok(await visitor.end())
    ok(await counselor.close(chat_id, {}))

    def leftovers() -> list[str]:
        left = own_redis.keys()
        return [k for k in left if chat_id in k or (newcomer.chat_id or "?") in k
                or ":resume:" in k or ":env:" in k]

    for _ in range(50):  # deleted as the chats end: up to 10 s, not one short sleep
        if not leftovers():
            break
        await asyncio.sleep(0.2)
    assert not leftovers(), leftovers()


async def test_scripts_flushed_from_redis_cost_one_refusal_then_are_loaded_again(
    own_redis: OwnRedis,
) -> None:
    """The store's writer sends its scripts by hash and loads them when it connects. If
    they vanish meanwhile (an operator's SCRIPT FLUSH), one write is refused, not
    acknowledged, and the next one reconnects, loads them and gets the next id."""
    store = RedisStore(own_redis.url, prefix="tillit-scripts", ttl_s=600)
    await store.open()
    try:
        chat = new_chat(state=ACTIVE, epoch=1, counselor="counselor-x")
        await store.save_chat(chat)
        first, second = ({"chat_id": chat.chat_id, "id": 0, "epoch": 1, "dir": "v2c",
                          "seq": seq, "nonce": "bm9uY2Vub25jZQ", "ct": "Y3QtY3QtY3Q",
                          "ts": 1_700_000_000_000} for seq in (0, 1))
        assert await store.append_checked(chat.chat_id, first, None) == (1, True)
        redis.Redis(port=own_redis.port).script_flush()
        with pytest.raises(StoreUnavailable):
            await store.append_checked(chat.chat_id, second, None)
        assert await store.append_checked(chat.chat_id, second, None) == (2, True)
        assert [e["seq"] for e in await store.envelopes_after(chat.chat_id, 0)] == [0, 1]
    finally:
        await store.close()
