"""Floods and crowds: token buckets per socket and per chat, and a cap on sockets.

A misbehaving client (or a buggy page stuck in a loop) must slow down only itself:
every event it sends takes a token from its socket's bucket, every message takes one
from its chat's bucket as well, and an empty bucket answers `rate_limited` without
touching the chat logic. The numbers are operator settings (`[limits]` in config/).

The buckets live in the process that holds the socket. With several processes a chat's
two sides may sit on different processes, each with its own chat bucket; that at most
doubles a chat's allowance, which is still a limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from safety.overload import LoadMonitor

Clock = Callable[[], float]


class TokenBucket:
    """`rate` tokens per second, at most `burst` saved up; a full bucket means idle."""

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float, now: float) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = now

    def take(self, now: float, cost: float = 1.0) -> bool:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= cost:
            self.tokens -= cost
            return True
        return False

    def idle(self, now: float) -> bool:
        """True once the bucket would be full again: forgetting it changes nothing."""
        return self.tokens + (now - self.stamp) * self.rate >= self.burst


class KeyedBuckets:
    """One bucket per key, made on first use and forgotten once idle."""

    def __init__(self, rate: float, burst: float, clock: Clock = time.monotonic,
                 prune_every: int = 4096) -> None:
        self.rate = rate
        self.burst = burst
        self.clock = clock
        self.buckets: dict[str, TokenBucket] = {}
        self._prune_every = prune_every
        self._calls = 0

    def allow(self, key: str) -> bool:
        now = self.clock()
        bucket = self.buckets.get(key)
        if bucket is None:
            bucket = self.buckets[key] = TokenBucket(self.rate, self.burst, now)
        self._calls += 1
        if self._calls >= self._prune_every:
            self._calls = 0
            self.prune(now)
        return bucket.take(now)

    def forget(self, key: str) -> None:
        self.buckets.pop(key, None)

    def prune(self, now: float | None = None) -> None:
        now = self.clock() if now is None else now
        for key in [k for k, b in self.buckets.items() if b.idle(now)]:
            del self.buckets[key]


@dataclass(frozen=True)
class Limits:
    """The `[limits]` section of the settings."""

    events_per_s: float = 30.0
    events_burst: float = 120.0
    chat_messages_per_s: float = 10.0
    chat_messages_burst: float = 60.0
    max_connections: int = 5000
    max_payload_bytes: int = 64 * 1024
    shed_loop_lag_ms: float = 200.0
    shed_store_backlog: int = 2000

    @classmethod
    def from_settings(cls, section: dict[str, Any]) -> Limits:
        fields = cls.__dataclass_fields__
        return cls(**{k: type(getattr(cls, k))(v) for k, v in section.items() if k in fields})


class TrafficGuard:
    """What every event passes before its handler: the socket cap and both buckets."""

    def __init__(self, limits: Limits, clock: Clock = time.monotonic) -> None:
        self.limits = limits
        self.per_socket = KeyedBuckets(limits.events_per_s, limits.events_burst, clock)
        self.per_chat = KeyedBuckets(limits.chat_messages_per_s, limits.chat_messages_burst,
                                     clock)
        self._sockets: set[str] = set()
        # Overload of the whole process (safety/overload.py); the app runs its clock.
        self.load = LoadMonitor(limits.shed_loop_lag_ms / 1000, limits.shed_store_backlog)

    @property
    def connections(self) -> int:
        return len(self._sockets)

    def admit(self, sid: str) -> bool:
        """Count a new socket in, unless the server already holds `max_connections`."""
        if len(self._sockets) >= self.limits.max_connections:
            return False
        self._sockets.add(sid)
        return True

    def release(self, sid: str) -> None:
        self._sockets.discard(sid)
        self.per_socket.forget(sid)

    def allow_event(self, sid: str) -> bool:
        return self.per_socket.allow(sid)

    def allow_message(self, chat_id: str) -> bool:
        return self.per_chat.allow(chat_id)

    def overloaded(self, event: str) -> bool:
        return self.load.refuse(event)
