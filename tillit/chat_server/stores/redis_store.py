"""Ephemeral chats and ciphertext in Redis, for several server processes and machines.

Keys (prefix `server.redis_prefix`, default `tillit`), all of one chat gone at purge:

| key | type | holds |
| --- | --- | --- |
| `<p>:chats` | set | ids of the chats this store holds (for start-up and sweeps) |
| `<p>:chat:<chat_id>` | hash | the chat row (state, keys, epoch, last id; no content); |
| | | each answer and flag in a field of its own (`model.meta_fields`); a returning |
| | | chat's `mailbox_id` until the chat ends (docs/protocol.md E12.9) |
| `<p>:held:<username>` | set | ids of the chats a counselor holds (kept by the save script) |
| `<p>:env:<chat_id>` | sorted set | envelopes as JSON, scored by their id |
| `<p>:resume:<sha256>` | string | the chat id a resume token opens; the token itself never |
| `<p>:sent:<chat_id>`, | hashes | `epoch:dir:seq` -> id of the latest `RETRY_MEMORY` to |
| `<p>:sent:<chat_id>:b` | | `2 x RETRY_MEMORY` envelopes, so a retried send keeps its first id |
| `<p>:queue` | sorted set | ids of the queued chats (the order is `queue_order.urgency_key`) |
| `<p>:seen` | hash | counselor username -> when a process last saw a socket of theirs |
| `<p>:vseen` | hash | chat id -> when a process last saw the chat's visitor's socket |
| `<p>:lock:sweeper` | string | held for one sweep by the process that ends timed-out chats |
| `<p>:pow:<mac>` | string | a solved proof-of-work challenge, until it expires (used once) |

The store is `shared`: the chat state lives in Redis, not in the process; each call
reads a chat's hash, so any process can serve any chat. Message
ids are taken by one Lua script that also checks the send rule, drops a retried
(epoch, dir, seq) and appends the envelope, so ids are in order across processes.
A save writes only the fields that changed, in one script that also keeps the queue,
the index and the per-counselor set; accepting is the same script with a check of the
state first (one winner).

Every key of a chat carries a TTL (`server.redis_ttl_s`, refreshed by every write), so
a chat that every process forgot (all of them killed) still disappears; when a chat
ends its envelopes get at most `retention.ciphertext_grace_s` (docs/protocol.md section 6).

Writes go through one writer task, like the SQLite store's group commit: whatever
arrived meanwhile is sent as one MULTI/EXEC pipeline, in arrival order, on the writer's
own connection (Redis answers a connection in order; two pooled connections could
finish out of order), so envelopes of a chat are stored in id order. The writer can keep
WRITE_DEPTH batches in flight on it; one measured best (larger batches, fewer sends).
The short commands of a chat's set-up ride in the same pipelines: the queue's length,
the proof-of-work claim, the admission, the place, a counselor's active count, a chat's
hash and the presence stamps (about ten per set-up). On their own each took a pooled
connection and a round trip of redis-py's per-command work; in a batch they share one
send and one EXEC, and they read what every write submitted before them wrote.

One `BlockingConnectionPool` bounds the connections: under a burst, commands wait for
a free connection instead of failing (docs/architecture.md, measured fact 2). Every Redis error
becomes `StoreUnavailable`, which the sender sees as `unavailable`; redis-py reconnects
by itself once Redis is back.
"""

from __future__ import annotations

import asyncio
import functools
import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import hiredis
import redis.asyncio as aioredis
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import RedisError, ResponseError

from tillit.chat_server.model import (
    ACTIVE,
    ENDED,
    META_KEYS,
    QUEUED,
    RETRY_MEMORY,
    VISITOR,
    Chat,
    meta_fields,
    meta_from_fields,
    meta_from_json,
)
from tillit.chat_server.stores import SendRefused, StoreUnavailable
from tillit.chat_server.stores.group_commit import GroupCommit
from tillit.chat_server.stores.sqlite_store import envelope_from_row

T = TypeVar("T")

LOAD_CHUNK = 50  # chats read in one pipeline by `_load_many`
# Write batches in flight on the writer's connection (`_apply`). 1: at saturation a
# batch then gathers what arrived during the previous one's round trip; with 4 in flight
# batches were small, and every send and wake-up of Redis on the server's core cost
# more than the wait saved (bench/README.md, 2026-12-01 evening: 5 149 msg/s at 4, 5 939 at 1).
WRITE_DEPTH = 1

_ENVELOPE_FIELDS = ("id", "epoch", "dir", "seq", "nonce", "ct", "ts")

