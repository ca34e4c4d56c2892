"""Group commit: writes that arrive while a batch is being written share the next one.

Both stores write this way (SQLite: one transaction per batch; Redis: one MULTI/EXEC
pipeline per batch). A caller's `submit` returns once its batch is durable, with its
own result, or raises what the batch raised: nothing is acknowledged that was not
written. Writes are applied in the order they were submitted, which is what keeps a
chat's envelopes in id order. `backlog` (waiting plus in flight) is what
safety/overload.py watches.

SQLite lets two batches be in flight (`depth=2`): aiosqlite's one thread runs them in
the order they were handed over, and it can start the next transaction the moment the
last one commits instead of waiting for a busy event loop to see the result and hand
over the next (at saturation that wait was half of each batch's time). Redis too: its
batches go out on one connection, which Redis answers in order (stores/redis_store.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from tillit.chat_server.stores import StoreUnavailable

log = logging.getLogger(__name__)

W = TypeVar("W")

# Applies a batch in order; returns one result per write (or None: no results).
ApplyBatch = Callable[[list[W]], Awaitable[Sequence[Any] | None]]


class GroupCommit(Generic[W]):
    def __init__(self, apply: ApplyBatch[W], name: str, depth: int = 1) -> None:
        """`depth` batches may be in flight at once: more than one only where `apply`
        runs batches strictly in the order it was called (one worker thread's queue)."""
        self.apply = apply
        self.name = name
        self._pending: list[tuple[W, asyncio.Future[Any]]] = []
        self._in_flight = 0
        self._wake = asyncio.Event()
        self._slots = asyncio.Semaphore(depth)
        self._batches: set[asyncio.Task[None]] = set()
        self._task: asyncio.Task[None] | None = None

    @property
    def running(self) -> bool:
        return self._task is not None

    @property
    def backlog(self) -> int:
        return len(self._pending) + self._in_flight

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=self.name)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            for batch in self._batches:
                batch.cancel()
            await asyncio.gather(self._task, *self._batches, return_exceptions=True)
            self._task = None

    async def submit(self, write: W) -> Any:
        return await self.enqueue(write)

    def enqueue(self, write: W) -> asyncio.Future[Any]:
        """Queue `write` now (no await: writes queued in one step share a batch, in order);
        the future gets its result once committed."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        self._wake.set()
        return future

    async def _run(self) -> None:
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                if not self._pending:
                    continue
                await self._slots.acquire()
                batch, self._pending = self._pending, []
                self._in_flight += len(batch)
                task = asyncio.ensure_future(self._write(batch))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)
        except asyncio.CancelledError:  # closing: nobody waits for ever
            self._fail(self._pending, StoreUnavailable("the store is closing"))
            raise

    async def _write(self, batch: list[tuple[W, asyncio.Future[Any]]]) -> None:
        try:
            results = await self.apply([write for write, _ in batch])
        except asyncio.CancelledError:
            self._fail(batch, StoreUnavailable("the store is closing"))
            raise
        except Exception as exc:  # every waiter learns it; nothing is acknowledged
            log.error("%s: batch not written: %s", self.name, type(exc).__name__)
            self._fail(batch, exc)
        else:
            for i, (_, future) in enumerate(batch):
                if not future.done():
                    future.set_result(None if results is None else results[i])
        finally:
            self._in_flight -= len(batch)
            self._slots.release()

    @staticmethod
    def _fail(batch: list[tuple[W, asyncio.Future[Any]]], exc: BaseException) -> None:
        for _, future in batch:
            if not future.done():
                future.set_exception(exc)
