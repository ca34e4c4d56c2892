"""The ephemeral store contract, run against both backends: real SQLite and real Redis.

Whatever `store` an operator picks, a chat must come back after a restart with its
envelopes, a retried envelope must be stored once, and a purge must leave nothing of
the chat behind. For Redis "nothing" is checked key by key.
"""

from __future__ import annotations

import json
import secrets
import sqlite3
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
import redis.asyncio as aioredis
from support import REDIS_URL, new_chat, open_redis_store, open_store, redis_keys

from tillit.chat_server.chats import hash_token
from tillit.chat_server.model import (
    ACTIVE,
    ENDED,
    META_KEYS,
    QUEUED,
    RETRY_MEMORY,
    VisitorAnswers,
    meta_from_json,
    meta_to_json,
)
from tillit.chat_server.stores import SendRefused, StoreUnavailable
from tillit.chat_server.stores.redis_store import RedisStore
from tillit.chat_server.stores.sqlite_store import SqliteStore


def envelope(chat_id: str, n: int, direction: str = "v2c") -> dict[str, Any]:
    return {"chat_id": chat_id, "id": n, "epoch": 1, "dir": direction, "seq": n - 1,
            "nonce": secrets.token_urlsafe(12), "ct": secrets.token_urlsafe(300),
            "ts": 1_700_000_000_000 + n}


@pytest.fixture(params=["sqlite", "redis"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Any]:
    async with open_store(request.param, tmp_path) as st:
        yield st


async def reopen(store: Any) -> Any:
    """The same store as a restarted process sees it."""
    await store.close()
    await store.open()
    return store


async def test_chats_and_envelopes_survive_a_restart(store: Any) -> None:
    chat = new_chat(state=ACTIVE, epoch=2, counselor="counselor_aster",
                    counselor_name="Aster", counselor_pubkey="BCoun", accepted_at=time.time())
    await store.save_chat(chat)
    for n in (1, 2, 3):
        await store.add_envelope(chat.chat_id, envelope(chat.chat_id, n, "v2c" if n % 2 else "c2v"))
    store = await reopen(store)
    [loaded] = await store.load_chats()
    assert loaded == chat  # every column, types included
    assert (loaded.answers, loaded.flags) == (chat.answers, chat.flags)
    assert loaded.sent == {(1, "v2c", 0): 1, (1, "c2v", 1): 2, (1, "v2c", 2): 3}
    after = await store.envelopes_after(chat.chat_id, 1)
    assert [e["id"] for e in after] == [2, 3]
    assert after[0]["from"] == "counselor" and after[1]["from"] == "visitor"
    assert set(after[0]) == {"chat_id", "epoch", "seq", "nonce", "ct", "id", "from", "ts"}


async def test_a_store_file_from_before_the_rowid_layout_keeps_its_chats(tmp_path: Path) -> None:
    """An upgrade over a running service's file: its open chats and their ciphertext
    come through the change of the envelope table's layout."""
    path = tmp_path / "ephemeral.sqlite3"
    old = SqliteStore(path)
    await old.open()
    chat = new_chat(state=ACTIVE, epoch=1)
    await old.save_chat(chat)
    await old.close()
    old_layout = (
        "CREATE TABLE envelopes (chat_id TEXT NOT NULL, id INTEGER NOT NULL, "
        "epoch INTEGER NOT NULL, dir TEXT NOT NULL, seq INTEGER NOT NULL, "
        "nonce TEXT NOT NULL, ct TEXT NOT NULL, ts INTEGER NOT NULL, "
        "PRIMARY KEY (chat_id, id)) WITHOUT ROWID"
    )
    stored = [envelope(chat.chat_id, n) for n in (1, 2)]
    with sqlite3.connect(path) as db:
        db.execute("DROP TABLE envelopes")
        db.execute(old_layout)
        db.executemany(
            "INSERT INTO envelopes VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(chat.chat_id, e["id"], 1, "v2c", e["seq"], e["nonce"], e["ct"], e["ts"])
             for e in stored],
        )
    db.close()

    store = SqliteStore(path)
    await store.open()
    try:
        got = await store.envelopes_after(chat.chat_id, 0)
        assert [(e["id"], e["ct"]) for e in got] == [(1, stored[0]["ct"]), (2, stored[1]["ct"])]
        await store.add_envelope(chat.chat_id, envelope(chat.chat_id, 3))
        assert [e["id"] for e in await store.envelopes_after(chat.chat_id, 2)] == [3]
    finally:
        await store.close()
    with sqlite3.connect(path) as db:
        [(layout,)] = db.execute(
            "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'envelopes'")
        assert "WITHOUT ROWID" not in layout.upper()
        leftovers = "SELECT name FROM sqlite_master WHERE name LIKE '%without%'"
        assert db.execute(leftovers).fetchall() == []
    db.close()


