"""The Redis store's writer: batches on one connection, scripts by hash.

What must hold however the batches overlap: a chat's ids are gapless and stored in id
order, every acknowledged message is stored under the id its sender was told, and when
the connection breaks with batches in flight nothing acknowledged is missing and a
resent message gets the id it got first (or its first id, if it was never stored).
"""

from __future__ import annotations

import asyncio
import secrets
from typing import Any

import redis.asyncio as aioredis
from support import REDIS_URL, new_chat, open_redis_store

from tillit.chat_server.model import ACTIVE
from tillit.chat_server.stores import StoreUnavailable
from tillit.chat_server.stores.redis_store import RedisStore

SENDS = 300


def visitor_envelope(chat_id: str, seq: int) -> dict[str, Any]:
    return {"chat_id": chat_id, "id": 0, "epoch": 1, "dir": "v2c", "seq": seq,
            "nonce": secrets.token_urlsafe(12), "ct": secrets.token_urlsafe(200),
            "ts": 1_700_000_000_000 + seq}


async def test_many_sends_at_once_get_gapless_ids_stored_in_order() -> None:
    async with open_redis_store() as store:
        chat = new_chat(state=ACTIVE, epoch=1, counselor="counselor-x")
        await store.save_chat(chat)
        acks = await asyncio.gather(*(
            store.append_checked(chat.chat_id, visitor_envelope(chat.chat_id, seq), None)
            for seq in range(SENDS)))
        assert sorted(new_id for new_id, _ in acks) == list(range(1, SENDS + 1))
        stored = await store.envelopes_after(chat.chat_id, 0)
        assert [e["id"] for e in stored] == list(range(1, SENDS + 1))
        told = {seq: new_id for seq, (new_id, _) in enumerate(acks)}
        assert all(told[e["seq"]] == e["id"] for e in stored)


async def test_a_broken_writer_connection_loses_nothing_acknowledged() -> None:
    async with open_redis_store() as store:
        chat = new_chat(state=ACTIVE, epoch=1, counselor="counselor-x")
        await store.save_chat(chat)
        sent = {seq: visitor_envelope(chat.chat_id, seq) for seq in range(SENDS)}

        async def send(seq: int) -> int | None:
            try:
                new_id, _ = await store.append_checked(chat.chat_id, sent[seq], None)
            except StoreUnavailable:
                return None  # not acknowledged: the page sends it again
            return new_id

        admin = aioredis.from_url(REDIS_URL, decode_responses=True)
        try:
            writer = next(c for c in await admin.client_list()
                          if c.get("name") == f"{store.prefix}-writer")
            tasks = []
            for seq in range(SENDS):  # a steady stream, several batches out at a time
                tasks.append(asyncio.ensure_future(send(seq)))
                if seq == SENDS // 3:
                    await admin.client_kill_filter(_id=writer["id"])
                if seq % 10 == 9:
                    await asyncio.sleep(0.001)
            first = await asyncio.gather(*tasks)
        finally:
            await admin.aclose()
        acknowledged = {seq: new_id for seq, new_id in enumerate(first) if new_id is not None}
        assert 0 < len(acknowledged) < SENDS  # the break did hit writes in flight
        # The writer reconnects; what was refused is sent again, as the page does.
        again = {seq: await send(seq) for seq in range(SENDS) if seq not in acknowledged}
        assert None not in again.values()
        told = {**acknowledged, **again}
        stored = await store.envelopes_after(chat.chat_id, 0)
        assert [e["id"] for e in stored] == list(range(1, SENDS + 1))
        assert {e["seq"]: e["id"] for e in stored} == told


async def test_chat_set_ups_need_no_pooled_connection() -> None:
    """A burst of chat set-ups (queue length, proof-of-work claim, admission, save, place,
    presence stamp, load, a counselor's active count) shares the writer's pipelines: with
    the store's only pooled connection busy (a long read), every one still completes, with
    the answers one at a time would give: the cap holds, a claim wins once, each admitted
    chat has a place of its own."""
    store = RedisStore(REDIS_URL, prefix=f"tillit-storetest-{secrets.token_hex(6)}",
                       ttl_s=600, max_connections=1, timeout_s=1.0)
    await store.open()
    pool = store.redis.connection_pool
    held = await pool.get_connection()  # the pool's one connection, busy meanwhile
    cap, starts = 30, 50
    try:
        async def set_up(k: int) -> tuple[Any, bool, int | None, int]:
            await store.queue_size()
            first = await store.claim_once(f"solution-{k}", 60)
            chat = new_chat()
            admitted = await store.admit_to_queue(chat, cap)
            place = None
            if admitted:
                await store.save_chat(chat)
                await store.mark_visitors_seen([chat.chat_id], 1.0)
                place = await store.queue_place(chat)
                loaded = await store.load_chat(chat.chat_id)
                assert loaded is not None and loaded.resume_hash == chat.resume_hash
            return admitted and chat, first, place, await store.active_count("counselor-x")

        results = await asyncio.wait_for(
            asyncio.gather(*(set_up(k) for k in range(starts))), 20)
        again = await store.claim_once("solution-0", 60)
        size = await store.queue_size()
        admitted = [chat for chat, _, _, _ in results if chat]
        places = [await store.queue_place(chat) for chat in admitted]
    finally:
        await pool.release(held)
        keys = await store.redis.keys(f"{store.prefix}:*")
        if keys:
            await store.redis.delete(*keys)
        await store.close()
    assert len(admitted) == cap == size
    assert all(first for _, first, _, _ in results) and again is False
    assert all(1 <= place <= cap for chat, _, place, _ in results if chat)
    assert sorted(places) == list(range(1, cap + 1))  # new_chat: one urgency tier
    assert {count for _, _, _, count in results} == {0}

