"""Floods and crowds: token buckets per socket and per chat, and a cap on sockets.

A misbehaving client (or a buggy page stuck in a loop) must slow down only itself:
every event it sends takes a token from its socket's bucket, every message takes one
from its chat's bucket as well, and an empty bucket answers `rate_limited` without
touching the chat logic. The numbers are operator settings (`[limits]` in config/).

Sockets are capped in two pools, so that a crowd of anonymous sockets cannot lock staff
out: `max_connections` counts visitor sockets together with Engine.IO connections that
have not joined a namespace yet (and are closed if they join none within
`namespace_join_s`), and `max_staff_connections` counts counselor sockets. A new
Engine.IO connection while the anonymous pool is full is taken in only on a valid staff
session (chat_server/event_namespace.py checks it).

The buckets live in the process that holds the socket. With several processes a chat's
two sides may sit on different processes, each with its own chat bucket; that at most
doubles a chat's allowance, which is still a limit.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

from tillit.safety.overload import LoadMonitor

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
    """The `[limits]` section of the settings (defaults: tillit/config/default.toml)."""

    events_per_s: float
    events_burst: float
    chat_messages_per_s: float
    chat_messages_burst: float
    max_connections: int
    max_staff_connections: int
    namespace_join_s: float
    max_payload_bytes: int
    shed_loop_lag_ms: float
    shed_store_backlog: int


class TrafficGuard:
    """What every event passes before its handler: the socket caps and both buckets."""

    def __init__(
        self, limits: Limits, backlog: Callable[[], int], clock: Clock = time.monotonic
    ) -> None:
        self.limits = limits
        self.clock = clock
        self.per_socket = KeyedBuckets(limits.events_per_s, limits.events_burst, clock)
        self.per_chat = KeyedBuckets(limits.chat_messages_per_s, limits.chat_messages_burst,
                                     clock)
        # Namespace sockets by pool: Socket.IO sid -> its Engine.IO sid (or None).
        self._visitors: dict[str, str | None] = {}
        self._staff: dict[str, str | None] = {}
        # Engine.IO connections in no namespace, by pool: Engine.IO sid -> since when.
        self._waiting: dict[str, float] = {}
        self._waiting_staff: dict[str, float] = {}
        self._open: set[str] = set()  # Engine.IO connections this guard took in
        self._joined: dict[str, int] = {}  # Engine.IO sid -> namespaces it is in
        # Overload of the whole process (safety/overload.py); the app runs its clock.
        # `backlog`: writes waiting for the store (the store's own count).
        self.load = LoadMonitor(limits.shed_loop_lag_ms / 1000, limits.shed_store_backlog,
                                backlog)

    @property
    def connections(self) -> int:
        """Visitor sockets and Engine.IO connections in no namespace (the anonymous pool)."""
        return len(self._visitors) + len(self._waiting)

    @property
    def staff_connections(self) -> int:
        return len(self._staff) + len(self._waiting_staff)

    def anonymous_room(self) -> bool:
        return self.connections < self.limits.max_connections

    def open_transport(self, eio_sid: str, staff: bool = False) -> bool:
        """Count a new Engine.IO connection in, in the anonymous pool or (for a valid staff
        session, checked by the caller) the staff pool, unless that pool is full."""
        if staff:
            if self.staff_connections >= self.limits.max_staff_connections:
                return False
            self._waiting_staff[eio_sid] = self.clock()
        else:
            if not self.anonymous_room():
                return False
            self._waiting[eio_sid] = self.clock()
        self._open.add(eio_sid)
        return True

    def close_transport(self, eio_sid: str) -> None:
        self._open.discard(eio_sid)
        self._waiting.pop(eio_sid, None)
        self._waiting_staff.pop(eio_sid, None)
        self._joined.pop(eio_sid, None)

    def unjoined(self) -> list[str]:
        """Engine.IO connections that have been in no namespace for `namespace_join_s`."""
        cutoff = self.clock() - self.limits.namespace_join_s
        return [sid for pool in (self._waiting, self._waiting_staff)
                for sid, since in pool.items() if since <= cutoff]

    def admit(self, sid: str, eio_sid: str | None = None, staff: bool = False) -> bool:
        """Count a namespace socket in its pool, unless the pool is full. Its Engine.IO
        connection's waiting slot, if any, becomes the socket's."""
        waited = self._waiting.pop(eio_sid, None) if eio_sid else None
        waited_staff = self._waiting_staff.pop(eio_sid, None) if eio_sid else None
        if staff:
            room = self.staff_connections < self.limits.max_staff_connections
        else:
            room = waited is not None or self.anonymous_room()
        if not room:
            if waited is not None:
                self._waiting[eio_sid] = waited  # type: ignore[index]
            if waited_staff is not None:
                self._waiting_staff[eio_sid] = waited_staff  # type: ignore[index]
            return False
        (self._staff if staff else self._visitors)[sid] = eio_sid
        if eio_sid is not None:
            self._joined[eio_sid] = self._joined.get(eio_sid, 0) + 1
        return True

    def release(self, sid: str) -> None:
        """A namespace socket is gone; an Engine.IO connection left in no namespace waits
        (and is counted) again."""
        self.per_socket.forget(sid)
        eio_sid = self._visitors.pop(sid, None) if sid in self._visitors \
            else self._staff.pop(sid, None)
        if eio_sid is None:
            return
        left = self._joined.get(eio_sid, 0) - 1
        if left > 0:
            self._joined[eio_sid] = left
            return
        self._joined.pop(eio_sid, None)
        if eio_sid in self._open:
            self._waiting[eio_sid] = self.clock()

    def allow_event(self, sid: str) -> bool:
        return self.per_socket.allow(sid)

    def allow_message(self, chat_id: str) -> bool:
        return self.per_chat.allow(chat_id)

    def overloaded(self, event: str) -> bool:
        return self.load.refuse(event)
