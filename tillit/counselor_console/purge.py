"""The retention job: notes older than `retention.notes_days`, dead sessions, audit
entries older than `retention.audit_days` and mailboxes idle for
`continuity.idle_days` go.

Run by the server every `retention.purge_every_s` and once by `tillit purge`. A run is
logged and audited with counts only, never with what was deleted.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.chat_server.mailbox_store import MailboxStore, day_of, day_plus
from tillit.chat_server.settings import Settings
from tillit.counselor_console import audit, sessions
from tillit.durable.engine import checkpoint
from tillit.durable.schema import audit as audit_rows
from tillit.durable.schema import notes

log = logging.getLogger(__name__)
DAY_S = 86_400


async def run_purge(
    db: AsyncEngine,
    notes_days: float,
    session_dead_after_s: float,
    actor: str = "purge-job",
    now: float | None = None,
    audit_days: float | None = None,
    mailbox_idle_days: int | None = None,
    mailbox_expiry: Callable[[float], Awaitable[int]] | None = None,
) -> dict[str, int]:
    """Delete what has outlived its retention; returns the counts, which are also audited.

    `audit_days`: audit entries older than this many days go too (every anonymous chat
    leaves a few, so the table must not grow for ever); None or 0 keeps them all.
    `mailbox_idle_days`: mailboxes neither opened nor written to for this many days go,
    with their messages and case notes (docs/protocol.md E12.11); `mailbox_expiry`, the
    server's, also tells their open sockets (chat_server/mailboxes.py `expire_idle`).
    """
    now = time.time() if now is None else now
    async with db.begin() as conn:
        cur = await conn.execute(delete(notes).where(notes.c.created_at < now - notes_days * DAY_S))
    notes_deleted = cur.rowcount
    sessions_deleted = await sessions.expire_all_older_than(db, now - session_dead_after_s)
    counts = {"notes": notes_deleted, "sessions": sessions_deleted}
    if audit_days:
        async with db.begin() as conn:
            cur = await conn.execute(delete(audit_rows).where(
                audit_rows.c.ts < int(now - audit_days * DAY_S)))
        counts["audit"] = cur.rowcount
    if mailbox_expiry is not None:
        counts["mailboxes"] = await mailbox_expiry(now)
    elif mailbox_idle_days:
        counts["mailboxes"] = await expire_mailboxes(db, mailbox_idle_days, now)
    await audit.record(db, "purge", actor=actor, **counts)
    if notes_deleted:  # SQLite: the zeroed pages leave no old copy in the write-ahead log
        await checkpoint(db)
    log.info("purge: %d notes, %d sessions, %d audit entries deleted",
             notes_deleted, sessions_deleted, counts.get("audit", 0))
    return counts


async def expire_mailboxes(db: AsyncEngine, idle_days: int, now: float) -> int:
    """Delete the mailboxes idle for `idle_days` (days counted from their last active
    day): rows zeroed by secure_delete, SQLite's log truncated (MailboxStore.delete)."""
    store = MailboxStore(db, [])
    return await store.delete(await store.idle_since(day_plus(day_of(now), -idle_days)))


async def run_forever(db: AsyncEngine, settings: Settings,
                      mailbox_expiry: Callable[[float], Awaitable[int]] | None = None) -> None:
    """The server's purge loop: once at start-up, then every `retention.purge_every_s`."""
    every = settings.retention.purge_every_s
    while True:
        try:
            await run_purge(db, settings.retention.notes_days,
                            settings.console.session_idle_s,
                            audit_days=settings.retention.audit_days,
                            mailbox_idle_days=settings.continuity.idle_days,
                            mailbox_expiry=mailbox_expiry)
        except Exception:
            log.exception("purge failed")
        await asyncio.sleep(every)
