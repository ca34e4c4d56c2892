"""Socket.IO fan-out over Redis with a bounded, blocking connection pool.

`socketio.AsyncRedisManager` builds its client with `Redis.from_url`, whose pool in
redis-py 8 refuses a 101st connection instead of waiting; under a burst the manager
then rebuilds its client and, after two failures, drops the message (PERFORMANCE.md
finding 2). This subclass builds the client on a `BlockingConnectionPool`: a burst
waits a moment for a free connection and nothing is dropped.
"""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis
import socketio

from chat_server.stores.redis_store import make_pool

CHANNEL = "tillit-socketio"


class BlockingRedisManager(socketio.AsyncRedisManager):
    def __init__(self, url: str, *, max_connections: int = 16, timeout_s: float = 2.0,
                 channel: str = CHANNEL, **kwargs: Any) -> None:
        super().__init__(url, channel=channel, **kwargs)
        self.max_connections = max_connections
        self.timeout_s = timeout_s

    def _redis_connect(self) -> None:
        old = self.redis
        pool = make_pool(self.redis_url, self.max_connections, self.timeout_s, decode=False,
                         read_timeout=False)
        self.redis = aioredis.Redis(connection_pool=pool)
        self.pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        self.connected = True
        if old is not None:  # a rebuild after an error: let the old pool's sockets go
            self.server.start_background_task(old.aclose)
