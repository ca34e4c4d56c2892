"""The embedded ephemeral store: one process's chats in a dict, written through to
one SQLite file in group commits.

The dict is the chat state (one process serves every chat): reads never touch the
file, and the checks that must be atomic (the send rule, the queue cap, the epoch)
run with no await between the check and the change.

Every write waits until its transaction is committed, so an acknowledged message
is on disk; writes that arrive while a commit is running share the next one, so
a busy evening costs one fsync per batch rather than one per message.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import aiosqlite

from tillit.chat_server import send_rule
from tillit.chat_server.model import ACTIVE, ENDED, QUEUED, VISITOR, Chat
from tillit.chat_server.queue_order import urgency_key
from tillit.chat_server.stores import SendRefused
from tillit.chat_server.stores.group_commit import GroupCommit
from tillit.chat_server.transport.aiosqlite_fastpath import commit_runs
from tillit.safety.sqlite_files import checkpoint, open_database

log = logging.getLogger(__name__)

SCHEMA = """
CREATE TABLE IF NOT EXISTS chats (
    chat_id TEXT PRIMARY KEY,
    resume_hash TEXT NOT NULL,
    visitor_pubkey TEXT NOT NULL,
    meta TEXT NOT NULL,
    created_at REAL NOT NULL,
    state TEXT NOT NULL,
    epoch INTEGER NOT NULL,
    last_id INTEGER NOT NULL,
    counselor TEXT,
    counselor_name TEXT,
    counselor_pubkey TEXT,
    accepted_at REAL,
    ended_at REAL,
    ended_by TEXT
);
CREATE TABLE IF NOT EXISTS envelopes (
    chat_id TEXT NOT NULL,
    id INTEGER NOT NULL,
    epoch INTEGER NOT NULL,
    dir TEXT NOT NULL,
    seq INTEGER NOT NULL,
    nonce TEXT NOT NULL,
    ct TEXT NOT NULL,
    ts INTEGER NOT NULL,
    PRIMARY KEY (chat_id, id)
);
"""
# Until 2026-11 envelopes were a WITHOUT ROWID table. Its rows (~700 bytes of
# ciphertext) are far past the size where that layout pays: SQLite then keeps whole
# rows in the tree's inner pages, and an insert cost 33 µs instead of 9 (bench/README.md).
_ENVELOPES_TO_ROWID = """
BEGIN IMMEDIATE;
ALTER TABLE envelopes RENAME TO envelopes_without_rowid;
{create};
INSERT INTO envelopes SELECT chat_id, id, epoch, dir, seq, nonce, ct, ts
    FROM envelopes_without_rowid;
