"""Two server processes on one Redis: any process serves any chat, and a process killed
with SIGKILL mid-chat loses nothing (issue 6, "Done when").

Both processes share the durable store (one --data-dir: accounts, sessions, audit) and
one Redis key prefix; each test uses a prefix of its own and deletes its keys after.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis
import redis.asyncio as aioredis
from protocol_client import CounselorClient, VisitorClient, ok, open_chat
from support import (
    REDIS_URL,
    ServerPair,
    ServerProcess,
    connect_counselor,
    connect_visitor,
    redis_keys,
    server_pair,
)

from tillit.chat_server.chats import hash_token


@pytest.fixture
def pair(tmp_path: Path, request: pytest.FixtureRequest) -> Iterator[ServerPair]:
    """Two processes on one Redis; a test may add settings (indirect parametrize)."""
    # A process alone stays quiet for the whole test unless a newcomer says hello.
    env = {"TILLIT_SERVER_REDIS_PUBLISH_RECHECK_S": "60", **getattr(request, "param", {})}
    with server_pair(tmp_path, env) as both:
        yield both


@pytest.fixture
async def clients() -> AsyncIterator[list[VisitorClient | CounselorClient]]:
    made: list[VisitorClient | CounselorClient] = []
    yield made
    for c in made:
        await c.disconnect()


async def _counselor(srv: ServerProcess, made: list) -> CounselorClient:
    made.append(await connect_counselor(srv))
    return made[-1]


async def _visitor(srv: ServerProcess, made: list) -> VisitorClient:
    made.append(await connect_visitor(srv.base_url))
    return made[-1]


def _kill(srv: ServerProcess) -> None:
    assert srv.proc is not None
    os.kill(srv.proc.pid, signal.SIGKILL)
    srv.proc.wait(timeout=10)


def _move(client: VisitorClient | CounselorClient, srv: ServerProcess) -> None:
    client.base_url = srv.base_url


async def _assert_chat_keys_gone(prefix: str, chat_id: str, resume_token: str) -> None:
    left = [k for k in await redis_keys(prefix)
            if chat_id in k or hash_token(resume_token) in k]
    assert left == [], left
    # What remains belongs to the prefix as a whole (presence stamps, the sweeper's lock,
    # solved proof-of-work challenges until they expire: they name no chat; the outbox
    # for the moment its last entries are being written to the durable database).
    shared = {f"{prefix}:{name}"
              for name in ("seen", "vseen", "lock:sweeper", "queue", "chats", "outbox")}
    solved = [k for k in await redis_keys(prefix) if k.startswith(f"{prefix}:pow:")]
    assert set(await redis_keys(prefix)) - set(solved) <= shared, await redis_keys(prefix)
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        for key in solved:
            assert await client.ttl(key) > 0, key
        assert not await client.hexists(f"{prefix}:vseen", chat_id)
    finally:
        await client.aclose()


async def test_visitor_process_killed_resume_on_the_other_delivers_every_missed_message(
    pair: ServerPair, clients: list,
) -> None:
    visitor = await _visitor(pair.a, clients)
    counselor = await _counselor(pair.b, clients)
    # The counselor on B sees a chat started on A and accepts it.
    ok(await visitor.start(lang="sv", age_group="18_25"), "chat:start")
    queue = ok(await counselor.queue_list(), "queue:list")["queue"]
    assert visitor.chat_id in [q["chat_id"] for q in queue]
    ok(await counselor.accept(visitor.chat_id), "chat:accept")
    await visitor.wait_assigned()
    chat_id = visitor.chat_id
    assert chat_id is not None

    # Both ways across the two processes (fan-out over Redis).
    ok(await visitor.send("Hej, är det någon där?"))
    assert (await counselor.receive()).text == "Hej, är det någon där?"
    ok(await counselor.send(chat_id, "Ja, jag är här."))
    assert (await visitor.receive()).text == "Ja, jag är här."
    last_seen = visitor.last_id

    # A dies without a word; the counselor keeps writing on B.
    _kill(pair.a)
    texts = [f"Meddelande {n} medan du var borta" for n in range(1, 6)]
    acks = [ok(await counselor.send(chat_id, t), "msg:send") for t in texts]
    ids = [a["id"] for a in acks]
    assert ids == sorted(ids) and ids[0] > last_seen

    # The visitor's page reconnects to B: every missed message once, in order.
    _move(visitor, pair.b)
    res = ok(await visitor.resume(after_id=last_seen), "chat:resume")
    assert res["state"] == "active" and res["chat_id"] == chat_id
    assert [e["id"] for e in res["missed"]] == ids
    assert [m.text for m in visitor.drain_inbox()] == texts
    assert visitor.duplicates == 0 and visitor.decrypt_errors == []

    # The chat goes on, both ways, on B.
    ok(await visitor.send("Tack, nu är jag tillbaka"))
    assert (await counselor.receive()).text == "Tack, nu är jag tillbaka"
    ok(await counselor.send(chat_id, "Bra."))
    assert (await visitor.receive()).text == "Bra."
    ack = ok(await visitor.resume(after_id=visitor.last_id), "resume again")
    assert ack["missed"] == []

    # After the end and the close, nothing of the chat is left in Redis.
    ok(await visitor.end(), "chat:end")
    await counselor.wait_for_event("chat:ended")
    ok(await counselor.close(chat_id, {}), "chat:close")
    await _assert_chat_keys_gone(pair.prefix, chat_id, visitor.resume_token)


async def test_counselor_process_killed_rejoin_on_the_other(
    pair: ServerPair, clients: list,
) -> None:
    counselor = await _counselor(pair.a, clients)
    visitor = await _visitor(pair.b, clients)
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="18_25")
    ok(await visitor.send("Första"))
    assert (await counselor.receive()).text == "Första"
    last_seen = counselor.last_id_in(chat_id)

    _kill(pair.a)
    texts = ["Hallå?", "Är du kvar?", "Jag väntar."]
    ids = [ok(await visitor.send(t), "msg:send")["id"] for t in texts]
    assert ids == sorted(ids) and ids[0] > last_seen

    # The console reconnects to B with the same session and rejoins with a new key.
    _move(counselor, pair.b)
    await counselor.reconnect()
    mine = ok(await counselor.mine(), "chat:mine")["chats"]
    assert [c["chat_id"] for c in mine] == [chat_id]
    res = ok(await counselor.rejoin(chat_id, after_id=last_seen), "chat:rejoin")
    assert [e["id"] for e in res["missed"]] == ids
    assert [m.text for m in counselor.drain_inbox()] == texts
    assert counselor.duplicates == 0 and counselor.decrypt_errors == []

    # The visitor learns the new key and the chat goes on.
    await visitor.wait_for_event("key:update")
    ok(await counselor.send(chat_id, "Förlåt, nu är jag här igen."))
    assert (await visitor.receive()).text == "Förlåt, nu är jag här igen."
    ok(await visitor.send("Skönt"))
    assert (await counselor.receive()).text == "Skönt"

    ok(await counselor.close(chat_id, {}), "chat:close")
    await visitor.wait_for_event("chat:ended")
    await _assert_chat_keys_gone(pair.prefix, chat_id, visitor.resume_token)


async def test_one_chat_is_accepted_once_across_processes(pair: ServerPair, clients: list) -> None:
    visitor = await _visitor(pair.a, clients)
    first = await _counselor(pair.a, clients)
    second = await _counselor(pair.b, clients)
    ok(await visitor.start(lang="sv", age_group="18_25"), "chat:start")
    acks = await asyncio.gather(first.accept(visitor.chat_id), second.accept(visitor.chat_id))
    assert sorted(bool(a.get("ok")) for a in acks) == [False, True], acks
    loser = next(a for a in acks if not a.get("ok"))
    assert loser["error"]["code"] == "conflict"
    winner = first if acks[0].get("ok") else second
    ok(await visitor.end(), "chat:end")
    await winner.wait_for_event("chat:ended")
    ok(await winner.close(visitor.chat_id, {}), "chat:close")
    await _assert_chat_keys_gone(pair.prefix, visitor.chat_id, visitor.resume_token)


def _publishes() -> int:
    """PUBLISH commands Redis has run so far (every test's own channel counts)."""
    client = redis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        return int(client.info("commandstats").get("cmdstat_publish", {}).get("calls", 0))
    finally:
        client.close()


async def test_a_process_alone_publishes_nothing_and_hears_a_newcomer(
    pair: ServerPair, clients: list,
) -> None:
    """One process on Redis does not pay a publish per message for nobody, and a process
    that starts later still gets every live message for its sockets (it says hello)."""
    _kill(pair.b)
    visitor = await _visitor(pair.a, clients)
    counselor = await _counselor(pair.a, clients)
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="18_25")
    ok(await visitor.send("Första"))
    assert (await counselor.receive()).text == "Första"

    before = _publishes()
    for n in range(20):
        ok(await visitor.send(f"Ensam {n}"))
        assert (await counselor.receive()).text == f"Ensam {n}"
    assert _publishes() - before <= 1  # not one publish per message

    # B starts again; the visitor's page reconnects to B, the counselor stays on A.
    pair.b.start()
    _move(visitor, pair.b)
    ok(await visitor.resume(after_id=visitor.last_id), "chat:resume")
    ok(await counselor.send(chat_id, "Hörs jag fortfarande?"))  # from A, live, to B
    assert (await visitor.receive()).text == "Hörs jag fortfarande?"
    ok(await visitor.send("Ja."))
    assert (await counselor.receive()).text == "Ja."


