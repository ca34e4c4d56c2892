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
        self._refusal_noted: dict[str, float] = {}  # "*" or an account -> when audited

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

    def first_refusal(self, username: str, now: float | None = None) -> bool:
        """True for the first refusal of a block (global, or this account's) per window.

        The audit log notes a block once, not every refused attempt: anonymous requests
        must not grow a durable table without bound (issue "Go-live security", 5).
        """
        now = time.monotonic() if now is None else now
        noted = self._refusal_noted
        for key in [k for k, at in noted.items() if now - at > self.window_s]:
            del noted[key]
        key = "*" if len(self._global) >= self.global_limit else username.lower()[:64]
        if key in noted:
            return False
        noted[key] = now
        return True

    def failed(self, username: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        self._failures[username.lower()[:64]].append(now)
        self._global.append(now)

    def succeeded(self, username: str) -> None:
        self._failures.pop(username.lower(), None)