DROP TABLE envelopes_without_rowid;
COMMIT;
"""

_CHAT_COLUMNS = (
    "chat_id", "resume_hash", "visitor_pubkey", "meta", "created_at", "state", "epoch",
    "last_id", "counselor", "counselor_name", "counselor_pubkey", "accepted_at", "ended_at",
    "ended_by",
)
_UPSERT_CHAT = (
    f"INSERT OR REPLACE INTO chats ({', '.join(_CHAT_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in _CHAT_COLUMNS)})"
)
_INSERT_ENVELOPE = (
    "INSERT OR IGNORE INTO envelopes (chat_id, id, epoch, dir, seq, nonce, ct, ts) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
_ENVELOPE_FIELDS = ("id", "epoch", "dir", "seq", "nonce", "ct", "ts")
_DIR_FROM = {"v2c": "visitor", "c2v": "counselor"}
_SCRUB = "scrub"


class SqliteStore:
    shared = False  # one process

    def __init__(self, path: Path) -> None:
        self.path = path
        self.conn: aiosqlite.Connection | None = None
        self.chats: dict[str, Chat] = {}  # the chat state, written through to the file
        self._by_resume: dict[str, str] = {}  # resume hash -> chat id
        # Presence stamps, in memory: after a restart every socket is gone anyway.
        self._seen: dict[str, float] = {}
        self._visitors_seen: dict[str, float] = {}
        self._writes: GroupCommit[tuple[str, Any]] = GroupCommit(
            self._apply, "sqlite-group-commit", depth=2)  # one thread: in order

    async def open(self) -> None:
        self.conn = await open_database(self.path)
        await self.conn.executescript(SCHEMA)
        await _envelopes_with_rowid(self.conn)
        await _checkpoint(self.conn)
        self._writes.start()

    @property
    def backlog(self) -> int:
        return self._writes.backlog

    async def close(self) -> None:
        if self._writes.running:
            await self._write(_SCRUB, None)
            await self._writes.stop()
        if self.conn:
            await self.conn.close()
            self.conn = None

    # -- writes, all through the group-commit loop -------------------------------------------

    async def _write(self, sql: str, params: Any) -> None:
        await self._writes.submit((sql, params))

    async def _apply(self, batch: list[tuple[str, Any]]) -> None:
        conn = self.conn
        assert conn is not None
        scrub = False
        runs: list[tuple[str, list[Any]]] = []  # consecutive writes of one statement
        for sql, params in batch:
            if sql == _SCRUB:
                scrub = True
            elif runs and runs[-1][0] == sql:
                runs[-1][1].append(params)
            else:
                runs.append((sql, [params]))
        if runs:
            await commit_runs(conn, runs)
        if scrub:
            await _checkpoint(conn)

    async def save_chat(self, chat: Chat) -> None:
        self._hold(chat)
        await self._write(_UPSERT_CHAT, chat.to_row())

    def _hold(self, chat: Chat) -> None:
        self.chats[chat.chat_id] = chat
        self._by_resume[chat.resume_hash] = chat.chat_id

    async def add_envelope(self, chat_id: str, envelope: dict[str, Any]) -> None:
        await self._write(
            _INSERT_ENVELOPE, (chat_id, *(envelope[f] for f in _ENVELOPE_FIELDS))
        )

    async def append_checked(
        self, chat_id: str, envelope: dict[str, Any], holder: str | None
    ) -> tuple[int, bool]:
        """The send rule (chat_server/send_rule.py), then `append_envelope`, with no
        await between them: nothing can end or re-key the chat in between."""
        chat = self.chats.get(chat_id)
        refused = send_rule.refusal(chat, envelope["epoch"], holder)
        if refused is not None:
            raise SendRefused(refused)
        assert chat is not None
        if holder is not None and not chat.flags.counselor_wrote:
            # For "dropped" in the statistics; queued before the envelope, same batch.
            chat.flags.counselor_wrote = True
            self._writes.enqueue((_UPSERT_CHAT, chat.to_row()))
        return await self.append_envelope(chat, envelope)

    async def append_envelope(self, chat: Chat, envelope: dict[str, Any]) -> tuple[int, bool]:
        """Store `envelope` under the chat's next id; a retried (epoch, dir, seq) gets the
        id it got first and `False`.

        The id is taken and the write queued with no await between them, so envelopes
        are stored in id order; the in-process `chat.sent` map is the retry memory.
        """
        key = (envelope["epoch"], envelope["dir"], envelope["seq"])
        if key in chat.sent:
            return chat.sent[key], False
        chat.last_id += 1
        envelope["id"] = chat.last_id
        chat.remember_sent(key, chat.last_id)
        try:
            await self.add_envelope(chat.chat_id, envelope)
        except Exception:
            chat.sent.pop(key, None)
            raise
        return envelope["id"], True

    async def admit_to_queue(self, chat: Chat, cap: int) -> bool:
        """Count and hold the place with no await between: a burst cannot pass the cap."""
        if sum(1 for c in self.chats.values() if c.state == QUEUED) >= cap:
            return False
        self._hold(chat)
        return True

    async def claim(self, chat: Chat, expected_state: str) -> bool:
        """One process: the caller checked the state with no await since, so it won."""
        await self.save_chat(chat)
        return True

    async def rekey(self, chat: Chat, side: str, pubkey: str) -> bool:
        if chat.state != ACTIVE:
            return False
        chat.epoch += 1
        if side == VISITOR:
            chat.visitor_pubkey = pubkey
        else:
            chat.counselor_pubkey = pubkey
        await self.save_chat(chat)
        return True

    async def mark_visitor_gone(self, chat: Chat, since: float | None) -> None:
        chat.visitor_gone_since = since  # in memory: after a restart every socket is gone

    async def purge_envelopes(self, chat_id: str) -> None:
        await self._write("DELETE FROM envelopes WHERE chat_id = ?", (chat_id,))
        await self._write(_SCRUB, None)

    async def delete_chat(self, chat_id: str) -> None:
        chat = self.chats.pop(chat_id, None)
        if chat is not None:
            self._by_resume.pop(chat.resume_hash, None)
        self._visitors_seen.pop(chat_id, None)
        await self._write("DELETE FROM envelopes WHERE chat_id = ?", (chat_id,))
        await self._write("DELETE FROM chats WHERE chat_id = ?", (chat_id,))
        await self._write(_SCRUB, None)

    # -- presence stamps and the sweep lock: one process, so in memory ----------------------

    async def mark_seen(self, usernames: list[str], now: float) -> None:
        self._seen.update(dict.fromkeys(usernames, now))

    async def seen(self) -> dict[str, float]:
        return dict(self._seen)

    async def forget_seen(self, username: str) -> None:
        self._seen.pop(username, None)

    async def mark_visitors_seen(self, chat_ids: list[str], now: float) -> None:
        self._visitors_seen.update(dict.fromkeys(chat_ids, now))

    async def visitors_seen(self) -> dict[str, float]:
        return dict(self._visitors_seen)

    async def try_lock(self, name: str, ttl_s: float) -> bool:
        return True  # no other process to sweep

    # -- the chat state ----------------------------------------------------------------------

    async def recover(self, now: float) -> None:
        """Take back the chats of the file: every visitor's socket is gone since `now`,
        and so is every counselor's who held an active chat."""
        for chat in await self.load_chats():
            chat.last_id = max([chat.last_id, *chat.sent.values()])
            chat.visitor_gone_since = now
            if chat.counselor and chat.state == ACTIVE:
                self._seen.setdefault(chat.counselor, now)
            self._hold(chat)
            if chat.state == ENDED:
                await self.purge_envelopes(chat.chat_id)

    async def load_chat(self, chat_id: str) -> Chat | None:
        return self.chats.get(chat_id)

    async def all_chats(self) -> list[Chat]:
        return list(self.chats.values())

    async def chats_held_by(self, username: str) -> list[Chat]:
        return [c for c in self.chats.values() if c.counselor == username]

    async def active_count(self, username: str) -> int:
        return sum(1 for c in self.chats.values() if c.counselor == username and c.state == ACTIVE)

    async def queued_chats(self) -> list[Chat]:
        return [c for c in self.chats.values() if c.state == QUEUED]

    async def queue_size(self) -> int:
        return sum(1 for c in self.chats.values() if c.state == QUEUED)

    async def queue_place(self, chat: Chat) -> int | None:
        """The chat's 1-based place in the urgency order, 0 if not queued: a count of
        the chats ahead of it (ties in the order the queue's sort keeps them), no sort."""
        held = self.chats.get(chat.chat_id)
        if held is None or held.state != QUEUED:
            return 0
        mine = urgency_key(held)
        place, seen_self = 1, False
        for other in self.chats.values():
            if other is held:
                seen_self = True
            elif other.state == QUEUED:
                key = urgency_key(other)
                if key < mine or (key == mine and not seen_self):
                    place += 1
        return place

    async def chat_id_for_resume(self, resume_hash: str) -> str | None:
        return self._by_resume.get(resume_hash)

    # -- reads ----------------------------------------------------------------------------------

    async def load_chats(self) -> list[Chat]:
        """The chats of the file, read afresh (`recover` holds them)."""
        assert self.conn is not None
        rows = await self.conn.execute_fetchall(f"SELECT {', '.join(_CHAT_COLUMNS)} FROM chats")
        chats = [Chat.from_row(dict(row)) for row in rows]
        for chat in chats:
            keys = await self.conn.execute_fetchall(
                "SELECT epoch, dir, seq, id FROM envelopes WHERE chat_id = ? ORDER BY id",
                (chat.chat_id,),
            )
            for r in keys:
                chat.remember_sent((r[0], r[1], r[2]), r[3])
        return chats

    async def envelopes_after(self, chat_id: str, after_id: int) -> list[dict[str, Any]]:
        assert self.conn is not None
        rows = await self.conn.execute_fetchall(
            "SELECT id, epoch, dir, seq, nonce, ct, ts FROM envelopes "
            "WHERE chat_id = ? AND id > ? ORDER BY id",
            (chat_id, after_id),
        )
        return [envelope_from_row(chat_id, dict(row)) for row in rows]