# Store an envelope unless its id is taken (like SQLite's INSERT OR IGNORE), and keep
# the chat's keys alive: one round trip, atomic.
_ADD_ENVELOPE = """
if redis.call('ZCOUNT', KEYS[1], ARGV[1], ARGV[1]) == 0 then
  redis.call('ZADD', KEYS[1], ARGV[1], ARGV[2])
end
redis.call('EXPIRE', KEYS[1], ARGV[3])
redis.call('EXPIRE', KEYS[2], ARGV[3])
return 1
"""


# Check the sender and the chat, take the chat's next message id and store the envelope,
# in one step (ids stay in order across processes, and a message costs one round trip).
# The check is the send rule of chat_server/send_rule.py (`refusal`, the reference),
# mirrored here in the same order; tests/test_send_rule.py holds the two together.
# KEYS: chat hash, envelopes, the sent map's two generations. ARGV: dedupe field, the
# envelope JSON without its closing brace, TTL, the JSON of the state "active", the
# envelope's epoch, the JSON of the sending counselor's username ('' for the visitor),
# RETRY_MEMORY.
# The sent map remembers at least the latest RETRY_MEMORY envelopes, as the SQLite store's
# `chat.sent`, in two generations: ids of even blocks of RETRY_MEMORY in KEYS[3], of odd
# ones in KEYS[4]; the first id of a block empties the generation it writes to (two
# blocks old). One field written per message and no reverse entries to keep: a quarter
# of the script's cost in Redis (bench/README.md, 2026-12-01 evening).
# Returns {id, 1} for a new envelope, {id, 0} for a retry, or {-code, 0}: -1 not active,
# -2 epoch ahead, -3 not the holder, -4 no such chat.
_APPEND_ENVELOPE = """
local state = redis.call('HGET', KEYS[1], 'state')
if not state then return {-4, 0} end
if ARGV[6] ~= '' and redis.call('HGET', KEYS[1], 'counselor') ~= ARGV[6] then
  return {-3, 0}
end
if state ~= ARGV[4] then return {-1, 0} end
if tonumber(redis.call('HGET', KEYS[1], 'epoch')) < tonumber(ARGV[5]) then return {-2, 0} end
local old = redis.call('HGET', KEYS[3], ARGV[1]) or redis.call('HGET', KEYS[4], ARGV[1])
if old then return {tonumber(old), 0} end
local id = redis.call('HINCRBY', KEYS[1], 'last_id', 1)
redis.call('ZADD', KEYS[2], id, ARGV[2] .. ',"id":' .. id .. '}')
local block = tonumber(ARGV[7])
local sent = KEYS[3 + math.floor(id / block) % 2]
if id % block == 0 then redis.call('DEL', sent) end
redis.call('HSET', sent, ARGV[1], id)
if ARGV[6] ~= '' then redis.call('HSET', KEYS[1], 'counselor_wrote', 'true') end
for i = 1, 2 do redis.call('EXPIRE', KEYS[i], ARGV[3]) end
redis.call('EXPIRE', sent, ARGV[3])
return {id, 1}
"""
# The hash as read, kept on the Chat object (not a dataclass field: never saved).
_STORED_ROW = "_redis_row"
_APPEND_REFUSALS = {-1: "conflict", -2: "invalid_payload", -3: "forbidden", -4: "not_found"}

# A side's new public key and the next epoch, in one step, if the chat is active.
# KEYS: chat hash. ARGV: the JSON of "active", the pubkey field, the pubkey's JSON.
# Returns the new epoch, or 0.
_REKEY = """
if redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], ARGV[2], ARGV[3])
return redis.call('HINCRBY', KEYS[1], 'epoch', 1)
"""

# Save the fields of a chat that changed, in one step with everything that follows from
# them: the queue, the index, the per-counselor set, the TTLs. With an expected state
# (accept) nothing is written unless the stored state is still that one.
# KEYS: chat hash, queue, index, resume key, sent map, envelopes, the sent map's 2nd.
# ARGV: expected state (JSON) or '', chat id, the per-counselor set's key prefix, TTL,
# last_id (kept if set: only the append script moves it), queue score ('' unless
# queued), the envelopes' TTL, then field, value (JSON) pairs. Returns 1, or 0.
_SAVE = """
if ARGV[1] ~= '' and redis.call('HGET', KEYS[1], 'state') ~= ARGV[1] then return 0 end
for i = 8, #ARGV, 2 do
  if ARGV[i] == 'counselor' then
    local old = redis.call('HGET', KEYS[1], 'counselor')
    if old and old ~= 'null' then redis.call('SREM', ARGV[3] .. cjson.decode(old), ARGV[2]) end
    if ARGV[i + 1] ~= 'null' then
      local held = ARGV[3] .. cjson.decode(ARGV[i + 1])
      redis.call('SADD', held, ARGV[2])
      redis.call('EXPIRE', held, ARGV[4])
    end
  end
  redis.call('HSET', KEYS[1], ARGV[i], ARGV[i + 1])
end
redis.call('HSETNX', KEYS[1], 'last_id', ARGV[5])
redis.call('HDEL', KEYS[1], 'meta')
if ARGV[6] ~= '' then redis.call('ZADD', KEYS[2], ARGV[6], ARGV[2])
else redis.call('ZREM', KEYS[2], ARGV[2]) end
redis.call('EXPIRE', KEYS[1], ARGV[4])
redis.call('EXPIRE', KEYS[5], ARGV[4])
redis.call('EXPIRE', KEYS[7], ARGV[4])
redis.call('SET', KEYS[4], ARGV[2], 'EX', ARGV[4])
redis.call('SADD', KEYS[3], ARGV[2])
redis.call('EXPIRE', KEYS[6], ARGV[7])
return 1
"""