async def test_an_envelope_is_stored_once_and_in_id_order(store: Any) -> None:
    chat = new_chat(state=ACTIVE, epoch=1)
    await store.save_chat(chat)
    first = envelope(chat.chat_id, 1)
    # Out of order arrival (two connections of a pool) and a retry of id 1.
    await store.add_envelope(chat.chat_id, envelope(chat.chat_id, 2))
    await store.add_envelope(chat.chat_id, first)
    await store.add_envelope(chat.chat_id, {**first, "ts": first["ts"] + 5})
    got = await store.envelopes_after(chat.chat_id, 0)
    assert [e["id"] for e in got] == [1, 2]
    assert got[0]["ts"] == first["ts"] and got[0]["ct"] == first["ct"]


async def test_a_long_chat_keeps_a_bounded_retry_memory(store: Any) -> None:
    """A retry of a recent message keeps its first id however long the chat, and the
    memory for that stays bounded (the 30-minute soak grew ~5 MiB a minute without)."""
    chat = new_chat(state=ACTIVE, epoch=1)
    await store.save_chat(chat)
    sent = [envelope(chat.chat_id, n) for n in range(1, 3 * RETRY_MEMORY)]
    ids = [(await store.append_envelope(chat, {**e, "id": 0}))[0] for e in sent]
    assert ids == list(range(1, 3 * RETRY_MEMORY))
    for recent in sent[-5:]:
        assert await store.append_envelope(chat, {**recent, "id": 0}) == (recent["id"], False)
    assert len(chat.sent) <= RETRY_MEMORY
    assert len(await store.envelopes_after(chat.chat_id, 0)) == 3 * RETRY_MEMORY - 1


async def test_saving_again_updates_the_chat(store: Any) -> None:
    chat = new_chat()
    await store.save_chat(chat)
    chat.state, chat.epoch, chat.counselor = ENDED, 3, None
    chat.ended_at, chat.ended_by = time.time(), "visitor"
    await store.save_chat(chat)
    [loaded] = await (await reopen(store)).load_chats()
    assert (loaded.state, loaded.epoch, loaded.counselor, loaded.ended_by) == (
        ENDED, 3, None, "visitor")


async def test_a_counselors_active_chats_are_counted_without_the_ended_or_queued(
        store: Any) -> None:
    """The limit on parallel chats counts what a counselor holds and is still active:
    not a chat that ended, went back to the queue or was transferred away."""
    chats = [new_chat(state=QUEUED) for _ in range(4)]
    for c in chats:
        await store.save_chat(c)
    for c in chats:
        c.state, c.counselor, c.epoch = ACTIVE, "counselor-x", 1
        assert await store.claim(c, QUEUED)
    assert await store.active_count("counselor-x") == 4
    ended, requeued, moved, _ = chats
    ended.state, ended.ended_at = ENDED, time.time()
    requeued.state, requeued.counselor = QUEUED, None
    moved.counselor = "counselor-y"
    for c in (ended, requeued, moved):
        await store.save_chat(c)
    assert await store.active_count("counselor-x") == 1
    assert await store.active_count("counselor-y") == 1
    assert await store.active_count("counselor-z") == 0


