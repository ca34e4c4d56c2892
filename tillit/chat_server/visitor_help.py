"""What the visitor page shows besides the chat: opening hours, referral resources, feelings.

All three are operator data in config/ (`[hours]` in default.toml, resources.toml,
feelings.toml) and are put into the visitor's language here, once per render, so the
template stays a plain layout and the script needs no data of its own.
"""

from __future__ import annotations

import datetime as dt
import gettext
import re
import tomllib
from functools import lru_cache
from typing import Any

from babel.dates import format_date, get_day_names

from tillit.chat_server.config_files import config_path
from tillit.chat_server.i18n import babel_locale
from tillit.chat_server.opening_hours import DAYS, OpeningHours
from tillit.chat_server.settings import Settings

# Resources for professionals stay in the console; the page shows what a young person
# or a worried relative can call themselves.
PAGE_AUDIENCES = ("all", "under_18", "young")

# How a line's hours read, in the reader's language (visitor catalogue).
CLOSED_NOW = "Closed now."
OPEN_HOURS = "Open: {hours}"
EVERY_DAY = "every day {hours}"
HOURS_MSGIDS = (CLOSED_NOW, OPEN_HOURS, EVERY_DAY)


@lru_cache(maxsize=4)
def _toml(name: str) -> dict[str, Any]:
    with open(config_path(f"{name}.toml"), "rb") as fh:
        return tomllib.load(fh)


def configured(entries: list[dict[str, Any]], settings: Settings | None) -> list[dict[str, Any]]:
    """Resources with the operator's settings applied: a `phone_setting` (the region's
    social services on-call) takes its number from settings; unset, the entry is left out
    (only a development setting may start without it). No settings: entries as they are."""
    out = []
    for r in entries:
        key = r.get("phone_setting")
        if key and settings is not None:
            shown = str(settings.value(key)).strip()
            if not shown:
                continue
            r = {**r, "phone": re.sub(r"[^\d+]", "", shown), "display_phone": shown}
        out.append(r)
    return out


def page_resources(settings: Settings | None = None) -> list[dict[str, Any]]:
    """Referral resources for the visitor page, in config order (msgids untranslated)."""
    return [r for r in configured(_toml("resources")["resources"], settings)
            if r.get("audience") in PAGE_AUDIENCES]


def resource_hours(entry: dict[str, Any]) -> OpeningHours | None:
    """A line's `hours` (resources.toml); a day not given is closed. None: no set hours."""
    hours = entry.get("hours")
    if not hours:
        return None
    return OpeningHours.from_settings({day: [] for day in DAYS} | hours)


def hours_text(hours: OpeningHours, lang: str, tr: gettext.NullTranslations) -> str:
    """`Open: every day 07:00–21:00` or `Open: Mon, Wed, Fri 09:00–12:00`, in `lang`."""
    days = get_day_names("abbreviated", context="format", locale=babel_locale(lang))
    groups: dict[tuple[str, ...], list[int]] = {}
    for i, ranges in hours.week():
        if ranges:
            groups.setdefault(tuple(ranges), []).append(i)
    if len(groups) == 1 and len(next(iter(groups.values()))) == 7:
        [ranges] = groups
        text = tr.gettext(EVERY_DAY).format(hours=", ".join(ranges))
    else:
        text = "; ".join(f"{', '.join(days[i] for i in idx)} {', '.join(ranges)}"
                         for ranges, idx in groups.items())
    return tr.gettext(OPEN_HOURS).format(hours=text)


def resource_status(
    entry: dict[str, Any], lang: str, tr: gettext.NullTranslations, now: dt.datetime | None
) -> tuple[str, bool]:
    """(hours text or "", closed now?) of one resource."""
    hours = resource_hours(entry)
    if hours is None:
        return "", False
    return hours_text(hours, lang, tr), not hours.is_open(now)


def feelings() -> list[dict[str, Any]]:
    return list(_toml("feelings")["feelings"])


def help_context(
    settings: Settings, lang: str, tr: gettext.NullTranslations, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Hours, resources and feelings for one render of the page in `lang`."""
    hours = OpeningHours.from_settings(settings.section("hours"))
    locale = babel_locale(lang)
    day_names = get_day_names("wide", context="stand-alone", locale=locale)
    week = [
        {"day": day_names[i], "ranges": ranges}
        for i, ranges in hours.week()
    ]
    closed = [format_date(d, "long", locale=locale) for d in hours.upcoming_closed_dates()]
    resources = []
    for r in page_resources(settings):
        hours_line, closed_now = resource_status(r, lang, tr, now)
        resources.append({
            "label": tr.gettext(r["label"]),
            "description": tr.gettext(r["description"]) if r.get("description") else "",
            "phone": r.get("phone", ""),
            "display_phone": r.get("display_phone") or r.get("phone", ""),
            "url": r.get("url", ""),
            "hours": hours_line,
            "closed_now": closed_now,
            "topics": list(r.get("topics") or []),
        })
    board = [
        {"id": f["id"], "label": tr.gettext(f["label"]), "symbol": f["symbol"]}
        for f in feelings()
    ]
    return {
        "hours": {
            "week": week,
            "always_open": hours.always_open,
            "closed_dates": closed,
            "open_now": hours.is_open(now),
        },
        "resources": resources,
        "feelings": board,
    }


def msgids() -> list[str]:
    """Every msgid these config files bring to the visitor catalogue."""
    ids = [f["label"] for f in feelings()]
    ids.extend(HOURS_MSGIDS)
    for r in page_resources():
        ids.append(r["label"])
        if r.get("description"):
            ids.append(r["description"])
    return ids
