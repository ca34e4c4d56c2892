"""The audit log: who did what and when, never what anybody wrote."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.durable.schema import audit
from tillit.durable.upsert import insert_or_ignore


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
    row = {"ts": int(time.time()) if _ts is None else _ts, "actor": actor, "action": action,
           "target": target, "outbox_key": _key,
           "detail": json.dumps(detail, separators=(",", ":"), sort_keys=True) if detail else None}
    async with db.begin() as conn:
        if _key is None:
            await conn.execute(audit.insert().values(row))
        else:
            await insert_or_ignore(conn, audit, row)


_SHOWN = [c for c in audit.c if c.name != "outbox_key"]


async def entries(db: AsyncEngine, limit: int = 200) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(select(*_SHOWN).order_by(audit.c.id.desc()).limit(limit))
        return [dict(row) for row in rows.mappings()]
