"""The visitor's optional two-question feedback, attached to the chat's statistics fact.

The feedback may come before the counselor closes the chat (the fact does not exist yet)
or after (the fact exists). The link from a chat to its fact is kept here, in memory
only and only for `window_s`, so the facts table never holds a chat id and a restart
forgets every link.
"""

from __future__ import annotations

import time

from tillit.counselor_console.outbox import Outbox
from tillit.safety.errors import ProtocolError

Answer = tuple[str | None, int | None]


class FeedbackBox:
    """One answer per ended chat, within `window_s` of its end; never stored with its id."""

    def __init__(self, outbox: Outbox, window_s: float = 3600) -> None:
        self.outbox = outbox
        self.window_s = window_s
        self._open: dict[str, float] = {}  # chat_id -> deadline for an answer
        self._pending: dict[str, tuple[Answer, float]] = {}  # answered before the close
        self._fact: dict[str, tuple[str, float]] = {}  # closed before the answer

    def _expire(self, now: float) -> None:
        self._open = {k: v for k, v in self._open.items() if v > now}
        self._pending = {k: v for k, v in self._pending.items() if v[1] > now}
        self._fact = {k: v for k, v in self._fact.items() if v[1] > now}

    def expect(self, chat_id: str) -> None:
        now = time.time()
        self._expire(now)
        self._open[chat_id] = now + self.window_s

    async def give(self, chat_id: str, helped: str | None, score: int | None) -> None:
        now = time.time()
        if self._open.pop(chat_id, 0) < now:
            raise ProtocolError("conflict", "feedback is taken once, after the chat has ended")
        if helped is None and score is None:
            self._fact.pop(chat_id, None)
            return
        linked = self._fact.pop(chat_id, None)
        if linked is not None:
            await self._attach(linked[0], helped, score)
        else:
            self._pending[chat_id] = ((helped, score), now + self.window_s)

    async def _attach(self, fact_ref: str, helped: str | None, score: int | None) -> None:
        await self.outbox.put("feedback", {"ref": fact_ref, "helped": helped, "score": score})

    async def link(self, chat_id: str, fact_ref: str) -> None:
        """The chat's fact was written: attach an answer that came first, or wait for one."""
        now = time.time()
        self._expire(now)
        pending = self._pending.pop(chat_id, None)
        if pending is not None:
            helped, score = pending[0]
            await self._attach(fact_ref, helped, score)
        elif chat_id in self._open:
            self._fact[chat_id] = (fact_ref, now + self.window_s)
