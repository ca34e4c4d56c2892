"""Login throttling per account, a global slowdown, and counts instead of audit floods.

* Per account: at most `per_account` failed attempts per name within `window_s`. An
  attempt is *reserved* before the password is checked (synchronously, on the event
  loop), so 40 parallel guesses for one name reach Argon2 at most `per_account` times.
  A correct login clears the name's count.
* Globally there is no lockout (anyone could lock every counselor out with random
  names): instead at most `max_concurrent` password checks run at once, which slows a
  flood down without ever refusing a correct password and code. Attempts for existing
  accounts wait in a lane of their own that goes first: their number is bounded by the
  per-account limit, so a flood of invented names cannot queue in front of a counselor.
* Per-name state lives in memory only (a restart forgives, acceptable for a limit in
  minutes) and is bounded to `max_names`: names that attackers invent never reach a
  durable table. Throttled attempts and failures under unknown names are only counted;
  `take_counts()` hands the totals to one periodic audit row.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager


class LoginThrottle:
    def __init__(
        self, *, per_account: int, window_s: float, max_concurrent: int, max_names: int
    ) -> None:
        """The `[console]` login_* settings (defaults: tillit/config/default.toml)."""
        self.per_account = per_account
        self.window_s = window_s
        self.max_names = max_names
        self.checks = PriorityGate(max(1, max_concurrent))
        self._attempts: OrderedDict[str, deque[float]] = OrderedDict()
        self.throttled = 0
        self.failed_unknown = 0

    @staticmethod
    def _key(username: str) -> str:
        return username.lower()[:64]

    def _live(self, key: str, now: float) -> deque[float] | None:
        entries = self._attempts.get(key)
        if entries is None:
            return None
        while entries and now - entries[0] > self.window_s:
            entries.popleft()
        if not entries:
            del self._attempts[key]
            return None
        return entries

    def reserve(self, username: str, now: float | None = None) -> bool:
        """Count an attempt for `username` before checking it; False: refuse (429).

        The reservation stays as a failure unless `succeeded()` clears it.
        """
        now = time.monotonic() if now is None else now
        key = self._key(username)
        entries = self._live(key, now)
        if entries is not None and len(entries) >= self.per_account:
            self.throttled += 1
            return False
        if entries is None:
            self._make_room(now)
            entries = self._attempts[key] = deque()
        else:
            self._attempts.move_to_end(key)
        entries.append(now)
        return True

    def _make_room(self, now: float) -> None:
        """Keep at most `max_names` names: drop expired ones first, then the oldest."""
        if len(self._attempts) < self.max_names:
            return
        for key in list(self._attempts)[: max(1, self.max_names // 10)]:
            self._live(key, now)
        while len(self._attempts) >= self.max_names:
            self._attempts.popitem(last=False)

    def succeeded(self, username: str) -> None:
        self._attempts.pop(self._key(username), None)

    def failed_for_unknown_name(self) -> None:
        self.failed_unknown += 1

    def take_counts(self) -> dict[str, int]:
        """The counts since the last call (for one audit row), then zero them."""
        counts = {"throttled": self.throttled, "failed_unknown": self.failed_unknown}
        self.throttled = self.failed_unknown = 0
        return counts


class PriorityGate:
    """At most `capacity` holders at once; waiters with `first=True` are let in before
    the others (each lane in arrival order)."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.busy = 0
        self._lanes: tuple[deque[asyncio.Future[None]], deque[asyncio.Future[None]]] = (
            deque(), deque())

    @property
    def waiting(self) -> int:
        return sum(len(lane) for lane in self._lanes)

    @asynccontextmanager
    async def slot(self, first: bool = False) -> AsyncIterator[None]:
        """Hold one of the places for the body of the `async with`."""
        if self.busy < self.capacity and not self.waiting:
            self.busy += 1
        else:
            waiter: asyncio.Future[None] = asyncio.get_running_loop().create_future()
            lane = self._lanes[0 if first else 1]
            lane.append(waiter)
            try:
                await waiter  # the place is handed over by `_release`, already counted
            except asyncio.CancelledError:
                if waiter.done() and not waiter.cancelled():
                    self._release()  # handed over just as we were cancelled: pass it on
                else:
                    lane.remove(waiter)
                raise
        try:
            yield
        finally:
            self._release()

    def _release(self) -> None:
        for lane in self._lanes:
            while lane:
                waiter = lane.popleft()
                if not waiter.done():
                    waiter.set_result(None)  # the place passes on: `busy` stays
                    return
        self.busy -= 1
