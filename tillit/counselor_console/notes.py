"""Counselors' short notes (minnesanteckningar): per chat, readable only by their author.

Stored encrypted (notes_crypto), with the author, the chat and the time of writing in
clear so that the purge can find them and only the author is ever handed them. The
purge (counselor_console/purge.py) deletes them after `retention.notes_days`, so that
they stay working material (DOMAIN.md, 2 kap. 12 § TF).
"""

from __future__ import annotations

import time
from typing import Any

import aiosqlite

from tillit.counselor_console.notes_crypto import NoteCipher

SCHEMA = """
CREATE TABLE IF NOT EXISTS notes (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    author TEXT NOT NULL,
    chat_ref TEXT NOT NULL,
    created_at REAL NOT NULL,
    nonce BLOB NOT NULL,
    ct BLOB NOT NULL
);
CREATE INDEX IF NOT EXISTS notes_author ON notes (author, chat_ref);
CREATE INDEX IF NOT EXISTS notes_created ON notes (created_at);
"""
MAX_NOTES_PER_CHAT = 50


class NoteBook:
    def __init__(self, conn: aiosqlite.Connection, cipher: NoteCipher, max_chars: int) -> None:
        self.conn = conn
        self.cipher = cipher
        self.max_chars = max_chars

    async def setup(self) -> None:
        await self.conn.executescript(SCHEMA)

    async def add(self, author: str, chat_ref: str, text: str,
                  now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        rows = await self.conn.execute_fetchall(
            "SELECT COUNT(*) AS n FROM notes WHERE author = ? AND chat_ref = ?",
            (author, chat_ref),
        )
        if rows[0]["n"] >= MAX_NOTES_PER_CHAT:
            from tillit.safety.errors import ProtocolError

            raise ProtocolError("conflict", "this chat has as many notes as it may have")
        nonce, ct = self.cipher.seal(author, chat_ref, text)
        cur = await self.conn.execute(
            "INSERT INTO notes (author, chat_ref, created_at, nonce, ct) VALUES (?, ?, ?, ?, ?)",
            (author, chat_ref, now, nonce, ct),
        )
        await self.conn.commit()
        return {"id": int(cur.lastrowid or 0), "chat_id": chat_ref, "at": int(now), "text": text}

    async def of_author(self, author: str, chat_ref: str | None = None) -> list[dict[str, Any]]:
        """The author's own notes (of one chat, or all), oldest first; never anyone else's."""
        sql = "SELECT id, chat_ref, created_at, nonce, ct FROM notes WHERE author = ?"
        args: tuple[Any, ...] = (author,)
        if chat_ref is not None:
            sql += " AND chat_ref = ?"
            args += (chat_ref,)
        rows = await self.conn.execute_fetchall(sql + " ORDER BY id", args)
        out = []
        for row in rows:
            try:
                text = self.cipher.open(author, row["chat_ref"], row["nonce"], row["ct"])
            except Exception:  # noqa: BLE001 - a wrong key or a tampered row: show nothing
                continue
            out.append({"id": row["id"], "chat_id": row["chat_ref"],
                        "at": int(row["created_at"]), "text": text})
        return out
