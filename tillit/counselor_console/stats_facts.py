"""One statistics fact per chat: categories only, the day and no finer, no chat id.

A fact is written when a chat is closed (or leaves the queue unanswered) and cannot
be joined with the audit log: it carries no id of the chat, no counselor and no time
of day. The visitor's feedback, which may come after the close, is attached through
an in-memory handle that is forgotten when the feedback window closes.
"""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.durable.schema import mailbox_counts, stats_facts
from tillit.durable.upsert import insert_or_ignore

# Waiting and duration are kept as buckets for display, and waiting also in whole
# seconds, rounded to 10 s, for the median and 90th percentile.
WAIT_BUCKETS = ((60, "under_1m"), (300, "1_5m"), (900, "5_15m"), (1800, "15_30m"))
DURATION_BUCKETS = ((300, "under_5m"), (900, "5_15m"), (1800, "15_30m"), (3600, "30_60m"))
LIST_FIELDS = ("topics", "indicators", "referrals")
FIELDS = (
    "lang", "age_group", "gender", "role", "sector", "contact", "child", "danger_now",
    "topics", "indicators",
    "decision", "decision_to", "referrals", "outcome", "answered", "dropped",
    "wait_bucket", "duration_bucket", "wait_s", "helped", "score", "returning_contact",
)


def bucket(seconds: float | None, buckets: tuple[tuple[int, str], ...], last: str) -> str | None:
    if seconds is None:
        return None
    for limit, name in buckets:
        if seconds < limit:
            return name
    return last


def wait_bucket(seconds: float | None) -> str | None:
    return bucket(seconds, WAIT_BUCKETS, "over_30m")


def duration_bucket(seconds: float | None) -> str | None:
    return bucket(seconds, DURATION_BUCKETS, "over_60m")


async def record(db: AsyncEngine, fact: dict[str, Any], day: date | None = None,
                 key: str | None = None) -> int:
    """Store a fact; unknown keys are refused so that nothing identifying slips in.

    `key` (the outbox's idempotency key, random): a fact already written with it is
    not written again (0 is returned then)."""
    unknown = set(fact) - set(FIELDS)
    if unknown:
        raise ValueError(f"not a statistics field: {sorted(unknown)}")
    row = {k: fact.get(k) for k in FIELDS}
    for name in LIST_FIELDS:
        row[name] = json.dumps(sorted(set(row[name] or [])))
    row["child"] = int(bool(row["child"]))
    row["danger_now"] = int(bool(row["danger_now"]))
    row["answered"] = int(row["answered"] if row["answered"] is not None else 1)
    row["dropped"] = int(bool(row["dropped"]))
    row["returning_contact"] = int(bool(row["returning_contact"]))
    if row["wait_s"] is not None:
        row["wait_s"] = int(round(row["wait_s"] / 10.0) * 10)
    row["day"] = (day or date.today()).isoformat()
    async with db.begin() as conn:
        if key is not None:
            row["outbox_key"] = key
            if not await insert_or_ignore(conn, stats_facts, row):
                return 0
            found = await conn.execute(select(stats_facts.c.id)
                                       .where(stats_facts.c.outbox_key == key))
            return int(found.scalar_one())
        cur = await conn.execute(stats_facts.insert().values(row))
    return int(cur.inserted_primary_key[0])


async def attach_feedback(
    db: AsyncEngine, fact: int | str, helped: str | None, score: int | None
) -> None:
    """Set the feedback of a fact named by its id, or by its outbox key (a str)."""
    t = stats_facts.c
    which = t.outbox_key == fact if isinstance(fact, str) else t.id == fact
    async with db.begin() as conn:
        await conn.execute(update(stats_facts).where(which).values(helped=helped, score=score))


async def facts_between(
    db: AsyncEngine, first: date, last: date
) -> list[dict[str, Any]]:
    columns = [stats_facts.c.day, *(stats_facts.c[name] for name in FIELDS)]
    async with db.connect() as conn:
        rows = (await conn.execute(select(*columns).where(
            stats_facts.c.day.between(first.isoformat(), last.isoformat())))).mappings().all()
    out = []
    for row in rows:
        fact = dict(row)
        for name in LIST_FIELDS:
            fact[name] = json.loads(fact[name])
        out.append(fact)
    return out


async def mailbox_counts_between(db: AsyncEngine, first: date, last: date) -> dict[str, int]:
    """Mailboxes created and messages each way in the period (chat_server/mailbox_store.py
    counts them per day, without any mailbox id)."""
    c = mailbox_counts.c
    async with db.connect() as conn:
        row = (await conn.execute(select(
            func.coalesce(func.sum(c.created), 0), func.coalesce(func.sum(c.v2c), 0),
            func.coalesce(func.sum(c.c2v), 0)).where(
            c.day.between(first.isoformat(), last.isoformat())))).one()
    return {"created": int(row[0]), "messages_v2c": int(row[1]), "messages_c2v": int(row[2])}
