"""Supervisor statistics, the admin's audit log and the live operations panel.

* `GET /console/stats?from=YYYY-MM-DD&to=YYYY-MM-DD` and `GET /console/stats.csv?...`:
  supervisors and admins; the same suppressed figures (counselor_console/stats.py);
* `GET /console/audit`: admins; the audit log with filters (day range, action, actor);
* `GET /console/ops` and `GET /api/console/ops`: admins; counselors online, queue length,
  longest wait and chats in progress, polled by static/ops.js. Numbers only, no content.

Counselors get 403 on all of them. Templates never see a true count of a hidden cell:
they get display strings from `Report.rows()`.
"""

from __future__ import annotations

import re
import time
import tomllib
from collections.abc import Awaitable, Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiosqlite
from aiohttp import web

from tillit.chat_server.app_keys import CHATS, DURABLE_DB, SETTINGS
from tillit.chat_server.i18n import get_translations
from tillit.chat_server.model import ACTIVE
from tillit.chat_server.settings import CONFIG_DIR, Settings
from tillit.chat_server.templating import render
from tillit.counselor_console import sessions, stats, stats_facts
from tillit.counselor_console.guards import require_role
from tillit.counselor_console.routes import staff_context
from tillit.counselor_console.svg_charts import bar_chart

TEMPLATES = Path(__file__).resolve().parent / "templates"
STATS_ROLES = ("supervisor", "admin")
ADMIN_ROLES = ("admin",)
DEFAULT_DAYS = 30
MAX_DAYS = 366
AUDIT_PAGE = 100
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
NAME_RE = re.compile(r"^[\w.:-]{1,64}$")
# Counted as online by the operations panel (see CounselorNamespace.online_usernames).
STAFF_ONLINE = web.AppKey("staff_online", Callable[[], "Awaitable[set[str]]"])


class PeriodError(ValueError):
    """A period the user typed that cannot be used; the message says why."""


