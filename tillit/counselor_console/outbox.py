"""What the chat path must write to the durable database: audit entries, statistics
facts, feedback. Chat traffic never waits on that database.

On one machine (`DirectOutbox`) the row is written at once, as before. With the Redis
store (`RedisOutbox`) the row is written at once too while the database answers (within
`direct_timeout_s`), so what was acknowledged is readable at once; when a write fails or
takes longer, the entry is pushed to a Redis list instead, and so are the next ones until
the list is empty again. Every process drains that list into the durable database,
oldest first, and retries while the database cannot be reached, so a PostgreSQL restart
loses nothing acknowledged, and a process killed mid-way leaves its entries to the
others. Delivery is at least once: each entry carries a random key, unique in its table
(migration 0002), so a write retried (or cut off by the timeout after it committed) is
not counted twice. The key is random per row and joins a fact with nothing.
"""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import date
from typing import Any, Protocol

import redis.asyncio as aioredis
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.counselor_console import audit, stats_facts

log = logging.getLogger("tillit.outbox")
Writer = Callable[[AsyncEngine, str, dict[str, Any]], Awaitable[None]]


async def _audit(db: AsyncEngine, key: str, p: dict[str, Any]) -> None:
    await audit.record(db, p["action"], actor=p.get("actor"), target=p.get("target"),
                       _ts=p["ts"], _key=key, **p.get("detail", {}))


async def _fact(db: AsyncEngine, key: str, p: dict[str, Any]) -> None:
    await stats_facts.record(db, p["fact"], day=date.fromisoformat(p["day"]), key=key)


async def _feedback(db: AsyncEngine, key: str, p: dict[str, Any]) -> None:
    await stats_facts.attach_feedback(db, p["ref"], p.get("helped"), p.get("score"))


class AuditRows:
    """Audit entries written now that arrive while a transaction is being written share
    the next one (`audit.record_rows`): a burst of 1 000 accepts cost a commit each, a
    fifth of the server's set-up time (bench/README.md). A caller returns once its entry
    is committed, or raises what its transaction raised, as with one write each."""

    def __init__(self, db: AsyncEngine) -> None:
        self.db = db
        self._pending: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        self._task: asyncio.Task[None] | None = None

    async def write(self, key: str, p: dict[str, Any]) -> None:
        row = audit.audit_row(p["action"], p.get("actor"), p.get("target"), p["ts"], key,
                              p.get("detail", {}))  # a malformed entry fails here, alone
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.append((row, future))
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._drain())
        await future

    async def _drain(self) -> None:
        batch: list[tuple[dict[str, Any], asyncio.Future[None]]] = []
        try:
            while self._pending:
                batch, self._pending = self._pending, []
                try:
                    await audit.record_rows(self.db, [row for row, _ in batch])
                except Exception as exc:  # noqa: BLE001 - each caller learns it
                    self._settle(batch, exc)
                else:
                    self._settle(batch, None)
        except asyncio.CancelledError as exc:  # closing: nobody waits for ever
            self._settle(batch + self._pending, exc)
            self._pending = []
            raise

    @staticmethod
    def _settle(batch: list[tuple[dict[str, Any], asyncio.Future[None]]],
                exc: BaseException | None) -> None:
        for _, future in batch:
            if not future.done():
                if exc is None:
                    future.set_result(None)
                else:
                    future.set_exception(exc)


WRITERS: dict[str, Writer] = {"audit": _audit, "fact": _fact, "feedback": _feedback}
# An entry that fails with one of these will fail every time: set aside, not retried.
MALFORMED = (KeyError, TypeError, ValueError)


class Outbox(Protocol):
    async def put(self, kind: str, payload: dict[str, Any]) -> str:
        """Hand an entry over; its key (a fact's reference for its feedback)."""