async def test_purge_deletes_the_ciphertext_and_delete_the_whole_chat(store: Any) -> None:
    chat, neighbour = new_chat(state=ACTIVE, epoch=1), new_chat(state=ACTIVE, epoch=1)
    for c in (chat, neighbour):
        await store.save_chat(c)
        await store.add_envelope(c.chat_id, envelope(c.chat_id, 1))
    await store.purge_envelopes(chat.chat_id)
    assert await store.envelopes_after(chat.chat_id, 0) == []
    assert [c.chat_id for c in await store.load_chats()] != []
    await store.delete_chat(chat.chat_id)
    assert [c.chat_id for c in await store.load_chats()] == [neighbour.chat_id]
    assert len(await store.envelopes_after(neighbour.chat_id, 0)) == 1
    if isinstance(store, RedisStore):
        keys = await redis_keys(store.prefix)
        assert not [k for k in keys if chat.chat_id in k or chat.resume_hash in k], keys
        assert store.resume_key(neighbour.resume_hash) in keys


async def test_redis_keys_expire_and_ended_chats_keep_no_ciphertext_past_grace() -> None:
    async with open_redis_store(ciphertext_grace_s=30) as store:
        token = secrets.token_urlsafe(32)
        chat = new_chat(state=ACTIVE, epoch=1, resume_hash=hash_token(token))
        await store.save_chat(chat)
        await store.add_envelope(chat.chat_id, envelope(chat.chat_id, 1))
        for key in store.keys_of(chat.chat_id, chat.resume_hash):
            assert 0 < await store.redis.ttl(key) <= 600, key
        chat.state = ENDED
        await store.save_chat(chat)
        assert 0 < await store.redis.ttl(store.envelopes_key(chat.chat_id)) <= 30
        # Resume tokens are kept only as hashes.
        assert await store.chat_id_for_resume(chat.resume_hash) == chat.chat_id
        keys = await redis_keys(store.prefix)
        # DUMP is binary: read it on a client that decodes nothing (redis 5.0's hiredis
        # parser decodes even DUMP's reply on the store's text client).
        raw = aioredis.Redis.from_url(REDIS_URL, decode_responses=False)
        try:
            dumps = b"".join([await raw.dump(k) or b"" for k in keys])
        finally:
            await raw.aclose()
        assert token not in "".join(keys) and token.encode() not in dumps


async def test_redis_append_checks_sender_state_and_epoch_in_the_same_step() -> None:
    """Redis takes a message in one round trip: no read of the chat before it."""
    async with open_redis_store() as store:
        chat = new_chat(state=ACTIVE, epoch=2, counselor="counselor-x")
        await store.save_chat(chat)

        def env(seq: int, epoch: int = 2, direction: str = "c2v") -> dict[str, Any]:
            return {**envelope(chat.chat_id, 0, direction), "epoch": epoch, "seq": seq}

        refusals = []
        for chat_id, holder, sent in [
            ("no-such-chat", None, env(0, direction="v2c")),
            (chat.chat_id, "counselor-y", env(0)),  # not the one who holds it
            (chat.chat_id, "counselor-x", env(0, epoch=3)),  # a key the chat never had
        ]:
            with pytest.raises(SendRefused) as refused:
                await store.append_checked(chat_id, sent, holder)
            refusals.append(refused.value.code)
        assert refusals == ["not_found", "forbidden", "invalid_payload"]
        assert not (await store.load_chat(chat.chat_id)).flags.counselor_wrote

        assert await store.append_checked(chat.chat_id, env(0, direction="v2c"), None) == (1, True)
        assert await store.append_checked(chat.chat_id, env(0), "counselor-x") == (2, True)
        assert await store.append_checked(chat.chat_id, env(0), "counselor-x") == (2, False)
        # The statistics' "dropped" needs to know the counselor wrote; saving the chat
        # again (any process, any field) keeps that.
        loaded = await store.load_chat(chat.chat_id)
        assert loaded.flags.counselor_wrote is True
        loaded.state = ENDED
        await store.save_chat(loaded)
        assert (await store.load_chat(chat.chat_id)).flags.counselor_wrote is True
        with pytest.raises(SendRefused) as refused:
            await store.append_checked(chat.chat_id, env(1, direction="v2c"), None)
        assert refused.value.code == "conflict"
        assert [e["id"] for e in await store.envelopes_after(chat.chat_id, 0)] == [1, 2]


