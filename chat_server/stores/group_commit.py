"""Group commit: writes that arrive while a batch is being written share the next one.

Both stores write this way (SQLite: one transaction per batch; Redis: one MULTI/EXEC
pipeline per batch). A caller's `submit` returns once its batch is durable, with its
own result, or raises what the batch raised: nothing is acknowledged that was not
written. Writes are applied in the order they were submitted, which is what keeps a
chat's envelopes in id order. `backlog` (waiting plus in flight) is what
safety/overload.py watches.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Generic, TypeVar

from chat_server.stores import StoreUnavailable

log = logging.getLogger(__name__)

W = TypeVar("W")

# Applies a batch in order; returns one result per write (or None: no results).
ApplyBatch = Callable[[list[W]], Awaitable[Sequence[Any] | None]]


class GroupCommit(Generic[W]):
    def __init__(self, apply: ApplyBatch[W], name: str) -> None:
        self.apply = apply
        self.name = name
        self._pending: list[tuple[W, asyncio.Future[Any]]] = []
        self._in_flight = 0
        self._wake = asyncio.Event()
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
            await asyncio.gather(self._task, return_exceptions=True)
            self._task = None

    async def submit(self, write: W) -> Any:
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._pending.append((write, future))
        self._wake.set()
        return await future

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            batch, self._pending = self._pending, []
            if not batch:
                continue
            self._in_flight = len(batch)
            try:
                results = await self.apply([write for write, _ in batch])
            except asyncio.CancelledError:  # closing: nobody waits for ever
                for _, future in batch + self._pending:
                    if not future.done():
                        future.set_exception(StoreUnavailable("the store is closing"))
                raise
            except Exception as exc:  # every waiter learns it; nothing is acknowledged
                log.error("%s: batch not written: %s", self.name, type(exc).__name__)
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
            else:
                for i, (_, future) in enumerate(batch):
                    if not future.done():
                        future.set_result(None if results is None else results[i])
            finally:
                self._in_flight = 0
