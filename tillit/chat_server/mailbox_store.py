"""The mailboxes' rows in the durable database (docs/protocol.md E12.11): queries only.

Every value here is ciphertext, a public key, a mailbox id (a hash of the locator), an
account name or a coarse time. Nothing that comes in a `mailbox:*` event is logged.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, func, or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.durable.engine import checkpoint
from tillit.durable.schema import (
    accounts,
    counselor_keys,
    mailbox_counts,
    mailbox_messages,
    mailbox_notes,
    mailbox_reads,
    mailboxes,
    team_key,
)
from tillit.durable.upsert import insert_or_ignore

PAGE = 50
MAX_COUNSELOR_RECIPIENTS = 62


def day_of(now: float) -> str:
    return datetime.fromtimestamp(now, UTC).strftime("%Y-%m-%d")


def day_plus(day: str, days: int) -> str:
    start = datetime.strptime(day, "%Y-%m-%d").replace(tzinfo=UTC)
    return (start + timedelta(days=days)).strftime("%Y-%m-%d")


@dataclass(frozen=True)
class Mailbox:
    mailbox_id: str
    pubkey: str
    wrapped_key: dict[str, str]
    assigned: str | None
    created_day: str
    last_active_day: str
    messages: int


@dataclass(frozen=True)
class StaffKey:
    username: str
    display_name: str | None
    kid: str
    pubkey: str


def _mailbox(row: Any) -> Mailbox:
    return Mailbox(row.id, row.pubkey, {"iv": row.wrapped_iv, "ct": row.wrapped_ct},
                   row.assigned, row.created_day, row.last_active_day, row.messages)


def _stored(row: Any) -> dict[str, Any]:
    return {"v": 1, "id": row.msg_id, "dir": row.dir, "iv": row.iv, "ct": row.ct,
            "keys": json.loads(row.entries), "seq": row.seq, "ts": row.ts, "kind": row.kind}


class MailboxStore:
    def __init__(self, db: AsyncEngine, chat_roles: list[str]) -> None:
        self.db = db
        self.chat_roles = list(chat_roles)

    # -- keys -------------------------------------------------------------------------------

    async def team(self) -> dict[str, str] | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(team_key.c.kid, team_key.c.pubkey))).first()
        return None if row is None else {"kid": row.kid, "pubkey": row.pubkey}

    async def set_team(self, kid: str, pubkey: str) -> None:
        async with self.db.begin() as conn:
            await conn.execute(delete(team_key))
            await conn.execute(team_key.insert().values(id=1, kid=kid, pubkey=pubkey))

    async def key_record(self, username: str) -> dict[str, Any] | None:
        async with self.db.connect() as conn:
            row = (await conn.execute(select(counselor_keys.c.record).where(
                counselor_keys.c.username == username))).first()
        return None if row is None else json.loads(row.record)

    async def set_key_record(self, username: str, record: dict[str, Any]) -> None:
        async with self.db.begin() as conn:
            await conn.execute(delete(counselor_keys).where(
                counselor_keys.c.username == username))
            await conn.execute(counselor_keys.insert().values(
                username=username, kid=record["kid"], pubkey=record["pubkey"],
                record=json.dumps(record, separators=(",", ":"))))

    async def staff_keys(self, usernames: list[str] | None = None) -> list[StaffKey]:
        """Enabled accounts of a chat role with a key record (those named, or all)."""
        a, k = accounts.c, counselor_keys.c
        query = (select(a.username, a.display_name, k.kid, k.pubkey)
                 .join(counselor_keys, k.username == a.username)
                 .where(a.disabled == 0, a.role.in_(self.chat_roles)))
        if usernames is not None:
            query = query.where(a.username.in_(usernames))
        async with self.db.connect() as conn:
            rows = (await conn.execute(query.order_by(a.username))).all()
        return [StaffKey(r.username, r.display_name, r.kid, r.pubkey) for r in rows]

    async def disabled_kids(self) -> set[str]:
        a, k = accounts.c, counselor_keys.c
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(k.kid).join(accounts, a.username == k.username)
                                       .where(a.disabled != 0))).all()
        return {r.kid for r in rows}

    async def display_name(self, username: str | None) -> str | None:
        if username is None:
            return None
        async with self.db.connect() as conn:
            row = (await conn.execute(select(accounts.c.display_name).where(
                accounts.c.username == username))).first()
        return None if row is None else row.display_name

    # -- mailboxes --------------------------------------------------------------------------

    async def create(self, mailbox_id: str, pubkey: str, wrapped: dict[str, str],
                     assigned: str | None, now: float | None = None) -> bool:
        """False if the id exists already (E12.8: `conflict`)."""
        day = day_of(time.time() if now is None else now)
        try:
            async with self.db.begin() as conn:
                await conn.execute(mailboxes.insert().values(
                    id=mailbox_id, pubkey=pubkey, wrapped_iv=wrapped["iv"],
                    wrapped_ct=wrapped["ct"], assigned=assigned, created_day=day,
                    last_active_day=day, messages=0))
        except IntegrityError:
            return False
        await self._count(day, "created")
        return True

    async def _count(self, day: str, column: str) -> None:
        """The day's statistics count (no mailbox id: issue 16, point 7)."""
        c = mailbox_counts.c
        async with self.db.begin() as conn:
            await insert_or_ignore(conn, mailbox_counts, {"day": day})
            await conn.execute(update(mailbox_counts).where(c.day == day)
                               .values({column: c[column] + 1}))

    async def get(self, mailbox_id: str) -> Mailbox | None:
        """One indexed lookup by primary key, whether or not the mailbox exists."""
        async with self.db.connect() as conn:
            row = (await conn.execute(select(mailboxes).where(
                mailboxes.c.id == mailbox_id))).first()
        return None if row is None else _mailbox(row)

    async def touch(self, mailbox_id: str, now: float | None = None) -> None:
        day = day_of(time.time() if now is None else now)
        async with self.db.begin() as conn:
            await conn.execute(update(mailboxes).where(mailboxes.c.id == mailbox_id,
                                                       mailboxes.c.last_active_day != day)
                               .values(last_active_day=day))

    async def assign(self, mailbox_id: str, username: str | None,
                     only_if_unassigned: bool = False) -> bool:
        query = update(mailboxes).where(mailboxes.c.id == mailbox_id)
        if only_if_unassigned:
            query = query.where(or_(mailboxes.c.assigned.is_(None),
                                    mailboxes.c.assigned == username))
        async with self.db.begin() as conn:
            cur = await conn.execute(query.values(assigned=username))
        return cur.rowcount == 1

    async def add_message(self, mailbox_id: str, envelope: dict[str, Any], kind: str,
                          max_messages: int, now: float | None = None
                          ) -> tuple[int, int, bool] | None:
        """Store a sealed message: (seq, ts, stored now). A retry of the same id answers
        its first seq; None when the mailbox is full."""
        now = time.time() if now is None else now
        ts = int(now) // 60 * 60
        m = mailbox_messages.c
        async with self.db.begin() as conn:
            old = (await conn.execute(select(m.seq, m.ts).where(
                m.mailbox_id == mailbox_id, m.msg_id == envelope["id"]))).first()
            if old is not None:
                return old.seq, old.ts, False
            count = (await conn.execute(select(mailboxes.c.messages).where(
                mailboxes.c.id == mailbox_id))).scalar_one()
            if count >= max_messages:
                return None
            seq = count + 1
            await conn.execute(mailbox_messages.insert().values(
                mailbox_id=mailbox_id, seq=seq, msg_id=envelope["id"], dir=envelope["dir"],
                kind=kind, ts=ts, iv=envelope["iv"], ct=envelope["ct"],
                entries=json.dumps(envelope["keys"], separators=(",", ":"))))
            await conn.execute(update(mailboxes).where(mailboxes.c.id == mailbox_id).values(
                messages=seq, last_active_day=day_of(now)))
        await self._count(day_of(now), envelope["dir"])
        return seq, ts, True

    async def messages(self, mailbox_id: str, after_seq: int = 0,
                       limit: int = PAGE) -> tuple[list[dict[str, Any]], bool]:
        m = mailbox_messages.c
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(mailbox_messages).where(
                m.mailbox_id == mailbox_id, m.seq > after_seq).order_by(m.seq)
                .limit(limit + 1))).all()
        return [_stored(r) for r in rows[:limit]], len(rows) > limit

    async def message(self, mailbox_id: str, seq: int) -> dict[str, Any] | None:
        m = mailbox_messages.c
        async with self.db.connect() as conn:
            row = (await conn.execute(select(mailbox_messages).where(
                m.mailbox_id == mailbox_id, m.seq == seq))).first()
        return None if row is None else _stored(row)

    async def message_ids(self, mailbox_id: str) -> set[str]:
        m = mailbox_messages.c
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(m.msg_id).where(m.mailbox_id == mailbox_id))).all()
        return {r.msg_id for r in rows}

    async def add_entries(self, mailbox_id: str, entries: list[dict[str, Any]],
                          drop_kids: set[str], assign_to: str) -> None:
        """Transfer: each entry joins its message (replacing one of the same kid), entries
        of `drop_kids` go, and the mailbox is assigned to `assign_to`, in one step."""
        m = mailbox_messages.c
        by_id = {e["id"]: e["entry"] for e in entries}
        async with self.db.begin() as conn:
            rows = (await conn.execute(select(m.seq, m.msg_id, m.entries).where(
                m.mailbox_id == mailbox_id))).all()
            for row in rows:
                keys = [k for k in json.loads(row.entries) if k["kid"] not in drop_kids]
                new = by_id.get(row.msg_id)
                if new is not None:
                    keys = [k for k in keys if k["kid"] != new["kid"]] + [new]
                await conn.execute(update(mailbox_messages).where(
                    m.mailbox_id == mailbox_id, m.seq == row.seq).values(
                    entries=json.dumps(keys, separators=(",", ":"))))
            await conn.execute(update(mailboxes).where(mailboxes.c.id == mailbox_id)
                               .values(assigned=assign_to))

    async def mark_read(self, mailbox_id: str, username: str, seq: int) -> None:
        r = mailbox_reads.c
        async with self.db.begin() as conn:
            await conn.execute(delete(mailbox_reads).where(
                r.mailbox_id == mailbox_id, r.username == username))
            await conn.execute(mailbox_reads.insert().values(
                mailbox_id=mailbox_id, username=username, read_seq=seq))

    async def listing(self, username: str, everyone: bool = False) -> list[dict[str, Any]]:
        """Mailboxes with a message: the account's own, then unassigned (every one for
        `everyone`, an admin's recovery view), each newest activity first."""
        mb, m, r = mailboxes.c, mailbox_messages.c, mailbox_reads.c
        # seq runs 1..messages without gaps, so the last message is seq = messages.
        query = (select(mb.id, mb.assigned, mb.created_day, mb.last_active_day, mb.messages,
                        m.ts, m.dir)
                 .join(mailbox_messages, and_(m.mailbox_id == mb.id, m.seq == mb.messages))
                 .where(mb.messages > 0))
        if not everyone:
            query = query.where(or_(mb.assigned == username, mb.assigned.is_(None)))
        unread_query = (select(m.mailbox_id, func.count().label("n"))
                        .select_from(mailbox_messages)
                        .outerjoin(mailbox_reads, and_(r.mailbox_id == m.mailbox_id,
                                                       r.username == username))
                        .where(m.dir == "v2c", m.seq > func.coalesce(r.read_seq, 0))
                        .group_by(m.mailbox_id))
        async with self.db.connect() as conn:
            rows = (await conn.execute(query)).all()
            unread = dict((await conn.execute(unread_query)).all())
            names = dict((await conn.execute(select(accounts.c.username,
                                                    accounts.c.display_name))).all())
        items = [{
            "mailbox_id": row.id, "mine": row.assigned == username,
            "assigned": row.assigned, "assigned_name": names.get(row.assigned),
            "unread": int(unread.get(row.id, 0)), "messages": row.messages, "last_ts": row.ts,
            "last_dir": row.dir, "created_day": row.created_day,
            "last_active_day": row.last_active_day,
        } for row in rows]
        items.sort(key=lambda i: (0 if i["mine"] else 1, -i["last_ts"]))
        return items

    # -- deletion ---------------------------------------------------------------------------

    async def delete(self, mailbox_ids: list[str]) -> int:
        """The mailboxes, their messages, read marks and case notes, in one transaction;
        SQLite then zeroes the pages (secure_delete) and truncates its log."""
        if not mailbox_ids:
            return 0
        async with self.db.begin() as conn:
            for table in (mailbox_notes, mailbox_reads, mailbox_messages):
                await conn.execute(delete(table).where(table.c.mailbox_id.in_(mailbox_ids)))
            cur = await conn.execute(delete(mailboxes).where(mailboxes.c.id.in_(mailbox_ids)))
        await checkpoint(self.db)
        return cur.rowcount

    async def idle_since(self, before_day: str) -> list[str]:
        async with self.db.connect() as conn:
            rows = (await conn.execute(select(mailboxes.c.id).where(
                mailboxes.c.last_active_day < before_day))).all()
        return [r.id for r in rows]

    # -- case notes -------------------------------------------------------------------------

    async def add_note(self, mailbox_id: str, author: str, nonce: bytes, ct: bytes,
                       now: float) -> int:
        async with self.db.begin() as conn:
            cur = await conn.execute(mailbox_notes.insert().values(
                mailbox_id=mailbox_id, author=author, created_at=now, nonce=nonce, ct=ct))
        return int(cur.inserted_primary_key[0])

    async def notes_of(self, mailbox_id: str, author: str) -> list[Any]:
        n = mailbox_notes.c
        async with self.db.connect() as conn:
            return list((await conn.execute(select(n.id, n.created_at, n.nonce, n.ct).where(
                n.mailbox_id == mailbox_id, n.author == author).order_by(n.id))).all())

    async def count_notes(self, mailbox_id: str, author: str) -> int:
        n = mailbox_notes.c
        async with self.db.connect() as conn:
            return (await conn.execute(select(func.count()).select_from(mailbox_notes).where(
                n.mailbox_id == mailbox_id, n.author == author))).scalar_one()