async def test_unreachable_redis_is_unavailable_not_a_crash() -> None:
    from support import free_port

    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", timeout_s=0.5)
    with pytest.raises(StoreUnavailable):
        await store.open()  # the server refuses to start without its store
    assert await store.healthy() is False
    with pytest.raises(StoreUnavailable):
        await store.save_chat(new_chat())
    with pytest.raises(StoreUnavailable):
        await store.envelopes_after("x", 0)
    await store.close()


async def test_redis_saves_of_two_processes_keep_each_others_fields() -> None:
    """A counselor's report on one process and the visitor's re-key on another, each
    from its own read of the chat: neither undoes the other."""
    async with open_redis_store() as store:
        chat = new_chat(state=ACTIVE, epoch=1, counselor="counselor-x")
        await store.save_chat(chat)
        on_a = await store.load_chat(chat.chat_id)
        on_b = await store.load_chat(chat.chat_id)
        on_a.flags.report = {"indicators": ["phone_checked"]}
        await store.save_chat(on_a)
        on_b.visitor_pubkey, on_b.epoch = "BNew" + secrets.token_urlsafe(60), 2
        await store.save_chat(on_b)
        now = await store.load_chat(chat.chat_id)
        assert now.flags.report == {"indicators": ["phone_checked"]}
        assert (now.visitor_pubkey, now.epoch) == (on_b.visitor_pubkey, 2)


async def test_redis_rekeys_from_both_sides_at_once_get_an_epoch_each() -> None:
    """The visitor's page reloads on one process while the counselor rejoins on another:
    two epochs, both keys kept; a chat that is not active is not re-keyed."""
    async with open_redis_store() as store:
        chat = new_chat(state=ACTIVE, epoch=1, counselor="counselor-x")
        await store.save_chat(chat)
        on_a = await store.load_chat(chat.chat_id)
        on_b = await store.load_chat(chat.chat_id)
        v_key, c_key = "BVis" + secrets.token_urlsafe(60), "BCou" + secrets.token_urlsafe(60)
        assert await store.rekey(on_a, "visitor", v_key)
        assert await store.rekey(on_b, "counselor", c_key)
        assert sorted([on_a.epoch, on_b.epoch]) == [2, 3]
        now = await store.load_chat(chat.chat_id)
        assert (now.epoch, now.visitor_pubkey, now.counselor_pubkey) == (3, v_key, c_key)
        now.state = ENDED
        await store.save_chat(now)
        assert not await store.rekey(now, "visitor", v_key)


def test_a_meta_stored_before_typed_answers_still_reads() -> None:
    """Rows written while `meta` was an untyped dict (before 2026-12) keep their answers
    and flags; a key no longer known is dropped, not a crash at start-up."""
    old = ('{"lang":"ar","age_group":"16_17","gender":null,"role":"professional",'
           '"topics":null,"danger_now":true,"sector":"school","contact":null,"child":false,'
           '"acute":true,"returned":true,"report":{"indicators":["x"]},"retired_flag":1}')
    answers, flags = meta_from_json(old)
    assert answers == VisitorAnswers(lang="ar", age_group="16_17", role="professional",
                                     danger_now=True, sector="school")
    assert (flags.acute, flags.returned, flags.report) == (True, True, {"indicators": ["x"]})
    assert meta_from_json(meta_to_json(answers, flags)) == (answers, flags)


async def test_redis_keeps_a_set_of_the_chats_each_counselor_holds() -> None:
    """Accepting checks the counselor's limit from their own set, not by reading every
    chat: accept, transfer, requeue and delete keep the set in the same step."""
    async with open_redis_store() as store:
        chat, other = new_chat(state=QUEUED), new_chat(state=QUEUED)
        for c in (chat, other):
            await store.save_chat(c)
        mine = await store.load_chat(chat.chat_id)
        mine.state, mine.counselor, mine.epoch = ACTIVE, "counselor-x", 1
        assert await store.claim(mine, QUEUED)
        theirs = await store.load_chat(other.chat_id)
        theirs.state, theirs.counselor = ACTIVE, "counselor-y"
        assert await store.claim(theirs, QUEUED)
        assert [c.chat_id for c in await store.chats_held_by("counselor-x")] == [chat.chat_id]
        assert await store.redis.smembers(store.held_key("counselor-x")) == {chat.chat_id}

        mine.counselor = "counselor-y"  # transfer
        await store.save_chat(mine)
        assert await store.chats_held_by("counselor-x") == []
        assert {c.chat_id for c in await store.chats_held_by("counselor-y")} == {
            chat.chat_id, other.chat_id}
        mine.state, mine.counselor = QUEUED, None  # back to the queue
        await store.save_chat(mine)
        assert [c.chat_id for c in await store.chats_held_by("counselor-y")] == [other.chat_id]
        await store.delete_chat(other.chat_id)
        assert await store.redis.exists(store.held_key("counselor-y")) == 0


