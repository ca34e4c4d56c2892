"""The chat service in process, on each real store: the same calls give the same outcome.

No server and no sockets: a `ChatService` over a real SQLite file and over the real
Redis (a throwaway key prefix), with a relay that only writes down what each side would
hear. A flow that passes on one store and not on the other is a store that does not
keep the one interface (stores.EphemeralStore).
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from support import open_store

from tillit.chat_server.chats import ChatService
from tillit.chat_server.model import ACTIVE, COUNSELOR, QUEUED, VISITOR
from tillit.chat_server.stores.redis_store import RedisStore
from tillit.chat_server.stores.sqlite_store import SqliteStore
from tillit.safety.errors import ProtocolError


class HeardRelay:
    """What each side would hear, in order: (to whom, event, data)."""

    def __init__(self) -> None:
        self.heard: list[tuple[str, str, Any]] = []

    async def to_visitor(self, chat_id: str, event: str, data: Any,
                         skip_sid: str | None = None) -> None:
        self.heard.append(("visitor", event, data))

    async def to_counselor(self, chat_id: str, event: str, data: Any,
                           skip_sid: str | None = None) -> None:
        self.heard.append(("counselor", event, data))

    async def to_both(self, chat_id: str, event: str, data: Any) -> None:
        self.heard.append(("both", event, data))

    async def to_staff(self, event: str, data: Any) -> None:
        self.heard.append(("staff", event, data))

    async def to_user(self, username: str, event: str, data: Any) -> None:
        self.heard.append((username, event, data))

    async def close_counselor_room(self, chat_id: str) -> None:
        pass

    def events(self, whom: str, event: str) -> list[Any]:
        return [d for w, e, d in self.heard if w == whom and e == event]


class NoFeedback:
    def expect(self, chat_id: str) -> None:
        pass

    async def give(self, chat_id: str, helped: str | None, score: int | None) -> None:
        pass


class CountedFacts:
    """Where the service's statistics facts go; counts them so a test can see them."""

    def __init__(self) -> None:
        self.closed_chats: list[str] = []
        self.abandoned_chats: list[str] = []

    async def closed(self, chat: Any, form: dict[str, Any], report: Any) -> int:
        self.closed_chats.append(chat.chat_id)
        return len(self.closed_chats)

    async def abandoned(self, chat: Any) -> int:
        self.abandoned_chats.append(chat.chat_id)
        return len(self.abandoned_chats)


async def no_audit(action: str, **fields: object) -> None:
    pass