# A new chat's place in the queue, only while the queue holds fewer than the cap: the
# count and the add are one step, so parallel starts on any process never pass the cap.
# When full, ids older than a minute whose chat hash is gone (a process died between
# this and its save, or the TTL ran out) are dropped first, so that they cannot hold
# places for ever; younger ones may be a start whose save is still on its way.
# KEYS: the queue. ARGV: chat id, score (created_at), cap, the chat hash key's prefix.
_ADMIT = """
local cap = tonumber(ARGV[3])
if redis.call('ZCARD', KEYS[1]) >= cap then
  local old = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', tonumber(ARGV[2]) - 60)
  for _, id in ipairs(old) do
    if redis.call('EXISTS', ARGV[4] .. id) == 0 then redis.call('ZREM', KEYS[1], id) end
  end
  if redis.call('ZCARD', KEYS[1]) >= cap then return 0 end
end
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
return 1
"""

# How many chats of a counselor's set are active and still theirs: one round trip and a
# number back, not every chat's hash (an account may hold many chats over an evening).
# KEYS: the per-counselor set. ARGV: the chat hash key's prefix, the JSON of "active",
# the JSON of the username.
_ACTIVE_COUNT = """
local n = 0
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local row = redis.call('HMGET', ARGV[1] .. id, 'state', 'counselor')
  if row[1] == ARGV[2] and row[2] == ARGV[3] then n = n + 1 end
end
return n
"""

# A queued chat's 1-based place in the urgency order (queue_order.urgency_key), without
# sending every queued chat's hash to the process to be decoded (each `chat:start` asks):
# the tier (danger now or acute, returned, child) of each queued chat is read here, and
# the sorted set's order (created_at, then id) breaks ties as the process's stable sort
# of the same list does. 0: not queued; -1: a hash saved before 2026-12 (one `meta`
# field), which the process orders itself.
# KEYS: the queue. ARGV: the chat hash key's prefix, the chat id, the JSON of "queued".
_PLACE = """
local tiers, mine, at = {}, nil, 0
for i, id in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local row = redis.call('HMGET', ARGV[1] .. id, 'state', 'danger_now', 'acute', 'returned',
                         'child', 'meta')
  if row[6] then return -1 end
  if row[1] == ARGV[3] then
    local tier = ((row[2] == 'true' or row[3] == 'true') and 0 or 4)
                 + (row[4] == 'true' and 0 or 2) + (row[5] == 'true' and 0 or 1)
    tiers[#tiers + 1] = tier
    if id == ARGV[2] then mine, at = tier, #tiers end
  end
end
if not mine then return 0 end
local place = 1
for i, tier in ipairs(tiers) do
  if tier < mine or (tier == mine and i < at) then place = place + 1 end
end
return place
"""

# Set (or clear) when the visitor's socket went away, unless the chat is gone already.
_MARK_GONE = """
if redis.call('EXISTS', KEYS[1]) == 0 then return 0 end
if ARGV[1] == '' then redis.call('HDEL', KEYS[1], 'visitor_gone_since')
else redis.call('HSET', KEYS[1], 'visitor_gone_since', ARGV[1]) end
return 1
"""


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))


def _unavailable_on_error(
    method: Callable[..., Awaitable[T]],
) -> Callable[..., Awaitable[T]]:
    # After a Redis restart every pooled connection is stale and fails once (then is
    # dropped): try again on a fresh one. Each operation is safe to repeat (the append
    # script drops a repeated envelope; the claim of a chat already ours is refused).
    @functools.wraps(method)
    async def wrapper(*args: Any, **kwargs: Any) -> T:
        for attempt in range(3):
            try:
                return await method(*args, **kwargs)
            except RedisConnectionError as exc:
                if attempt == 2:
                    raise StoreUnavailable(type(exc).__name__) from None
            except (TimeoutError, RedisError, OSError) as exc:
                raise StoreUnavailable(type(exc).__name__) from None
        raise AssertionError("unreachable")

    return wrapper


