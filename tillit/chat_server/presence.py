"""Who is there: counselors' sockets and the stamps that outlive a killed process.

Each process counts its own sockets per counselor and stamps "seen now" in the store
for every counselor and visitor with a socket here, at connect, at disconnect and at
every sweep. A counselor whom no process has stamped for the grace period is gone,
even when the process that held their socket was killed; so is a visitor no process
has stamped for three sweeps. With one process (SQLite) the stamps live in memory and
say the same thing.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable

from tillit.chat_server.stores import EphemeralStore

log = logging.getLogger(__name__)


class Presence:
    def __init__(self, store: EphemeralStore, grace_s: float) -> None:
        self.store = store
        self.grace_s = grace_s
        self.sweep_every_s = 5.0
        self._sockets: dict[str, int] = {}  # username -> sockets in this process
        # username -> the stamp written when their last socket here closed: that stamp
        # says "left", not "here", so `online_anywhere` counts only a newer one.
        self._left: dict[str, float] = {}

    @property
    def fresh_s(self) -> float:
        """A stamp younger than this means a live socket: every process stamps at every
        sweep, so three sweeps without one means the process is gone."""
        return 3 * self.sweep_every_s

    async def counselor_online(self, username: str) -> None:
        self._sockets[username] = self._sockets.get(username, 0) + 1
        await self._stamp(self.store.mark_seen, [username], "counselor")

    async def counselor_offline(self, username: str, now: float | None = None) -> None:
        left = self._sockets.get(username, 0) - 1
        if left > 0:
            self._sockets[username] = left
            return
        self._sockets.pop(username, None)
        now = time.time() if now is None else now
        self._left[username] = now
        await self._stamp(self.store.mark_seen, [username], "counselor", now)

    def is_online(self, username: str) -> bool:
        return self._sockets.get(username, 0) > 0

    async def stamp_visitors(self, chat_ids: list[str]) -> None:
        """"A socket of this chat's visitor is here", for the sweep of whichever process
        outlives this one."""
        if chat_ids:
            await self._stamp(self.store.mark_visitors_seen, chat_ids, "visitor")

    async def stamp_here(self, visitor_chat_ids: list[str]) -> None:
        """Every sweep: the counselors and visitors with a socket in this process."""
        await self._stamp(self.store.mark_seen, list(self._sockets), "counselor")
        await self.stamp_visitors(visitor_chat_ids)

    async def gone_counselors(self, now: float) -> list[str]:
        """Counselors gone past the grace period; each is returned once."""
        gone = [u for u, seen in (await self.store.seen()).items()
                if now - seen > self.grace_s and not self.is_online(u)]
        for username in gone:
            await self.store.forget_seen(username)
        return gone

    async def seen_elsewhere(self, now: float | None = None) -> list[str]:
        """Counselors with no socket here whom a process stamped lately (another process,
        with a shared store)."""
        now = time.time() if now is None else now
        try:
            seen = await self.store.seen()
        except Exception:  # an outage: only this process's own colleagues count
            return []
        return [u for u, stamp in seen.items()
                if now - stamp <= self.fresh_s and not self.is_online(u)]

    async def online_anywhere(self, now: float | None = None) -> Callable[[str], bool]:
        """Who has a socket on some process: here, and with a shared store whoever another
        process stamped lately (a returning contact's counselor may be on any machine),
        except the stamp this process wrote when their last socket here closed. Not the
        stamps with one process: there they only repeat this process's sockets. A
        counselor who left another process still counts for up to `fresh_s`."""
        elsewhere: set[str] = set()
        if self.store.shared:
            now = time.time() if now is None else now
            try:
                seen = await self.store.seen()
            except Exception:  # an outage: only this process's sockets count
                seen = {}
            elsewhere = {u for u, stamp in seen.items()
                         if now - stamp <= self.fresh_s and stamp > self._left.get(u, -1.0) + 0.001}
        return lambda username: self.is_online(username) or username in elsewhere

    @staticmethod
    async def _stamp(mark: Callable[[list[str], float], Awaitable[None]], keys: list[str],
                     whose: str, now: float | None = None) -> None:
        try:
            await mark(keys, time.time() if now is None else now)
        except Exception:  # an outage: the next sweep stamps again
            log.warning("%s presence not stamped: the store did not answer", whose)