async def test_a_burst_crosses_processes_in_id_order(pair: ServerPair, clients: list) -> None:
    """Messages of one chat are stored concurrently but relayed in id order."""
    visitor = await _visitor(pair.a, clients)
    counselor = await _counselor(pair.b, clients)
    await open_chat(visitor, counselor, lang="sv", age_group="18_25")
    texts = [f"Rad {n}" for n in range(40)]
    acks = await asyncio.gather(*(visitor.send(t) for t in texts))
    ids = [ok(a, "msg:send")["id"] for a in acks]
    assert ids == sorted(ids)
    got = await counselor.receive_n(len(texts))
    assert [m.id for m in got] == ids
    assert [m.text for m in got] == texts


async def test_transfer_to_a_colleague_on_the_other_process(
    pair: ServerPair, clients: list,
) -> None:
    """With nginx spreading consoles over processes, a named colleague is often elsewhere."""
    visitor = await _visitor(pair.a, clients)
    first = await _counselor(pair.a, clients)
    second = await _counselor(pair.b, clients)
    chat_id = await open_chat(visitor, first, lang="sv", age_group="16_17")

    online = ok(await first.staff_online(), "staff:online")["staff"]
    assert second.account.username in [s["username"] for s in online]
    ok(await first.transfer(chat_id, second.account.username), "chat:transfer")
    handed = await second.wait_for_event("chat:transferred", lambda d: d["chat_id"] == chat_id)
    assert handed["from"] == first.account.display_name
    ok(await second.rejoin(chat_id, after_id=0), "chat:rejoin")
    assigned = await visitor.wait_for_event(
        "chat:assigned", lambda d: d["chat_id"] == chat_id and d["epoch"] == 2)
    # The colleague's account was read on the other process: still the display name only.
    assert assigned["counselor_name"] == second.account.display_name
    assert second.account.username not in str(assigned)
    ok(await visitor.send("Är det du nu?"))
    assert (await second.receive()).text == "Är det du nu?"
    ok(await second.close(chat_id, {}), "chat:close")


@pytest.mark.parametrize("pair", [{"TILLIT_CHAT_SWEEP_INTERVAL_S": "0.3",
                                   "TILLIT_CHAT_RESUME_WINDOW_S": "1"}], indirect=True)
async def test_a_visitor_whose_process_died_and_who_never_came_back_times_out(
    pair: ServerPair, clients: list,
) -> None:
    """Nobody marked the visitor gone (their process was killed): the other process
    sees their presence stamps stop and ends the chat after the resume window."""
    visitor = await _visitor(pair.a, clients)
    counselor = await _counselor(pair.b, clients)
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="18_25")
    ok(await visitor.send("Hej"))
    assert (await counselor.receive()).text == "Hej"
    _kill(pair.a)
    ended = await counselor.wait_for_event(
        "chat:ended", lambda d: d["chat_id"] == chat_id, wait_s=10)
    assert ended["by"] == "timeout"
    ok(await counselor.close(chat_id, {}), "chat:close")
    await _assert_chat_keys_gone(pair.prefix, chat_id, visitor.resume_token)