def _queue_script(pipe: Any, script: Any, keys: list[str], args: list[Any]) -> None:
    """Queue `script` in a write pipeline by its hash (EVALSHA).

    The writer loads every script on its connection each time it connects
    (`RedisStore._load_scripts`), so a Redis restarted without them gets them back before
    the first batch. By hash, not by text: the append script's text was three quarters of
    each message's bytes to Redis, and Redis hashed it again for every message
    (bench/README.md). A script flushed by hand meanwhile fails its batch with NOSCRIPT,
    which breaks the connection like any error: the next batch reconnects and reloads.
    """
    pipe.evalsha(script.sha, len(keys), *keys, *args)


def _pairs(raw: Any) -> dict[str, str]:
    """A hash as read raw from a pipeline's EXEC reply: a flat list (RESP2) or a map."""
    return raw if isinstance(raw, dict) else dict(zip(raw[::2], raw[1::2], strict=True))


def make_pool(url: str, max_connections: int, timeout_s: float, decode: bool,
              read_timeout: bool = True) -> aioredis.BlockingConnectionPool:
    """A bounded pool that waits up to `timeout_s` for a free connection.

    `read_timeout=False` for a pub/sub subscriber, whose reads wait for messages.
    """
    return aioredis.BlockingConnectionPool.from_url(
        url,
        max_connections=max_connections,
        timeout=timeout_s,
        socket_timeout=timeout_s if read_timeout else None,
        socket_connect_timeout=timeout_s,
        decode_responses=decode,
    )



def pack_commands(commands: list[tuple[Any, ...]]) -> bytes:
    """The writer's batch in the Redis protocol, packed by hiredis in C.

    redis-py's asyncio connection packs in Python: at saturation that was a fifth of the
    server's busy time (bench/README.md); hiredis gives the same bytes about 9x faster
    (tests/test_stores.py checks they are equal)."""
    return b"".join([hiredis.pack_command(tuple(command)) for command in commands])


