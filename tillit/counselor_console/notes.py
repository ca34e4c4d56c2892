"""Counselors' short notes (minnesanteckningar): per chat, readable only by their author.

Stored encrypted (notes_crypto), with the author, the chat and the time of writing in
clear so that the purge can find them and only the author is ever handed them. The
purge (counselor_console/purge.py) deletes them after `retention.notes_days`, so that
they stay working material (DOMAIN.md, 2 kap. 12 § TF).
"""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.counselor_console.notes_crypto import NoteCipher
from tillit.durable.schema import notes

MAX_NOTES_PER_CHAT = 50


class NoteBook:
    def __init__(self, db: AsyncEngine, cipher: NoteCipher, max_chars: int) -> None:
        self.db = db
        self.cipher = cipher
        self.max_chars = max_chars

    async def add(self, author: str, chat_ref: str, text: str,
                  now: float | None = None) -> dict[str, Any]:
        now = time.time() if now is None else now
        async with self.db.connect() as conn:
            count = (await conn.execute(select(func.count()).select_from(notes).where(
                notes.c.author == author, notes.c.chat_ref == chat_ref))).scalar_one()
        if count >= MAX_NOTES_PER_CHAT:
            from tillit.safety.errors import ProtocolError

            raise ProtocolError("conflict", "this chat has as many notes as it may have")
        nonce, ct = self.cipher.seal(author, chat_ref, text)
        async with self.db.begin() as conn:
            cur = await conn.execute(notes.insert().values(
                author=author, chat_ref=chat_ref, created_at=now, nonce=nonce, ct=ct))
        return {"id": int(cur.inserted_primary_key[0]), "chat_id": chat_ref, "at": int(now),
                "text": text}

    async def of_author(self, author: str, chat_ref: str | None = None) -> list[dict[str, Any]]:
        """The author's own notes (of one chat, or all), oldest first; never anyone else's."""
        query = select(notes.c.id, notes.c.chat_ref, notes.c.created_at, notes.c.nonce,
                       notes.c.ct).where(notes.c.author == author)
        if chat_ref is not None:
            query = query.where(notes.c.chat_ref == chat_ref)
        async with self.db.connect() as conn:
            rows = (await conn.execute(query.order_by(notes.c.id))).all()
        out = []
        for row in rows:
            try:
                text = self.cipher.open(author, row.chat_ref, bytes(row.nonce), bytes(row.ct))
            except Exception:  # noqa: BLE001 - a wrong key or a tampered row: show nothing
                continue
            out.append({"id": row.id, "chat_id": row.chat_ref,
                        "at": int(row.created_at), "text": text})
        return out
