"""The audit log: who did what and when, never what anybody wrote."""

from __future__ import annotations

import json
import time
from typing import Any

import aiosqlite


async def record(
    conn: aiosqlite.Connection,
    action: str,
    actor: str | None = None,
    target: str | None = None,
    **detail: Any,
) -> None:
    """Append one entry; `detail` holds categories (codes, counts), never free text."""
    await conn.execute(
        "INSERT INTO audit (ts, actor, action, target, detail) VALUES (?, ?, ?, ?, ?)",
        (
            int(time.time()),
            actor,
            action,
            target,
            json.dumps(detail, separators=(",", ":"), sort_keys=True) if detail else None,
        ),
    )
    await conn.commit()


async def entries(conn: aiosqlite.Connection, limit: int = 200) -> list[dict[str, Any]]:
    rows = await conn.execute_fetchall(
        "SELECT id, ts, actor, action, target, detail FROM audit ORDER BY id DESC LIMIT ?",
        (limit,),
    )
    return [dict(row) for row in rows]
