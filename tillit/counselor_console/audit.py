"""The audit log: who did what and when, never what anybody wrote."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.durable.schema import audit
from tillit.durable.upsert import insert_or_ignore, insert_statement


async def record(
    db: AsyncEngine,
    action: str,
    actor: str | None = None,
    target: str | None = None,
    _ts: int | None = None,
    _key: str | None = None,
    **detail: Any,
) -> None:
    """Append one entry; `detail` holds categories (codes, counts), never free text.

    `_key` (the outbox's idempotency key): an entry already written is not written again;
    `_ts`: when it happened, if written later."""
    row = audit_row(action, actor, target, _ts, _key, detail)
    async with db.begin() as conn:
        if _key is None:
            await conn.execute(audit.insert().values(row))
        else:
            await insert_or_ignore(conn, audit, row)


def audit_row(action: str, actor: str | None, target: str | None, ts: int | None,
              key: str | None, detail: dict[str, Any]) -> dict[str, Any]:
    """One entry as its table row (`record`'s, `record_rows`'s)."""
    return {"ts": int(time.time()) if ts is None else ts, "actor": actor, "action": action,
            "target": target, "outbox_key": key,
            "detail": json.dumps(detail, separators=(",", ":"), sort_keys=True) if detail else None}


async def record_rows(db: AsyncEngine, rows: list[dict[str, Any]]) -> None:
    """Append entries (`audit_row`s) in one transaction and one statement, in order; an
    entry whose outbox key is already there is not written again. A burst of accepts
    (one entry each) costs one commit, not one per entry."""
    async with db.begin() as conn:
        await conn.execute(insert_statement(conn, audit).on_conflict_do_nothing(), rows)


_SHOWN = [c for c in audit.c if c.name != "outbox_key"]


async def entries(db: AsyncEngine, limit: int = 200) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(select(*_SHOWN).order_by(audit.c.id.desc()).limit(limit))
        return [dict(row) for row in rows.mappings()]
