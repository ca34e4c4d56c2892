"""Socket.IO fan-out over Redis: a bounded pool, and no publishing into an empty room.

`socketio.AsyncRedisManager` builds its client with `Redis.from_url`, whose pool in
redis-py 8 refuses a 101st connection instead of waiting; under a burst the manager
then rebuilds its client and, after two failures, drops the message (docs/architecture.md,
measured fact 2). This subclass builds the client on a `BlockingConnectionPool`: a burst
waits a moment for a free connection and nothing is dropped.

The manager delivers every emit to this process's own sockets first and then
publishes it for the others. When no other process is subscribed, that publish (and
reading it back from our own subscription) is a round trip per message for nobody:
a single process on Redis spent a third of its time there (bench/README.md). So when
a publish reaches no other subscriber, the next `recheck_s` seconds publish nothing;
then one publish counts the subscribers again. Meanwhile an emit goes straight to
this process's sockets, without the message the pub/sub manager builds for the others.
A process that starts, or subscribes again after an outage, announces itself (`hello`),
and any message heard on the channel ends the quiet at once, so a newcomer is heard
before it serves a socket (`ready()`, awaited at start-up).

Delivery to this process's own sockets is `LocalManager`'s (after the pub/sub manager in
the MRO): one recipient gets its packet directly rather than through a task.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

import redis.asyncio as aioredis
import socketio

from tillit.chat_server.stores.redis_store import make_pool
from tillit.chat_server.transport.local_fanout import LocalManager

CHANNEL = "tillit-socketio"
HELLO = "hello"


class BlockingRedisManager(socketio.AsyncRedisManager, LocalManager):
    def __init__(self, url: str, *, max_connections: int = 16, timeout_s: float = 2.0,
                 channel: str = CHANNEL, recheck_s: float = 1.0, **kwargs: Any) -> None:
        super().__init__(url, channel=channel, **kwargs)
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        self.recheck_s = recheck_s
        self._quiet_until = 0.0  # monotonic time until which nobody else listens
        self._probing = False  # a publish is counting the listeners after a quiet spell
        self._announced = False

    async def emit(self, event: str, data: Any, namespace: str | None = None, room: Any = None,
                   skip_sid: Any = None, callback: Any = None, to: Any = None,
                   **kwargs: Any) -> Any:
        if callback is None and self._alone():
            # Nobody to publish for: straight to this process's sockets, without the
            # message the pub/sub manager builds (and scans for binary) for the others.
            return await LocalManager.emit(self, event, data, namespace or "/",
                                           room=to or room, skip_sid=skip_sid)
        return await super().emit(event, data, namespace=namespace, room=room,
                                  skip_sid=skip_sid, callback=callback, to=to, **kwargs)

    def _alone(self) -> bool:
        """No other process listens now (or one publish is counting them again)."""
        return self._probing or time.monotonic() < self._quiet_until

    def _redis_connect(self) -> None:
        old = self.redis
        pool = make_pool(self.redis_url, self.max_connections, self.timeout_s, decode=False,
                         read_timeout=False)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True
        self._announced = False  # a new subscription: say hello once it is up
        if old is not None:  # a rebuild after an error: let the old pool's sockets go
            self.server.start_background_task(old.aclose)

    async def _publish(self, data: Any) -> Any:
        if self._alone():
            return 0
        # While quiet, one publish at a time counts the listeners again: at 2 000 msg/s
        # every emit of that round trip would otherwise publish too, and such a burst
        # emptied the pool, timed out and rebuilt the subscription (bench/README.md).
        # An emit skipped meanwhile is as one skipped while quiet: a newcomer's hello
        # ends the quiet before it serves a socket.
        probing = self._quiet_until > 0
        self._probing = probing
        try:
            receivers = await super()._publish(data)
        finally:
            if probing:
                self._probing = False
        if isinstance(receivers, int) and receivers <= self._own_subscriptions():
            self._quiet_until = time.monotonic() + self.recheck_s
        return receivers

    def _own_subscriptions(self) -> int:
        pubsub = self.pubsub
        return 1 if pubsub is not None and pubsub.subscribed else 0

    async def _listen(self) -> Any:
        async for message in super()._listen():
            # Decoded here rather than by the caller (which takes dicts as they are), to
            # see who sent it: anyone but us means we are not alone, publish from now on.
            try:
                data = self.json.loads(message)
            except Exception:  # not ours to judge: the library skips what it cannot read
                continue
            if isinstance(data, dict) and data.get("host_id") != self.host_id:
                self._quiet_until = 0.0
            if not self._announced:
                await self._say_hello()
            yield data

    async def _say_hello(self) -> None:
        self._announced = True
        self._quiet_until = 0.0
        await super()._publish({"method": HELLO, "host_id": self.host_id})

    async def ready(self, timeout_s: float = 10.0) -> None:
        """Subscribe now (not at the first request) and announce this process, so that
        no emit of another process misses a socket of ours."""
        if not self.server.manager_initialized:
            self.server.manager_initialized = True
            self.initialize()
        deadline = time.monotonic() + timeout_s
        # redis-py offers no event for "subscribed": look every 20 ms, at start-up only.
        while self._own_subscriptions() == 0 and time.monotonic() < deadline:  # noqa: ASYNC110
            await asyncio.sleep(0.02)
        await self._say_hello()
        await asyncio.sleep(0.2)  # the others read the hello before we take a socket