class RedisStore:
    shared = True  # several processes share it

    def __init__(
        self,
        url: str,
        *,
        prefix: str = "tillit",
        ttl_s: int = 4 * 3600,
        ciphertext_grace_s: float = 0,
        max_connections: int = 16,
        timeout_s: float = 2.0,
    ) -> None:
        self.url = url
        self.prefix = prefix
        self.ttl_s = int(ttl_s)
        self.ciphertext_grace_s = ciphertext_grace_s
        self.max_connections = max_connections
        self.timeout_s = timeout_s
        self.redis: aioredis.Redis | None = None
        self._add_envelope: Any = None
        self._append: Any = None
        self._save: Any = None
        self._mark_gone: Any = None
        self._rekey: Any = None
        self._writes: GroupCommit[Callable[[Any], None]] = GroupCommit(
            self._apply, "redis-writer", depth=WRITE_DEPTH)
        self._writer_conn: Any = None  # the writer's own connection, outside the pool
        self._writer_scripts: tuple[Any, ...] = ()  # loaded on it at every connect
        self._send_lock = asyncio.Lock()
        self._read_turn: asyncio.Future[None] | None = None
        self._generation = 0  # counts the writer connection's breaks

    # -- keys -------------------------------------------------------------------------------

    @property
    def index_key(self) -> str:
        return f"{self.prefix}:chats"

    def chat_key(self, chat_id: str) -> str:
        return f"{self.prefix}:chat:{chat_id}"

    def envelopes_key(self, chat_id: str) -> str:
        return f"{self.prefix}:env:{chat_id}"

    def resume_key(self, resume_hash: str) -> str:
        return f"{self.prefix}:resume:{resume_hash}"

    def sent_keys(self, chat_id: str) -> list[str]:
        """The retry memory's two generations (`_APPEND_ENVELOPE`)."""
        return [f"{self.prefix}:sent:{chat_id}", f"{self.prefix}:sent:{chat_id}:b"]

    def held_key(self, username: str) -> str:
        return f"{self.prefix}:held:{username}"

    @property
    def queue_key(self) -> str:
        return f"{self.prefix}:queue"

    @property
    def seen_key(self) -> str:
        return f"{self.prefix}:seen"

    @property
    def visitors_seen_key(self) -> str:
        return f"{self.prefix}:vseen"

    def keys_of(self, chat_id: str, resume_hash: str | None) -> list[str]:
        """Every key that holds something of one chat (the index set aside)."""
        keys = [self.chat_key(chat_id), self.envelopes_key(chat_id)]
        if resume_hash:
            keys.append(self.resume_key(resume_hash))
        return keys

    # -- life -------------------------------------------------------------------------------

    async def open(self) -> None:
        pool = make_pool(self.url, self.max_connections, self.timeout_s, decode=True)
        self.redis = aioredis.Redis(connection_pool=pool)
        self._add_envelope = self.redis.register_script(_ADD_ENVELOPE)
        self._append = self.redis.register_script(_APPEND_ENVELOPE)
        self._save = self.redis.register_script(_SAVE)
        self._mark_gone = self.redis.register_script(_MARK_GONE)
        self._rekey = self.redis.register_script(_REKEY)
        self._admit = self.redis.register_script(_ADMIT)
        self._active_count = self.redis.register_script(_ACTIVE_COUNT)
        self._place = self.redis.register_script(_PLACE)
        self._writer_scripts = (self._add_envelope, self._append, self._save, self._admit,
                                self._active_count, self._place)
        try:
            await self.redis.ping()
        except (RedisError, OSError) as exc:
            raise StoreUnavailable(f"no Redis at start-up: {type(exc).__name__}") from None
        pool = self.redis.connection_pool
        # Named, so an operator's CLIENT LIST shows which connection carries the writes.
        self._writer_conn = pool.connection_class(
            **{**pool.connection_kwargs, "client_name": f"{self.prefix}-writer"})
        loop = asyncio.get_running_loop()
        self._read_turn = loop.create_future()
        self._read_turn.set_result(None)
        self._writes.start()

    @property
    def backlog(self) -> int:
        return self._writes.backlog

    async def close(self) -> None:
        await self._writes.stop()
        if self._writer_conn is not None:
            await self._writer_conn.disconnect()
            self._writer_conn = None
        if self.redis is not None:
            await self.redis.aclose()
            await self.redis.connection_pool.disconnect()
            self.redis = None

    async def healthy(self) -> bool:
        if self.redis is None:
            return False
        try:
            return bool(await asyncio.wait_for(self.redis.ping(), self.timeout_s))
        except (TimeoutError, RedisError, OSError):
            return False

    def _r(self) -> aioredis.Redis:
        if self.redis is None:
            raise StoreUnavailable("store not open")
        return self.redis

    # -- writes, all through the writer task --------------------------------------------------

    async def _write(self, build: Callable[[Any], None]) -> Any:
        """Queue `build` for the next pipeline; returns the raw reply of its last command
        (no redis-py reply callback: a hash comes back as a flat list, see `_pairs`)."""
        if not self._writes.running:
            raise StoreUnavailable("store not open")
        return await self._writes.submit(build)

    async def _apply(self, batch: list[Callable[[Any], None]]) -> list[Any]:
        """One MULTI/EXEC for the batch; each write's result is its last command's reply.

        Up to `WRITE_DEPTH` batches are in flight on the writer's one connection: a batch
        is sent while the one before still waits for its replies. Redis runs a
        connection's commands in the order they arrive and answers in that order, so the
        batches land in the order they were submitted and each reads its own replies, in
        turn. A caller learns its result only from its batch's EXEC reply.
        """
        collector = self._r().pipeline(transaction=True)  # only collects the commands
        ends: list[int] = []
        for build in batch:
            build(collector)
            ends.append(len(collector.command_stack))
        commands = [("MULTI",), *(args for args, _ in collector.command_stack), ("EXEC",)]
        conn = self._writer_conn
        # The turn to read is taken now, in the order GroupCommit started the batches
        # (the same order as the send lock's queue below).
        previous, mine = self._read_turn, asyncio.get_running_loop().create_future()
        self._read_turn = mine
        generation = -1
        try:
            async with self._send_lock:
                if not conn.is_connected:
                    await conn.connect()
                    await self._load_scripts(conn)
                generation = self._generation
                await conn.send_packed_command(pack_commands(commands), check_health=False)
            await asyncio.shield(previous)
            if generation != self._generation:  # the connection broke meanwhile
                raise RedisConnectionError("the writer's connection was lost")
            replies = await self._read_transaction(conn, len(commands) - 2)
        except BaseException as exc:
            if generation in (-1, self._generation):  # this connection is out of step now
                self._generation += 1
                await conn.disconnect()
            if isinstance(exc, (TimeoutError, RedisError, OSError)):
                raise StoreUnavailable(type(exc).__name__) from None
            raise
        finally:
            if not mine.done():
                mine.set_result(None)
        return [replies[end - 1] if end else None for end in ends]

    async def _load_scripts(self, conn: Any) -> None:
        """SCRIPT LOAD the writer's scripts on a fresh connection, before any batch."""
        scripts = self._writer_scripts
        await conn.send_packed_command(
            pack_commands([("SCRIPT", "LOAD", s.script) for s in scripts]), check_health=False)
        for _ in scripts:
            await conn.read_response()

    @staticmethod
    async def _read_transaction(conn: Any, queued: int) -> list[Any]:
        """Read MULTI's, each QUEUED and EXEC's replies (all of them, even after an
        error, so the next batch reads its own); raise the first error."""
        error: Exception | None = None
        replies: Any = None
        for _ in range(queued + 1):  # MULTI's OK, then one QUEUED per command
            try:
                await conn.read_response()
            except ResponseError as exc:
                error = error or exc
        try:
            replies = await conn.read_response()
        except ResponseError as exc:  # EXECABORT after a refused command
            error = error or exc
        if error is None:
            error = next((r for r in replies if isinstance(r, Exception)), None)
        if error is not None:
            raise error
        return list(replies)

    async def save_chat(self, chat: Chat) -> None:
        await self._save_if(chat, None)

    async def _save_if(self, chat: Chat, expected_state: str | None) -> bool:
        # One field per column, answer and flag, each JSON: types survive, and counters
        # such as `last_id` stay plain integers that HINCRBY can move.
        # `last_id` is moved only by the append script (HINCRBY), never overwritten.
        row = {k: _json(v) for k, v in chat.columns().items()}
        row.update((k, _json(v)) for k, v in meta_fields(chat.answers, chat.flags).items())
        last_id = row.pop("last_id")
        # Only the fields that changed since this process read the chat: another process
        # may have changed other fields meanwhile (a counselor's report while the
        # visitor's page re-keys), and writing the whole hash back would undo that.
        stored: dict[str, str] | None = getattr(chat, _STORED_ROW, None)
        changed = row if stored is None else {k: v for k, v in row.items() if stored.get(k) != v}
        sent, sent_b = self.sent_keys(chat.chat_id)
        keys = [self.chat_key(chat.chat_id), self.queue_key, self.index_key,
                self.resume_key(chat.resume_hash), sent, self.envelopes_key(chat.chat_id),
                sent_b]
        # Once ended, content outlives the end by the grace at most, even if no process
        # is left to purge it.
        env_ttl = max(1, int(self.ciphertext_grace_s)) if chat.state == ENDED else self.ttl_s
        args: list[Any] = [
            "" if expected_state is None else _json(expected_state), chat.chat_id,
            self.held_key(""), self.ttl_s, last_id,
            repr(chat.created_at) if chat.state == QUEUED else "", env_ttl,
        ]
        for field, value in changed.items():
            args += [field, value]
        script = self._save

        def build(pipe: Any) -> None:
            _queue_script(pipe, script, keys, args)

        saved = bool(await self._write(build))
        if saved:
            setattr(chat, _STORED_ROW, {**(stored or {}), **changed})
        return saved

    async def add_envelope(self, chat_id: str, envelope: dict[str, Any]) -> None:
        doc = json.dumps({f: envelope[f] for f in _ENVELOPE_FIELDS}, separators=(",", ":"))
        keys = [self.envelopes_key(chat_id), self.chat_key(chat_id)]
        args = [envelope["id"], doc, self.ttl_s]
        script = self._add_envelope

        def build(pipe: Any) -> None:
            _queue_script(pipe, script, keys, args)

        await self._write(build)

    async def purge_envelopes(self, chat_id: str) -> None:
        key = self.envelopes_key(chat_id)
        await self._write(lambda pipe: pipe.delete(key))

    @_unavailable_on_error
    async def delete_chat(self, chat_id: str) -> None:
        raw_hash, raw_counselor = await self._r().hmget(
            self.chat_key(chat_id), ["resume_hash", "counselor"])
        keys = self.keys_of(chat_id, json.loads(raw_hash) if raw_hash else None)
        keys += self.sent_keys(chat_id)
        counselor = json.loads(raw_counselor) if raw_counselor else None

        def build(pipe: Any) -> None:
            if counselor is not None:
                pipe.srem(self.held_key(counselor), chat_id)
            pipe.delete(*keys)
            pipe.hdel(self.visitors_seen_key, chat_id)
            pipe.srem(self.index_key, chat_id)
            pipe.zrem(self.queue_key, chat_id)

        await self._write(build)

    # -- reads ------------------------------------------------------------------------------

    @_unavailable_on_error
    async def load_chats(self) -> list[Chat]:
        redis = self._r()
        chats: list[Chat] = []
        for chat_id in sorted(await redis.smembers(self.index_key)):
            raw = await redis.hgetall(self.chat_key(chat_id))
            if not raw:  # expired: forget whatever is left of it
                async with redis.pipeline(transaction=True) as pipe:
                    pipe.delete(*self.keys_of(chat_id, None))
                    pipe.srem(self.index_key, chat_id)
                    await pipe.execute()
                continue
            chat = self._chat_from(raw)
            docs = await redis.zrange(self.envelopes_key(chat_id), 0, -1)
            envs = [json.loads(d) for d in docs]
            chat.sent = {(e["epoch"], e["dir"], e["seq"]): e["id"] for e in envs}
            chats.append(chat)
        return chats

    @_unavailable_on_error
    async def envelopes_after(self, chat_id: str, after_id: int) -> list[dict[str, Any]]:
        docs = await self._r().zrangebyscore(self.envelopes_key(chat_id), f"({after_id}", "+inf")
        return [envelope_from_row(chat_id, json.loads(d)) for d in docs]

    @_unavailable_on_error
    async def chat_id_for_resume(self, resume_hash: str) -> str | None:
        """Which chat a resume token's hash opens (for a process that never saw it start)."""
        return await self._r().get(self.resume_key(resume_hash))

    # -- the chat state -------------------------------------------------------------------------

    async def recover(self, now: float) -> None:
        """Nothing to take back: the state outlives the process, in Redis."""

    @staticmethod
    def _chat_from(raw: dict[str, str]) -> Chat:
        # One JSON parse for all the fields (each is a JSON value): a third of the time a
        # parse per field took, and the queue's read runs at every chat:start.
        row = dict(zip(raw, json.loads("[" + ",".join(raw.values()) + "]"), strict=True))
        meta = {k: row.pop(k) for k in list(row) if k in META_KEYS}
        if "meta" in row:  # a hash saved before 2026-12: one JSON field (the next save
            answers, flags = meta_from_json(row.pop("meta"))  # writes the fields)
            flags.counselor_wrote = bool(meta.get("counselor_wrote"))  # the append script's
        else:
            answers, flags = meta_from_fields(meta)
        chat = Chat(**row, answers=answers, flags=flags)
        setattr(chat, _STORED_ROW, raw)  # what save_chat compares against
        return chat

    async def load_chat(self, chat_id: str) -> Chat | None:
        key = self.chat_key(chat_id)
        raw = _pairs(await self._write(lambda pipe: pipe.hgetall(key)))  # `_write`: why
        return self._chat_from(raw) if raw.get("state") else None

    async def _load_many(self, chat_ids: list[str]) -> list[Chat]:
        # In pipelines of LOAD_CHUNK chats: decoding a reply runs without a pause, and
        # the sweep's read of 1 000 chats in one go held every message back for a third
        # of a second every sweep (bench/README.md); between chunks the loop serves them.
        chats: list[Chat] = []
        for start in range(0, len(chat_ids), LOAD_CHUNK):
            async with self._r().pipeline(transaction=False) as pipe:
                for chat_id in chat_ids[start:start + LOAD_CHUNK]:
                    pipe.hgetall(self.chat_key(chat_id))
                rows = await pipe.execute()
            chats += [self._chat_from(raw) for raw in rows if raw.get("state")]
        return chats

    @_unavailable_on_error
    async def all_chats(self) -> list[Chat]:
        """Every chat of every process (for sweeps and a counselor's own chats)."""
        return await self._load_many(sorted(await self._r().smembers(self.index_key)))

    @_unavailable_on_error
    async def queued_chats(self) -> list[Chat]:
        chats = await self._load_many(await self._r().zrange(self.queue_key, 0, -1))
        return [c for c in chats if c.state == QUEUED]

    @_unavailable_on_error
    async def chats_held_by(self, username: str) -> list[Chat]:
        """The chats `username` holds, from their set: no read of every chat."""
        chats = await self._load_many(sorted(await self._r().smembers(self.held_key(username))))
        return [c for c in chats if c.counselor == username]

    async def active_count(self, username: str) -> int:
        keys = [self.held_key(username)]
        args = [self.chat_key(""), _json(ACTIVE), _json(username)]
        script = self._active_count
        return int(await self._write(lambda pipe: _queue_script(pipe, script, keys, args)))

    async def queue_size(self) -> int:
        key = self.queue_key
        return int(await self._write(lambda pipe: pipe.zcard(key)))

    async def queue_place(self, chat: Chat) -> int | None:
        """The chat's 1-based place in the urgency order, 0 if not queued, counted in
        Redis by one script (a number back, not the queue's hashes); None if a chat of
        the queue was saved in the pre-2026-12 form (the caller reads the queue)."""
        keys = [self.queue_key]
        args = [self.chat_key(""), chat.chat_id, _json(QUEUED)]
        script = self._place
        place = int(await self._write(lambda pipe: _queue_script(pipe, script, keys, args)))
        return None if place < 0 else place

    async def append_envelope(self, chat: Chat, envelope: dict[str, Any]) -> tuple[int, bool]:
        """`append_checked` for the visitor's side of `chat` (the store protocol's form)."""
        new_id, new = await self.append_checked(chat.chat_id, envelope, None)
        chat.last_id = max(chat.last_id, new_id)
        return new_id, new

    @_unavailable_on_error
    async def append_checked(
        self, chat_id: str, envelope: dict[str, Any], holder: str | None
    ) -> tuple[int, bool]:
        """Store `envelope` under the chat's next id if the chat is active, its epoch is
        not ahead and `holder` (a counselor; None for the visitor) holds the chat; a
        retried (epoch, dir, seq) gets the id it got first and `False`. Raises
        `SendRefused` otherwise, without a separate read of the chat."""
        doc = _json({f: envelope[f] for f in _ENVELOPE_FIELDS if f != "id"})
        field = f"{envelope['epoch']}:{envelope['dir']}:{envelope['seq']}"
        keys = [self.chat_key(chat_id), self.envelopes_key(chat_id), *self.sent_keys(chat_id)]
        args = [field, doc[:-1], self.ttl_s, _json(ACTIVE), envelope["epoch"],
                "" if holder is None else _json(holder), RETRY_MEMORY]
        script = self._append

        def build(pipe: Any) -> None:  # batched with whatever else is being written
            _queue_script(pipe, script, keys, args)

        new_id, new = await self._write(build)
        if new_id < 0:
            raise SendRefused(_APPEND_REFUSALS[new_id])
        return int(new_id), bool(new)

    async def claim(self, chat: Chat, expected_state: str) -> bool:
        """Write `chat` only if its stored state is still `expected_state` (one winner):
        the check and every changed field in one script."""
        return await self._save_if(chat, expected_state)

    @_unavailable_on_error
    async def rekey(self, chat: Chat, side: str, pubkey: str) -> bool:
        """Store `side`'s new key and count the epoch up, atomically; False if the chat
        is not active. `chat` gets the new epoch and key."""
        field = "visitor_pubkey" if side == VISITOR else "counselor_pubkey"
        epoch = await self._rekey(keys=[self.chat_key(chat.chat_id)],
                                  args=[_json(ACTIVE), field, _json(pubkey)])
        if not epoch:
            return False
        chat.epoch = int(epoch)
        setattr(chat, field, pubkey)
        stored = getattr(chat, _STORED_ROW, None)
        if stored is not None:  # what Redis now holds, for the next save's comparison
            stored.update({field: _json(pubkey), "epoch": _json(chat.epoch)})
        return True

    @_unavailable_on_error
    async def mark_visitor_gone(self, chat: Chat, since: float | None) -> None:
        chat.visitor_gone_since = since
        await self._mark_gone(keys=[self.chat_key(chat.chat_id)],
                              args=["" if since is None else _json(since)])

    async def mark_seen(self, usernames: list[str], now: float) -> None:
        if usernames:
            key, mapping = self.seen_key, {u: _json(now) for u in usernames}
            await self._write(lambda pipe: pipe.hset(key, mapping=mapping))

    async def mark_visitors_seen(self, chat_ids: list[str], now: float) -> None:
        if chat_ids:
            key, mapping = self.visitors_seen_key, {c: _json(now) for c in chat_ids}
            await self._write(lambda pipe: pipe.hset(key, mapping=mapping))

    @_unavailable_on_error
    async def visitors_seen(self) -> dict[str, float]:
        return {c: float(v) for c, v in (await self._r().hgetall(self.visitors_seen_key)).items()}

    @_unavailable_on_error
    async def seen(self) -> dict[str, float]:
        return {u: float(v) for u, v in (await self._r().hgetall(self.seen_key)).items()}

    @_unavailable_on_error
    async def forget_seen(self, username: str) -> None:
        await self._r().hdel(self.seen_key, username)

    async def admit_to_queue(self, chat: Chat, cap: int) -> bool:
        """Put a new chat's id in the queue if it holds fewer than `cap` (atomic)."""
        keys = [self.queue_key]
        args = [chat.chat_id, repr(chat.created_at), cap, self.chat_key("")]
        script = self._admit
        return bool(await self._write(lambda pipe: _queue_script(pipe, script, keys, args)))

    async def claim_once(self, name: str, ttl_s: float) -> bool:
        """True for the first caller of `name` within `ttl_s` on any process (SET NX):
        a solved proof-of-work challenge counts once (chat_server/start_guard.py)."""
        key, px = f"{self.prefix}:pow:{name}", max(1, int(ttl_s * 1000))
        return bool(await self._write(lambda pipe: pipe.set(key, "1", nx=True, px=px)))

    @_unavailable_on_error
    async def count_hit(self, name: str, ttl_s: float, add: int = 1) -> int:
        """An expiring counter shared by every process (INCRBY, then PEXPIRE on the
        first hit): the mailbox throttles (chat_server/mailboxes.py). `add=0` reads."""
        key = f"{self.prefix}:count:{name}"
        redis = self._r()
        if not add:
            return int(await redis.get(key) or 0)
        count = int(await redis.incrby(key, add))
        if count == add:
            await redis.pexpire(key, max(1, int(ttl_s * 1000)))
        return count

    @_unavailable_on_error
    async def try_lock(self, name: str, ttl_s: float) -> bool:
        """True for the one process that holds `name` for the next `ttl_s` seconds."""
        key = f"{self.prefix}:lock:{name}"
        return bool(await self._r().set(key, "1", nx=True, px=max(1, int(ttl_s * 1000))))