def parse_period(query: Mapping[str, str], today: date | None = None) -> tuple[date, date]:
    """`from` and `to` (both days included); default the 30 days up to `to`, or today."""
    today = today or date.today()
    last = _day(query.get("to"), "to") or today
    first = _day(query.get("from"), "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise PeriodError("'from' must be on or before 'to'")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError(f"a period can be at most {MAX_DAYS} days long")
    return first, last


def _day(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    if not DATE_RE.match(raw):
        raise PeriodError(f"'{name}' must be a date written YYYY-MM-DD")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise PeriodError(f"'{name}' is not a real date: {raw}") from None
    if not 2000 <= day.year <= 2100:
        raise PeriodError(f"'{name}' must be between the years 2000 and 2100")
    return day


# ------------------------------------------------------------------------------ vocabularies


def _ids(entries: Any) -> list[str]:
    if not isinstance(entries, list):
        return []
    return [str(e["id"]) for e in entries if isinstance(e, dict) and "id" in e]


def _config_list(file: str, key: str) -> list[dict[str, Any]]:
    """A list of entries from a config/ TOML file; empty when the file is not there."""
    try:
        with open(CONFIG_DIR / file, "rb") as fh:
            entries = tomllib.load(fh).get(key, [])
    except (OSError, tomllib.TOMLDecodeError):
        return []
    return [e for e in entries if isinstance(e, dict) and "id" in e]


# Where each dimension's categories live: a vocabulary in config/vocabularies.toml
# (`None` as file) or a list in another config/ file. Labels are gettext msgids.
SOURCES: dict[str, tuple[str | None, str]] = {
    "language": (None, "languages"),
    "age_group": (None, "age_groups"),
    "gender": (None, "genders"),
    "role": (None, "roles"),
    "sector": (None, "sectors"),
    "contact": (None, "contact"),
    "topics": (None, "topics"),
    "indicators": ("indicators.toml", "indicators"),
    "decision": ("reporting.toml", "decisions"),
    "decision_to": ("reporting.toml", "receivers"),
    "referrals": ("resources.toml", "resources"),
    "outcome": ("closing_form.toml", "outcomes"),
}


def _entries(settings: Settings, dimension: str) -> list[dict[str, Any]]:
    file, key = SOURCES[dimension]
    if file is None:
        return [e for e in settings.vocab.get(key) or [] if isinstance(e, dict) and "id" in e]
    return _config_list(file, key)


def categories(settings: Settings) -> dict[str, list[str]]:
    """Each dimension's categories in config order, so that zero cells are shown too."""
    return {dim: _ids(_entries(settings, dim)) for dim in SOURCES}


def _vocab_labels(settings: Settings) -> dict[tuple[str, str], str]:
    return {
        (dim, str(e["id"])): str(e.get("stats_label") or e.get("label") or e.get("name")
                                 or e["id"])
        for dim in SOURCES for e in _entries(settings, dim)
    }


# ------------------------------------------------------------------------------ texts

DIMENSION_TITLES = {
    "language": "Language",
    "age_group": "Age group",
    "gender": "Gender",
    "role": "Who is asking",
    "sector": "Sector of professionals",
    "contact": "First or repeat contact",
    "topics": "Topics",
    "indicators": "Concern indicators",
    "decision": "Reporting decision",
    "decision_to": "Decision sent to",
    "referrals": "Referrals given",
    "referred_on": "Referred on",
    "outcome": "Outcome",
    "wait_bucket": "Waiting time",
    "duration_bucket": "Length of the chat",
    "dropped": "Left with unread counselor messages",
    "helped": "Felt helped",
    "score": "Score (1 to 5)",
}
VALUE_TEXTS = {
    stats.NOT_STATED: "Not stated",
    stats.NONE: "None",
    stats.NOT_ANSWERED: "Did not answer",
    stats.ABANDONED: "Left the queue before an answer",
    "yes": "Yes",
    "no": "No",
    "partly": "Partly",
    "under_1m": "Under 1 minute",
    "1_5m": "1 to 5 minutes",
    "5_15m": "5 to 15 minutes",
    "15_30m": "15 to 30 minutes",
    "over_30m": "Over 30 minutes",
    "under_5m": "Under 5 minutes",
    "30_60m": "30 to 60 minutes",
    "over_60m": "Over 60 minutes",
}
FIGURE_TEXTS = {
    ("total", "chats"): "Chats",
    ("total", "abandoned"): "Left the queue before an answer",
    ("total", "dropped"): "Left with unread counselor messages",
    ("total", "professional"): "Consultations from professionals",
    ("total", "set_apart"): "Closed as test, prank or abusive (not in the other figures)",
    ("wait", "median_s"): "Median wait",
    ("wait", "p90_s"): "Wait that 9 in 10 chats stayed within",
    ("share_pct", "under_18"): "Under 18, share of all chats",
    ("share_pct", "reporting_decision"): "With a reporting decision, share of all chats",
    ("share_pct", "referred_on"): "Referred on, share of all chats",
    ("share_pct", "helped"): "Felt helped, share of those who answered",
}
DECISION_SHARE_TEXT = "Reporting decision \u201c{kind}\u201d, share of all chats"


class Labels:
    """Translated labels for dimensions, values and key figures in one language."""

    def __init__(self, settings: Settings, lang: str) -> None:
        self.console = get_translations(lang, "console").gettext
        self.visitor = get_translations(lang, "visitor").gettext
        self.vocab = _vocab_labels(settings)

    def dimension(self, name: str) -> str:
        return self.console(DIMENSION_TITLES.get(name, name))

    def value(self, dimension: str, value: str) -> str:
        if (dimension, value) in self.vocab:
            msgid = self.vocab[(dimension, value)]
            text = self.console(msgid)
            return self.visitor(msgid) if text == msgid else text
        if value in VALUE_TEXTS:
            return self.console(VALUE_TEXTS[value])
        return value

    def figure(self, dimension: str, value: str) -> str:
        if (dimension, value) in FIGURE_TEXTS:
            return self.console(FIGURE_TEXTS[(dimension, value)])
        if value.startswith("decision:"):
            kind = self.value("decision", value.split(":", 1)[1])
            return self.console(DECISION_SHARE_TEXT).format(kind=kind)
        return value


def format_seconds(display: str, gettext: Callable[[str], str]) -> str:
    if not display.isdigit():
        return display
    minutes, seconds = divmod(int(display), 60)
    if minutes == 0:
        return gettext("{s} s").format(s=seconds)
    return gettext("{m} min {s} s").format(m=minutes, s=seconds)


# ------------------------------------------------------------------------------ data


async def load_report(
    conn: aiosqlite.Connection, settings: Settings, first: date, last: date
) -> stats.Report:
    """The suppressed report of one period, as the page, the CSV and the CLI show it."""
    facts = await stats_facts.facts_between(conn, first, last)
    child = [g for g in settings.vocab.get("child_age_groups", stats.UNDER_18) if g != "unknown"]
    return stats.build_report(
        facts, first, last,
        min_cell=max(2, settings.stats.min_cell),
        min_base=settings.stats.min_base_pct,
        categories=categories(settings),
        under_18=child,
        region=region_of(settings),
        apart_outcomes=list(settings.stats.apart_outcomes),
    )


def region_of(settings: Settings) -> str:
    """`stats.region`: the county or region the operator set (empty when unset)."""
    return settings.stats.region.strip()


def _lang(request: web.Request) -> str:
    wanted = request.query.get("lang", "")
    return wanted if wanted in ("sv", "en") else request.app[SETTINGS].console.lang


def _page(request: web.Request, name: str, session: sessions.Session, status: int = 200,
          **ctx: Any) -> web.Response:
    html = render(TEMPLATES, name, _lang(request), "console",
                  site_title=request.app[SETTINGS].site.title,
                  **staff_context(request, session), **ctx)
    return web.Response(text=html, content_type="text/html", status=status)


# ------------------------------------------------------------------------------ handlers


async def stats_page(request: web.Request) -> web.Response:
    session = await require_role(request, STATS_ROLES)
    settings = request.app[SETTINGS]
    lang = _lang(request)
    labels = Labels(settings, lang)
    today = date.today()
    try:
        first, last = parse_period(request.query, today)
    except PeriodError as exc:
        default_first, default_last = parse_period({}, today)
        return _page(request, "stats.html", session, status=400, error=str(exc),
                     first=request.query.get("from", default_first.isoformat())[:10],
                     last=request.query.get("to", default_last.isoformat())[:10],
                     report=None, figures=[], sections=[])
    report = await load_report(request.app[DURABLE_DB], settings, first, last)
    gettext = labels.console
    figures = []
    for f in report.figures:
        if f.dimension == stats.REGION:
            continue  # shown in the heading (region_text)
        display = format_seconds(f.display, gettext) if f.dimension == "wait" else f.display
        if f.dimension == "share_pct" and display.isdigit():
            display = f"{display} %"
        figures.append({"label": labels.figure(f.dimension, f.value), "display": display})
    sections = []
    for bd in report.breakdowns:
        title = labels.dimension(bd.dimension)
        if bd.withheld:
            sections.append({"id": bd.dimension, "title": title, "withheld": True})
            continue
        rows = [(labels.value(bd.dimension, c.value), c.display(report.min_cell))
                for c in bd.cells]
        sections.append({
            "id": bd.dimension, "title": title, "withheld": False, "rows": rows,
            "multi": not bd.partition,
            "chart": bar_chart(rows, title, bd.dimension),
        })
    return _page(request, "stats.html", session, error=None,
                 first=first.isoformat(), last=last.isoformat(), report=report,
                 figures=figures, sections=sections, min_cell=report.min_cell,
                 min_base=report.min_base,
                 region_text=report.region)


async def stats_csv(request: web.Request) -> web.Response:
    await require_role(request, STATS_ROLES)
    try:
        first, last = parse_period(request.query)
    except PeriodError as exc:
        raise web.HTTPBadRequest(text=f"bad period: {exc}") from None
    report = await load_report(request.app[DURABLE_DB], request.app[SETTINGS], first, last)
    return web.Response(
        text=stats.to_csv(report), content_type="text/csv", charset="utf-8",
        headers={"Content-Disposition":
                 f'attachment; filename="tillit-stats-{first.isoformat()}-{last.isoformat()}.csv"'},
    )


async def query_audit(
    conn: aiosqlite.Connection,
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
    sql = "SELECT id, ts, actor, action, target, detail FROM audit WHERE ts >= ? AND ts < ?"
    args: list[Any] = [start, end]
    if action:
        sql += " AND action = ?"
        args.append(action)
    if actor:
        sql += " AND actor = ?"
        args.append(actor)
    if before:
        sql += " AND id < ?"
        args.append(before)
    sql += " ORDER BY id DESC LIMIT ?"
    args.append(limit)
    return [dict(row) for row in await conn.execute_fetchall(sql, args)]


async def audit_page(request: web.Request) -> web.Response:
    session = await require_role(request, ADMIN_ROLES)
    conn = request.app[DURABLE_DB]
    q = request.query
    actions = [r[0] for r in await conn.execute_fetchall(
        "SELECT DISTINCT action FROM audit ORDER BY action")]
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
        return _page(request, "audit.html", session, status=400, error=error, entries=[],
                     actions=actions, action=action, actor=actor[:64],
                     first=q.get("from", default_first.isoformat())[:10],
                     last=q.get("to", default_last.isoformat())[:10], older=None)
    rows = await query_audit(conn, first, last, action or None, actor or None, before)
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
    return _page(request, "audit.html", session, error=None, entries=entries, actions=actions,
                 action=action, actor=actor, first=first.isoformat(), last=last.isoformat(),
                 older=older)


def _detail_text(raw: str | None) -> str:
    """Audit details are categories and counts (audit.record); shown as `key=value`."""
    if not raw:
        return ""
    import json

    try:
        data = json.loads(raw)
    except ValueError:
        return ""
    if not isinstance(data, dict):
        return ""
    return ", ".join(f"{k}={v}" for k, v in sorted(data.items()) if v is not None)


async def operations(request: web.Request, now: float | None = None) -> dict[str, int]:
    """The live figures: how many, how long; never who or what."""
    now = time.time() if now is None else now
    chats = request.app[CHATS]
    queue = await chats.queue()
    return {
        "counselors_online": len(await request.app[STAFF_ONLINE]()),
        "queue_length": len(queue),
        "longest_wait_s": int(max((now - c.created_at for c in queue), default=0)),
        "chats_in_progress": sum(1 for c in await chats.all_chats() if c.state == ACTIVE),
    }


async def ops_page(request: web.Request) -> web.Response:
    session = await require_role(request, ADMIN_ROLES)
    return _page(request, "ops.html", session, ops=await operations(request))


async def ops_api(request: web.Request) -> web.Response:
    """Polled every few seconds: reads the session without renewing its idle time, so a
    panel left open on a screen still logs out after `console.session_idle_s`."""
    settings = request.app[SETTINGS]
    session = await sessions.lookup(
        request.app[DURABLE_DB],
        request.cookies.get(sessions.cookie_name(settings.server.development)),
        settings.console.session_max_age_s, settings.console.session_idle_s,
        touch=False,
    )
    if session is None:
        return web.json_response(
            {"error": {"code": "unauthorized", "message": "log in first"}}, status=401)
    if session.role not in ADMIN_ROLES:
        return web.json_response(
            {"error": {"code": "forbidden", "message": "admins only"}}, status=403)
    return web.json_response(await operations(request))


async def _setup_facts(app: web.Application) -> None:
    await stats_facts.setup(app[DURABLE_DB])


def setup_stats_routes(app: web.Application) -> None:
    app.router.add_get("/console/stats", stats_page)
    app.router.add_get("/console/stats.csv", stats_csv)
    app.router.add_get("/console/audit", audit_page)
    app.router.add_get("/console/ops", ops_page)
    app.router.add_get("/api/console/ops", ops_api)
    app.on_startup.append(_setup_facts)