@pytest.fixture(params=["sqlite", "redis"])
async def service(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[ChatService]:
    async with open_store(request.param, tmp_path) as store:
        chats = ChatService(
            store, HeardRelay(), no_audit,  # type: ignore[arg-type]
            child_age_groups=["13_15"], resume_window_s=600, ciphertext_grace_s=0,
            max_queue=2, default_wait_per_place_s=60, feedback=NoFeedback(),
            facts=CountedFacts(), max_parallel=4, grace_s=120, queue_push_interval_s=0.01,
            topics=[], queued_gone_s=120, visitors_here=lambda: (),
        )
        await chats.load()
        yield chats


def envelope(chat_id: str, seq: int, epoch: int = 1) -> dict[str, Any]:
    return {"chat_id": chat_id, "epoch": epoch, "seq": seq,
            "nonce": secrets.token_urlsafe(12), "ct": secrets.token_urlsafe(40)}


async def refused(coro: Any) -> str:
    with pytest.raises(ProtocolError) as caught:
        await coro
    return caught.value.code


async def test_queue_accept_send_and_end(service: ChatService) -> None:
    relay: HeardRelay = service.relay  # type: ignore[assignment]
    chat, token = await service.start("BPubVisitor", {"lang": "sv", "age_group": "13_15",
                                                      "topics": ["control"]})
    assert [c.chat_id for c in await service.queue()] == [chat.chat_id]
    assert await service.queue_length() == 1
    assert (await service.by_resume_token(token)).chat_id == chat.chat_id

    taken = await service.accept(chat.chat_id, "counselor-a", "Alex", "BPubCounselor")
    assert (taken.state, taken.epoch, taken.counselor) == (ACTIVE, 1, "counselor-a")
    assert await service.queue_length() == 0
    assert relay.events("visitor", "chat:assigned")[0]["counselor_name"] == "Alex"

    first = await service.send(chat.chat_id, VISITOR, envelope(chat.chat_id, 0), "sid-v")
    again = await service.send(chat.chat_id, VISITOR, envelope(chat.chat_id, 0), "sid-v")
    second = await service.send(chat.chat_id, COUNSELOR, envelope(chat.chat_id, 0), "sid-c",
                                holder="counselor-a")
    assert (first, again, second) == (1, 1, 2)  # a retry keeps its first id, stored once
    assert [e["id"] for e in await service.store.envelopes_after(chat.chat_id, 0)] == [1, 2]
    # The counselor's other sockets hear their own message too (sender's socket skipped).
    assert [m["id"] for m in relay.events("counselor", "msg:new")] == [1, 2]
    assert [m["id"] for m in relay.events("visitor", "msg:new")] == [2]
    assert (await service.get(chat.chat_id)).flags.counselor_wrote is True

    await service.end(await service.get(chat.chat_id), VISITOR, "done")
    assert relay.events("both", "chat:ended") == [
        {"chat_id": chat.chat_id, "by": VISITOR, "reason": "done"}]
    assert await service.store.envelopes_after(chat.chat_id, 0) == []
    assert await refused(service.send(chat.chat_id, VISITOR,
                                      envelope(chat.chat_id, 1), "sid-v")) == "conflict"


async def test_the_send_rule_refuses_alike_on_both_stores(service: ChatService) -> None:
    chat, _ = await service.start("BPubVisitor", {"lang": "sv"})
    queued = envelope(chat.chat_id, 0)
    assert await refused(service.send(chat.chat_id, VISITOR, queued, "s")) == "conflict"
    assert await refused(service.send("no-such-chat", VISITOR, queued, "s")) == "not_found"
    await service.accept(chat.chat_id, "counselor-a", None, "BPubCounselor")
    assert await refused(service.send(chat.chat_id, COUNSELOR, envelope(chat.chat_id, 0), "s",
                                      holder="counselor-b")) == "forbidden"
    assert await refused(service.send(chat.chat_id, VISITOR, envelope(chat.chat_id, 0, epoch=2),
                                      "s")) == "invalid_payload"
    # Nothing refused took an id: the first stored message is 1.
    assert await service.send(chat.chat_id, VISITOR, envelope(chat.chat_id, 0), "s") == 1


async def test_queue_cap_rekey_requeue_and_a_second_accept(service: ChatService) -> None:
    one, _ = await service.start("BPub1", {"lang": "sv"})
    await service.start("BPub2", {"lang": "sv"})
    assert await refused(service.start("BPub3", {"lang": "sv"})) == "busy"

    await service.accept(one.chat_id, "counselor-a", None, "BPubA")
    assert await refused(service.accept(one.chat_id, "counselor-b", None, "BPubB")) == "conflict"
    chat = await service.get(one.chat_id)
    assert await service.rekey(chat, VISITOR, "BPubNew") == 2
    await service.requeue(await service.get(one.chat_id), "counselor_gone")
    back = await service.get(one.chat_id)
    assert back.state == QUEUED and back.counselor is None
    assert (await service.queue())[0].chat_id == one.chat_id  # a returned chat goes first
    again = await service.accept(one.chat_id, "counselor-b", None, "BPubB")
    assert again.epoch == 3  # an epoch number is never reused


async def test_a_counselor_gone_past_the_grace_period_gives_the_chat_back(
        service: ChatService) -> None:
    service.presence.sweep_every_s = 0.05  # the sweep lock (Redis) lasts 80 % of this
    chat, _ = await service.start("BPub1", {"lang": "sv"})
    await service.counselor_online("counselor-a")
    await service.accept(chat.chat_id, "counselor-a", None, "BPubA")
    await service.counselor_offline("counselor-a", now=1000.0)
    await service.sweep(now=1000.0 + service.presence.grace_s / 2)
    assert (await service.get(chat.chat_id)).state == ACTIVE
    await asyncio.sleep(0.1)
    await service.sweep(now=1000.0 + service.presence.grace_s + 1)
    assert (await service.get(chat.chat_id)).state == QUEUED


@pytest.mark.parametrize("store_class", [SqliteStore, RedisStore])
def test_each_store_implements_the_whole_interface(store_class: type) -> None:
    """The service calls only EphemeralStore: a method one store lacks would fail only
    when that store runs, so each must offer every one, with the same parameters."""
    import inspect

    from tillit.chat_server.stores import EphemeralStore

    wanted = {name: inspect.signature(member) for name, member in vars(EphemeralStore).items()
              if inspect.iscoroutinefunction(member)}
    assert len(wanted) > 20
    for name, signature in wanted.items():
        member = getattr(store_class, name, None)
        assert member is not None and inspect.iscoroutinefunction(inspect.unwrap(member)), name
        assert list(inspect.signature(member).parameters) == list(signature.parameters), name


async def test_a_returning_chats_mailbox_link_lives_as_long_as_the_chat(
        service: ChatService) -> None:
    """docs/protocol.md E12.9: the link is in the chat's stored record (so any process
    reading the store finds it), through accept and requeue, and cleared at the end even
    where the ended chat is kept for the closing form; the purge takes the rest."""
    mailbox_id = "mb-" + secrets.token_urlsafe(16)

    async def stored_link() -> list[str | None]:
        return [c.flags.mailbox_id for c in await service.store.load_chats()
                if c.chat_id == chat.chat_id]

    chat, _ = await service.start("BPubVisitor", {"lang": "sv"}, returning=True,
                                  prefer="counselor-a", mailbox_id=mailbox_id)
    assert await stored_link() == [mailbox_id]
    await service.accept(chat.chat_id, "counselor-b", None, "BPubB")
    await service.requeue(await service.get(chat.chat_id), "counselor_gone")
    await service.accept(chat.chat_id, "counselor-a", None, "BPubA")
    assert await stored_link() == [mailbox_id]
    await service.end(await service.get(chat.chat_id), VISITOR)
    assert await stored_link() == [None]  # kept for the closing form, without the link
    await service.close(await service.get(chat.chat_id), {}, None, "counselor-a")
    assert await stored_link() == []


async def test_online_anywhere_reads_other_processes_stamps_only_when_shared(
        service: ChatService) -> None:
    """A returning contact's counselor may be on another machine (Redis): their fresh
    presence stamp counts. With one process (SQLite) only a socket here counts: the stamp
    of a counselor who just left must not keep them "online"."""
    await service.store.mark_seen(["counselor-elsewhere"], time.time())
    await service.counselor_online("counselor-here")
    online = await service.online_anywhere()
    assert online("counselor-here") is True
    assert online("counselor-elsewhere") is service.store.shared
    assert online("counselor-nowhere") is False
    # Their last socket here closes: the stamp written then says "left", not "here".
    await service.counselor_offline("counselor-here")
    assert (await service.online_anywhere())("counselor-here") is False
    # A later stamp of another process (a socket of theirs there) counts again.
    await service.store.mark_seen(["counselor-here"], time.time() + 1)
    assert (await service.online_anywhere())("counselor-here") is service.store.shared


def accepted_ids(relay: HeardRelay) -> list[str]:
    """Every chat staff were told was accepted, in order, from all `chat:accepted`."""
    return [one["chat_id"] for data in relay.events("staff", "chat:accepted")
            for one in data.get("accepted", [data])]


async def test_a_burst_of_accepts_is_told_to_staff_in_few_events_and_none_is_missed(
        service: ChatService) -> None:
    """Each `chat:accepted` goes to every staff socket: twelve accepts at once share an
    event or two, yet every chat is in one, with who took it, and the first is told at
    once (colleagues must see it leave the queue before they click it too)."""
    relay: HeardRelay = service.relay  # type: ignore[assignment]
    service.max_queue = 20
    first, _ = await service.start("BPub0", {"lang": "sv"})
    await service.accept(first.chat_id, "counselor-a", "Alex", "BPubA")
    for _ in range(3):
        await asyncio.sleep(0)
    assert relay.events("staff", "chat:accepted") == [{"chat_id": first.chat_id, "by": "Alex"}]
    chats = [(await service.start(f"BPub{n}", {"lang": "sv"}))[0] for n in range(1, 13)]
    takers = ["counselor-a"] * 3 + ["counselor-b"] * 4 + ["counselor-c"] * 4 + ["counselor-d"]
    await asyncio.gather(*(service.accept(c.chat_id, who, None, "BPubX")
                           for c, who in zip(chats, takers, strict=True)))
    await asyncio.sleep(0.3)
    events = relay.events("staff", "chat:accepted")
    assert len(events) <= 3
    assert sorted(accepted_ids(relay)) == sorted([first.chat_id] + [c.chat_id for c in chats])
    by = {one["chat_id"]: one["by"] for data in events for one in data.get("accepted", [data])}
    assert [by[c.chat_id] for c in chats] == takers
    for data in events:  # `chat_id`/`by` of a shared event are its first entry's
        assert {"chat_id": data["chat_id"], "by": data["by"]} == data.get("accepted", [data])[0]


async def test_a_chat_back_in_the_queue_before_its_accept_was_told_is_not_told(
        service: ChatService, monkeypatch: pytest.MonkeyPatch) -> None:
    """Told late, `chat:accepted` would take a chat that is queued again off the
    colleagues' lists until the next queue push."""
    import tillit.chat_server.chats as chats_module

    monkeypatch.setattr(chats_module, "ACCEPTED_PUSH_INTERVAL_S", 1.0)
    relay: HeardRelay = service.relay  # type: ignore[assignment]
    one, _ = await service.start("BPub1", {"lang": "sv"})
    two, _ = await service.start("BPub2", {"lang": "sv"})
    await service.accept(one.chat_id, "counselor-a", None, "BPubA")
    await asyncio.sleep(0.05)  # told at once; the next ones wait for the interval
    await service.accept(two.chat_id, "counselor-a", None, "BPubA")
    await service.requeue(await service.get(two.chat_id), "counselor_gone")
    await asyncio.sleep(1.3)
    assert accepted_ids(relay) == [one.chat_id]