async def test_redis_accept_is_one_step_and_has_one_winner() -> None:
    """Two processes accept the same chat from their own reads: one wins, and the other
    wrote nothing (not its name, not its key, not its set)."""
    async with open_redis_store() as store:
        chat = new_chat(state=QUEUED)
        await store.save_chat(chat)
        on_a, on_b = await store.load_chat(chat.chat_id), await store.load_chat(chat.chat_id)
        for copy, who in ((on_a, "counselor-a"), (on_b, "counselor-b")):
            copy.state, copy.epoch, copy.counselor = ACTIVE, 1, who
            copy.counselor_pubkey = f"BPub-{who}"
        assert await store.claim(on_a, QUEUED) is True
        assert await store.claim(on_b, QUEUED) is False
        now = await store.load_chat(chat.chat_id)
        assert (now.counselor, now.counselor_pubkey) == ("counselor-a", "BPub-counselor-a")
        assert await store.chats_held_by("counselor-b") == []
        assert await store.queue_size() == 0


async def test_redis_answers_and_report_changed_on_two_processes_both_stay() -> None:
    """The visitor's new answers (update_meta) on one process and the counselor's report
    on another: each writes only its own fields."""
    async with open_redis_store() as store:
        chat = new_chat(state=ACTIVE, epoch=1, counselor="counselor-x")
        await store.save_chat(chat)
        on_a, on_b = await store.load_chat(chat.chat_id), await store.load_chat(chat.chat_id)
        on_a.answers.lang, on_a.answers.topics = "ar", ["school"]
        on_b.flags.report, on_b.flags.acute = {"indicators": ["threat"]}, True
        await store.save_chat(on_a)
        await store.save_chat(on_b)
        now = await store.load_chat(chat.chat_id)
        assert (now.answers.lang, now.answers.topics) == ("ar", ["school"])
        assert (now.flags.report, now.flags.acute) == ({"indicators": ["threat"]}, True)


async def test_redis_retry_memory_is_bounded_like_sqlite() -> None:
    """The sent map keeps the latest RETRY_MEMORY envelopes only, not one entry per
    message until the chat ends; a recent retry still keeps its first id."""
    async with open_redis_store() as store:
        chat = new_chat(state=ACTIVE, epoch=1)
        await store.save_chat(chat)
        total = RETRY_MEMORY * 2 + 10
        for n in range(1, total + 1):
            await store.append_checked(chat.chat_id, {**envelope(chat.chat_id, n), "id": 0}, None)
        sizes = [await store.redis.hlen(key) for key in store.sent_keys(chat.chat_id)]
        assert RETRY_MEMORY <= sum(sizes) <= 2 * RETRY_MEMORY
        oldest_kept = {**envelope(chat.chat_id, total - RETRY_MEMORY + 1), "id": 0}
        assert await store.append_checked(chat.chat_id, oldest_kept, None) == (
            total - RETRY_MEMORY + 1, False)
        recent = {**envelope(chat.chat_id, total - 3), "id": 0}
        assert await store.append_checked(chat.chat_id, recent, None) == (total - 3, False)


async def test_a_redis_chat_saved_before_typed_answers_reads_and_moves_on() -> None:
    """A hash with the old single `meta` field (before 2026-12) reads; its next save
    writes the fields and drops the old one."""
    async with open_redis_store() as store:
        chat = new_chat()
        await store.save_chat(chat)
        key = store.chat_key(chat.chat_id)
        await store.redis.hdel(key, *META_KEYS)
        await store.redis.hset(key, "meta", json.dumps(meta_to_json(chat.answers, chat.flags)))
        old = await store.load_chat(chat.chat_id)
        assert (old.answers, old.flags) == (chat.answers, chat.flags)
        old.answers.lang = "fi"
        await store.save_chat(old)
        assert await store.redis.hexists(key, "meta") == 0
        assert (await store.load_chat(chat.chat_id)).answers.lang == "fi"


