"""Login throttling per account and for the whole service, with no address stored.

An attacker who spreads guesses over many accounts meets the global limit; one
who hammers one account meets that account's limit. Counts live in memory: a
restart forgives, which is acceptable for a limit measured in minutes.
"""

from __future__ import annotations

import time
from collections import defaultdict, deque


class LoginThrottle:
    def __init__(
        self,
        per_account: int = 5,
        global_limit: int = 50,
        window_s: float = 900.0,
    ) -> None:
        self.per_account = per_account
        self.global_limit = global_limit
        self.window_s = window_s
        self._failures: dict[str, deque[float]] = defaultdict(deque)
        self._global: deque[float] = deque()

    def _trim(self, entries: deque[float], now: float) -> None:
        while entries and now - entries[0] > self.window_s:
            entries.popleft()

    def blocked(self, username: str, now: float | None = None) -> bool:
        now = time.monotonic() if now is None else now
        self._trim(self._global, now)
        mine = self._failures.get(username.lower())
        if mine is not None:
            self._trim(mine, now)
        return len(self._global) >= self.global_limit or (
            mine is not None and len(mine) >= self.per_account
        )

    def failed(self, username: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._failures[username.lower()[:64]].append(now)
        self._global.append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username.lower(), None)
