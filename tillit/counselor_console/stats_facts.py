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

import aiosqlite

SCHEMA = """
CREATE TABLE IF NOT EXISTS stats_facts (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    day TEXT NOT NULL,
    lang TEXT,
    age_group TEXT,
    gender TEXT,
    role TEXT,
    sector TEXT,
    contact TEXT,
    child INTEGER NOT NULL DEFAULT 0,
    danger_now INTEGER NOT NULL DEFAULT 0,
    topics TEXT NOT NULL DEFAULT '[]',
    indicators TEXT NOT NULL DEFAULT '[]',
    decision TEXT,
    decision_to TEXT,
    referrals TEXT NOT NULL DEFAULT '[]',
    outcome TEXT,
    answered INTEGER NOT NULL DEFAULT 1,
    dropped INTEGER NOT NULL DEFAULT 0,
    wait_bucket TEXT,
    duration_bucket TEXT,
    wait_s INTEGER,
    helped TEXT,
    score INTEGER
);
CREATE INDEX IF NOT EXISTS stats_facts_day ON stats_facts (day);
"""

# Waiting and duration are kept as buckets for display, and waiting also in whole
# seconds, rounded to 10 s, for the median and 90th percentile.
WAIT_BUCKETS = ((60, "under_1m"), (300, "1_5m"), (900, "5_15m"), (1800, "15_30m"))
DURATION_BUCKETS = ((300, "under_5m"), (900, "5_15m"), (1800, "15_30m"), (3600, "30_60m"))
LIST_FIELDS = ("topics", "indicators", "referrals")
FIELDS = (
    "lang", "age_group", "gender", "role", "sector", "contact", "child", "danger_now",
    "topics", "indicators",
    "decision", "decision_to", "referrals", "outcome", "answered", "dropped",
    "wait_bucket", "duration_bucket", "wait_s", "helped", "score",
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


# Columns added after the first release: (name, SQL type), added to an older table.
ADDED_COLUMNS = (("sector", "TEXT"), ("contact", "TEXT"))


async def setup(conn: aiosqlite.Connection) -> None:
    await conn.executescript(SCHEMA)
    have = {row[1] for row in await conn.execute_fetchall("PRAGMA table_info(stats_facts)")}
    for name, kind in ADDED_COLUMNS:
        if name not in have:
            await conn.execute(f"ALTER TABLE stats_facts ADD COLUMN {name} {kind}")
    await conn.commit()


async def record(conn: aiosqlite.Connection, fact: dict[str, Any], day: date | None = None) -> int:
    """Store a fact; unknown keys are refused so that nothing identifying slips in."""
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
    if row["wait_s"] is not None:
        row["wait_s"] = int(round(row["wait_s"] / 10.0) * 10)
    row["day"] = (day or date.today()).isoformat()
    columns = ", ".join(row)
    cur = await conn.execute(
        f"INSERT INTO stats_facts ({columns}) VALUES ({', '.join('?' * len(row))})",
        tuple(row.values()),
    )
    await conn.commit()
    return int(cur.lastrowid or 0)


async def attach_feedback(
    conn: aiosqlite.Connection, fact_id: int, helped: str | None, score: int | None
) -> None:
    await conn.execute(
        "UPDATE stats_facts SET helped = ?, score = ? WHERE id = ?", (helped, score, fact_id)
    )
    await conn.commit()


async def facts_between(
    conn: aiosqlite.Connection, first: date, last: date
) -> list[dict[str, Any]]:
    rows = await conn.execute_fetchall(
        f"SELECT day, {', '.join(FIELDS)} FROM stats_facts WHERE day BETWEEN ? AND ?",
        (first.isoformat(), last.isoformat()),
    )
    out = []
    for row in rows:
        fact = dict(row)
        for name in LIST_FIELDS:
            fact[name] = json.loads(fact[name])
        out.append(fact)
    return out
