"""Supervisor statistics.

`GET /console/stats?from=YYYY-MM-DD&to=YYYY-MM-DD` and `GET /console/stats.csv?...`:
supervisors and admins; the same suppressed figures (counselor_console/stats.py).
Counselors get 403. Templates never see a true count of a hidden cell:
they get display strings from `Report.rows()`.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable
from datetime import date
from typing import Any

from aiohttp import web
from sqlalchemy.ext.asyncio import AsyncEngine

from tillit.chat_server.app_keys import SETTINGS
from tillit.chat_server.config_files import config_path
from tillit.chat_server.i18n import get_translations
from tillit.chat_server.settings import Settings
from tillit.counselor_console import stats, stats_facts
from tillit.counselor_console.app_keys import DURABLE_DB
from tillit.counselor_console.guards import require_role
from tillit.counselor_console.periods import PeriodError, parse_period
from tillit.counselor_console.staff_pages import console_lang, staff_page
from tillit.counselor_console.svg_charts import bar_chart

STATS_ROLES = ("supervisor", "admin")


# ------------------------------------------------------------------------------ vocabularies


def _ids(entries: Any) -> list[str]:
    if not isinstance(entries, list):
        return []
    return [str(e["id"]) for e in entries if isinstance(e, dict) and "id" in e]


def _config_list(file: str, key: str) -> list[dict[str, Any]]:
    """A list of entries from a config/ TOML file; empty when the file is not there."""
    try:
        with open(config_path(file), "rb") as fh:
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
    "returning": "Came back with a return code",
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
    ("mailbox", "created"): "Mailboxes created",
    ("mailbox", "messages_v2c"): "Mailbox messages from visitors",
    ("mailbox", "messages_c2v"): "Mailbox answers from counselors",
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
    db: AsyncEngine, settings: Settings, first: date, last: date
) -> stats.Report:
    """The suppressed report of one period, as the page, the CSV and the CLI show it."""
    facts = await stats_facts.facts_between(db, first, last)
    mailbox_counts = await stats_facts.mailbox_counts_between(db, first, last)
    child = [g for g in settings.vocab.get("child_age_groups", stats.UNDER_18) if g != "unknown"]
    return stats.build_report(
        facts, first, last,
        min_cell=max(2, settings.stats.min_cell),
        min_base=settings.stats.min_base_pct,
        categories=categories(settings),
        under_18=child,
        region=region_of(settings),
        apart_outcomes=list(settings.stats.apart_outcomes),
        mailbox_counts=mailbox_counts,
    )


def region_of(settings: Settings) -> str:
    """`stats.region`: the county or region the operator set (empty when unset)."""
    return settings.stats.region.strip()


# ------------------------------------------------------------------------------ handlers


async def stats_page(request: web.Request) -> web.Response:
    session = await require_role(request, STATS_ROLES)
    settings = request.app[SETTINGS]
    lang = console_lang(request)
    labels = Labels(settings, lang)
    today = date.today()
    try:
        first, last = parse_period(request.query, today)
    except PeriodError as exc:
        default_first, default_last = parse_period({}, today)
        return staff_page(request, "stats.html", session, status=400, error=str(exc),
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
    return staff_page(request, "stats.html", session, error=None,
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


def setup_stats_routes(app: web.Application) -> None:
    app.router.add_get("/console/stats", stats_page)
    app.router.add_get("/console/stats.csv", stats_csv)
