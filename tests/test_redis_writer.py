"""The Redis store's writer keeps several write batches in flight on one connection.

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
