"""The admin's audit log page: `GET /console/audit`, with filters (day range, action,
account) and paging by entry id. Admins only; entries are who did what and when, never
what anybody wrote (counselor_console/audit.py)."""

from __future__ import annotations

import json
import re
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.counselor_console.app_keys import DURABLE_DB
from tillit.counselor_console.guards import require_role
from tillit.counselor_console.periods import PeriodError, parse_period
from tillit.counselor_console.staff_pages import staff_page
from tillit.durable.schema import audit

ADMIN_ROLES = ("admin",)
AUDIT_PAGE = 100
NAME_RE = re.compile(r"^[\w.:-]{1,64}$")


async def query_audit(
    db: AsyncEngine,
    first: date,
    last: date,
    action: str | None = None,
    actor: str | None = None,
    before: int | None = None,
    limit: int = AUDIT_PAGE,
) -> list[dict[str, Any]]:
    """Audit entries of a day range (UTC), newest first, with optional exact filters."""
    start = int(datetime.combine(first, datetime.min.time(), UTC).timestamp())
    end = int(datetime.combine(last + timedelta(days=1), datetime.min.time(), UTC).timestamp())
    shown = [c for c in audit.c if c.name != "outbox_key"]  # the outbox's, not the reader's
    query = select(*shown).where(audit.c.ts >= start, audit.c.ts < end)
    if action:
        query = query.where(audit.c.action == action)
    if actor:
        query = query.where(audit.c.actor == actor)
    if before:
        query = query.where(audit.c.id < before)
    async with db.connect() as conn:
        rows = await conn.execute(query.order_by(audit.c.id.desc()).limit(limit))
        return [dict(row) for row in rows.mappings()]


async def audit_page(request: web.Request) -> web.Response:
    session = await require_role(request, ADMIN_ROLES)
    db = request.app[DURABLE_DB]
    q = request.query
    async with db.connect() as conn:
        actions = list((await conn.execute(
            select(audit.c.action).distinct().order_by(audit.c.action))).scalars())
    action = q.get("action", "")
    actor = q.get("actor", "").strip()
    error = None
    try:
        first, last = parse_period(q)
        if action and not NAME_RE.match(action):
            raise PeriodError("unknown action")
        if actor and not NAME_RE.match(actor):
            raise PeriodError("an account name has letters, digits and . _ : - only")
        before_raw = q.get("before", "")
        before = int(before_raw) if before_raw.isdigit() else None
    except PeriodError as exc:
        error = str(exc)
    if error:
        default_first, default_last = parse_period({})
        return staff_page(request, "audit.html", session, status=400, error=error, entries=[],
                     actions=actions, action=action, actor=actor[:64],
                     first=q.get("from", default_first.isoformat())[:10],
                     last=q.get("to", default_last.isoformat())[:10], older=None)
    rows = await query_audit(db, first, last, action or None, actor or None, before)
    entries = [{
        "id": r["id"],
        "when": datetime.fromtimestamp(r["ts"], UTC).strftime("%Y-%m-%d %H:%M:%S"),
        "actor": r["actor"] or "", "action": r["action"], "target": r["target"] or "",
        "detail": _detail_text(r["detail"]),
    } for r in rows]
    older = None
    if len(rows) == AUDIT_PAGE:
        params = {"from": first.isoformat(), "to": last.isoformat(), "before": str(rows[-1]["id"])}
        if action:
            params["action"] = action
        if actor:
            params["actor"] = actor
        older = "/console/audit?" + urlencode(params)
    return staff_page(request, "audit.html", session, error=None, entries=entries, actions=actions,
                 action=action, actor=actor, first=first.isoformat(), last=last.isoformat(),
                 older=older)


def _detail_text(raw: str | None) -> str:
    """Audit details are categories and counts (audit.record); shown as `key=value`."""
    if not raw:
        return ""
    try:
        data = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(data.items()) if v is not None)


def setup_audit_routes(app: web.Application) -> None:
    app.router.add_get("/console/audit", audit_page)
