"""The visitor's optional two-question feedback after a chat, kept as categories by day."""

from __future__ import annotations

import time
from datetime import date

import aiosqlite

from chat_server.acks import ProtocolError

SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    day TEXT NOT NULL,
    helped TEXT,
    score INTEGER
);
"""


class FeedbackBox:
    """Accepts one answer per ended chat, for a while after its end; never linked to it."""

    def __init__(self, conn: aiosqlite.Connection, window_s: float = 3600) -> None:
        self.conn = conn
        self.window_s = window_s
        self._open: dict[str, float] = {}

    async def setup(self) -> None:
        await self.conn.executescript(SCHEMA)

    def expect(self, chat_id: str) -> None:
        now = time.time()
        self._open = {k: v for k, v in self._open.items() if v > now}
        self._open[chat_id] = now + self.window_s

    async def give(self, chat_id: str, helped: str | None, score: int | None) -> None:
        if self._open.pop(chat_id, 0) < time.time():
            raise ProtocolError("conflict", "feedback is taken once, after the chat has ended")
        if helped is None and score is None:
            return
        await self.conn.execute(
            "INSERT INTO feedback (day, helped, score) VALUES (?, ?, ?)",
            (date.today().isoformat(), helped, score),
        )
        await self.conn.commit()