def audit_entry(action: str, actor: str | None, target: str | None,
                detail: dict[str, Any]) -> dict[str, Any]:
    return {"action": action, "actor": actor, "target": target, "detail": detail,
            "ts": int(time.time())}


def fact_entry(fact: dict[str, Any]) -> dict[str, Any]:
    return {"fact": fact, "day": date.today().isoformat()}


class DirectOutbox:
    """One machine: written now, in the caller's time."""

    def __init__(self, db: AsyncEngine) -> None:
        self.db = db
        self.audit_rows = AuditRows(db)

    async def put(self, kind: str, payload: dict[str, Any]) -> str:
        key = secrets.token_hex(16)
        if kind == "audit":
            await self.audit_rows.write(key, payload)
        else:
            await WRITERS[kind](self.db, key, payload)
        return key


class RedisOutbox:
    """A Redis list drained into the durable database by every process (see above)."""

    def __init__(self, db: AsyncEngine, redis_url: str, list_key: str,
                 retry_s: float = 0.5, max_retry_s: float = 5.0,
                 direct_timeout_s: float = 1.0, write_first: bool = True) -> None:
        self.db = db
        self.direct_timeout_s = direct_timeout_s
        self.write_first = write_first
        # The database answered last time and nothing of ours waits in the list.
        self._direct = write_first
        self.list_key = list_key
        self.dead_key = f"{list_key}:malformed"
        self.retry_s = retry_s
        self.max_retry_s = max_retry_s
        self._redis = aioredis.Redis.from_url(redis_url, decode_responses=True)
        self._wake = asyncio.Event()
        self.audit_rows = AuditRows(db)

    async def put(self, kind: str, payload: dict[str, Any]) -> str:
        if kind not in WRITERS:
            raise ValueError(f"unknown outbox entry {kind!r}")
        key = secrets.token_hex(16)
        if self._direct:
            try:
                async with asyncio.timeout(self.direct_timeout_s):
                    if kind == "audit":
                        await self.audit_rows.write(key, payload)
                    else:
                        await WRITERS[kind](self.db, key, payload)
                return key
            except MALFORMED:
                raise
            except Exception as exc:  # noqa: BLE001 - unreachable or slow: queued instead
                self._direct = False
                log.warning("outbox: durable database did not answer (%s); queueing in Redis",
                            type(exc).__name__)
        await self._redis.rpush(self.list_key, json.dumps(
            {"key": key, "kind": kind, "p": payload}, separators=(",", ":")))
        self._wake.set()
        return key

    async def waiting(self) -> int:
        return int(await self._redis.llen(self.list_key))

    async def drain(self) -> int:
        """Write entries, oldest first, until the list is empty; how many were written.
        Raises when the database (or Redis) cannot be reached: the entry stays."""
        written = 0
        while True:
            raw = await self._redis.lindex(self.list_key, 0)
            if raw is None:
                return written
            try:
                entry = json.loads(raw)
                await WRITERS[entry["kind"]](self.db, entry["key"], entry["p"])
            except MALFORMED:
                log.error("outbox: an entry that cannot be written was set aside (%s)",
                          self.dead_key)
                await self._redis.rpush(self.dead_key, raw)
            await self._redis.lrem(self.list_key, 1, raw)
            written += 1

    async def run(self, poll_s: float = 1.0) -> None:
        """Drain until cancelled; wait `poll_s` (or a local put) when empty, and back off
        while the database is unreachable."""
        delay = self.retry_s
        while True:
            try:
                await self.drain()
                self._direct = self.write_first
                delay = self.retry_s
            except Exception as exc:  # noqa: BLE001 - unreachable: kept, tried again
                log.warning("outbox: not written yet (%s); retrying in %.1f s",
                            type(exc).__name__, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, self.max_retry_s)
                continue
            self._wake.clear()
            try:
                await asyncio.wait_for(self._wake.wait(), poll_s)
            except TimeoutError:
                pass

    async def close(self) -> None:
        await self._redis.aclose()