@pytest.mark.parametrize("urgent", [False, True])
async def test_a_chats_place_counted_by_the_store_is_its_place_in_the_sorted_queue(
        store: Any, urgent: bool) -> None:
    """Every `chat:start` is told its place: the store counts it (no read of the whole
    queue), and the count must be the place in the queue as staff see it sorted, with
    only plain chats (the order of arrival) and with urgent ones (danger now, an acute
    topic, returned, children) mixed in; chats of the same second keep one order."""
    from tillit.chat_server.queue_order import urgency_key

    start = time.time()
    chats = []
    for n in range(24):
        chat = new_chat(created_at=start - 100 + (n // 2))  # pairs share a created_at
        chat.answers.danger_now = False
        chat.flags.child = False
        if urgent:
            chat.answers.danger_now = n % 7 == 3
            chat.flags.acute = n % 5 == 1
            chat.flags.returned = n % 4 == 2
            chat.flags.child = n % 3 == 0
        chats.append(chat)
    elsewhere = [new_chat(state=ACTIVE, epoch=1, counselor="counselor_aster"),
                 new_chat(state=ENDED, epoch=1)]
    for chat in [*chats, *elsewhere]:
        if chat.state == QUEUED:
            assert await store.admit_to_queue(chat, 100)
        await store.save_chat(chat)
    ordered = [c.chat_id for c in sorted(await store.queued_chats(), key=urgency_key)]
    assert len(ordered) == 24
    if not urgent:  # the order of arrival
        assert [ordered.index(c.chat_id) // 2 for c in chats] == [n // 2 for n in range(24)]
    places = {c.chat_id: await store.queue_place(c) for c in chats}
    assert places == {chat_id: place for place, chat_id in enumerate(ordered, 1)}
    assert [await store.queue_place(c) for c in elsewhere] == [0, 0]
    # The first one accepted: everyone behind it moves up one place.
    first = next(c for c in chats if c.chat_id == ordered[0])
    first.state, first.epoch, first.counselor = ACTIVE, 1, "counselor_aster"
    await store.save_chat(first)
    assert await store.queue_place(first) == 0
    assert {c.chat_id: await store.queue_place(c) for c in chats if c is not first} == {
        chat_id: place for place, chat_id in enumerate(ordered[1:], 1)}


async def test_a_redis_queue_with_a_chat_saved_before_typed_answers_is_sorted_by_the_caller(
        ) -> None:
    """A hash of the old single-`meta` form holds its flags where the counting script
    does not look: the store says it cannot tell, and the service sorts the queue."""
    async with open_redis_store() as store:
        old, new = new_chat(), new_chat()
        for chat in (old, new):
            assert await store.admit_to_queue(chat, 10)
            await store.save_chat(chat)
        assert await store.queue_place(new) in (1, 2)
        key = store.chat_key(old.chat_id)
        await store.redis.hdel(key, *META_KEYS)
        await store.redis.hset(key, "meta", json.dumps(meta_to_json(old.answers, old.flags)))
        assert await store.queue_place(new) is None


def test_the_writers_batches_are_packed_exactly_as_redis_py_packs_them() -> None:
    """The writer packs with hiredis (C) instead of redis-py's Python: the bytes on the
    wire must be the same for every kind of argument the store sends, large ones too."""
    from redis.asyncio import Connection

    from tillit.chat_server.stores.redis_store import pack_commands

    commands = [("MULTI",),
                ("EVALSHA", "a" * 40, 3, "p:chat:x", "p:sent:x", "p:msgs:x", "å" * 7000, 12,
                 1700000000.123456, 1e-7, -3),
                ("HSET", "p:chat:x", "meta", b"\x00\xff" * 5000), ("EXPIRE", "p:chat:x", 3600),
                ("EXEC",)]
    assert pack_commands(commands) == b"".join(Connection().pack_commands(commands))
