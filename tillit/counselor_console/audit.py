"""The audit log: who did what and when, never what anybody wrote."""

from __future__ import annotations

import json
import time
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.durable.schema import audit


async def record(
    db: AsyncEngine,
    action: str,
    actor: str | None = None,
    target: str | None = None,
    **detail: Any,
) -> None:
    """Append one entry; `detail` holds categories (codes, counts), never free text."""
    async with db.begin() as conn:
        await conn.execute(audit.insert().values(
            ts=int(time.time()), actor=actor, action=action, target=target,
            detail=json.dumps(detail, separators=(",", ":"), sort_keys=True) if detail else None,
        ))


async def entries(db: AsyncEngine, limit: int = 200) -> list[dict[str, Any]]:
    async with db.connect() as conn:
        rows = await conn.execute(select(audit).order_by(audit.c.id.desc()).limit(limit))
        return [dict(row) for row in rows.mappings()]
