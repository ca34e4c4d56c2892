"""The live queue: `queue:update` to staff and to every waiting visitor whose place moved.

Every push goes to every staff socket and may move every waiting visitor, so changes in
one burst, or within one push interval, share a push: an evening's arrivals must not
each cost a push (quadratic in the queue).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from tillit.chat_server.model import Chat
from tillit.chat_server.queue_order import WaitEstimator
from tillit.chat_server.relay import Relay

log = logging.getLogger(__name__)


class QueuePush:
    def __init__(
        self,
        queue: Callable[[], Awaitable[list[Chat]]],
        entry: Callable[[Chat, float], dict[str, Any]],
        relay: Relay,
        waits: WaitEstimator,
        interval_s: float,
    ) -> None:
        self.queue = queue  # the queue in order (ChatService.queue)
        self.entry = entry  # a chat's line in the staff's queue
        self.relay = relay
        self.waits = waits
        self.interval_s = interval_s
        self._task: asyncio.Task[None] | None = None
        self._dirty = False
        self._told: dict[str, tuple[int, int]] = {}  # chat id -> (place, wait) told

    def changed(self) -> None:
        """Push the queue soon."""
        self._dirty = True
        if self._task is None or self._task.done():
            self._task = asyncio.get_running_loop().create_task(self._push())

    async def _push(self) -> None:
        while self._dirty:
            self._dirty = False
            await asyncio.sleep(0)
            try:
                queue = await self.queue()
            except Exception:  # a store outage: the next change pushes again
                log.warning("queue not pushed: the store did not answer")
                return
            now = time.time()
            await self.relay.to_staff("queue:update",
                                      {"queue": [self.entry(c, now) for c in queue]})
            told: dict[str, tuple[int, int]] = {}
            for place, chat in enumerate(queue, 1):
                est = self.waits.estimate(chat, place, now)
                last = self._told.get(chat.chat_id)
                told[chat.chat_id] = (place, est)
                if last is not None and last[0] == place and abs(last[1] - est) < 30:
                    told[chat.chat_id] = last
                    continue
                await self.relay.to_visitor(
                    chat.chat_id, "queue:update",
                    {"chat_id": chat.chat_id, "position": place, "est_wait_s": est},
                )
            self._told = told
            await asyncio.sleep(self.interval_s)