async def _envelopes_with_rowid(conn: aiosqlite.Connection) -> None:
    """Moves a file made before 2026-11 to the current envelope table, keeping its rows."""
    rows = await conn.execute_fetchall(
        "SELECT sql FROM sqlite_master WHERE type = 'table' AND name = 'envelopes'")
    if rows and "WITHOUT ROWID" in rows[0][0].upper():
        create = SCHEMA[SCHEMA.index("CREATE TABLE IF NOT EXISTS envelopes"):].rstrip().rstrip(";")
        await conn.executescript(_ENVELOPES_TO_ROWID.format(create=create))
        log.info("sqlite store: envelope table moved to the rowid layout")


async def _checkpoint(conn: aiosqlite.Connection) -> None:
    """`checkpoint`, then one more statement: aiosqlite's thread keeps its last result
    alive until its next job, and the checkpoint's unread cursor would keep a statement
    open, failing the COMMIT of a `commit_runs` that came next."""
    await checkpoint(conn)
    await conn.execute_fetchall("SELECT 1")


def envelope_from_row(chat_id: str, row: dict[str, Any]) -> dict[str, Any]:
    """The `msg:new` form of a stored envelope (docs/protocol.md section 3)."""
    return {
        "chat_id": chat_id,
        "epoch": row["epoch"],
        "seq": row["seq"],
        "nonce": row["nonce"],
        "ct": row["ct"],
        "id": row["id"],
        "from": _DIR_FROM[row["dir"]],
        "ts": row["ts"],
    }
