"""What the visitor page shows besides the chat: opening hours, referral resources, feelings.

All three are operator data in config/ (`[hours]` in default.toml, resources.toml,
feelings.toml) and are put into the visitor's language here, once per render, so the
template stays a plain layout and the script needs no data of its own.
"""

from __future__ import annotations

import datetime as dt
import gettext
import tomllib
from functools import lru_cache
from typing import Any

from babel.dates import format_date, get_day_names

from chat_server.i18n import babel_locale
from chat_server.opening_hours import OpeningHours
from chat_server.settings import CONFIG_DIR, Settings

# Resources for professionals stay in the console; the page shows what a young person
# or a worried relative can call themselves.
PAGE_AUDIENCES = ("all", "under_18", "young")


@lru_cache(maxsize=4)
def _toml(name: str) -> dict[str, Any]:
    with open(CONFIG_DIR / f"{name}.toml", "rb") as fh:
        return tomllib.load(fh)


def page_resources() -> list[dict[str, Any]]:
    """Referral resources for the visitor page, in config order (msgids untranslated).

    A resource whose number is already listed is left out: the regional social services
    on-call ships with 112 as a placeholder and an operator's note as its description.
    """
    seen: set[str] = set()
    out = []
    for r in _toml("resources")["resources"]:
        phone = r.get("phone", "")
        if r.get("audience") not in PAGE_AUDIENCES or (phone and phone in seen):
            continue
        seen.add(phone)
        out.append(r)
    return out


def feelings() -> list[dict[str, Any]]:
    return list(_toml("feelings")["feelings"])


def help_context(
    settings: Settings, lang: str, tr: gettext.NullTranslations, now: dt.datetime | None = None
) -> dict[str, Any]:
    """Hours, resources and feelings for one render of the page in `lang`."""
    hours = OpeningHours.from_settings(settings.data.get("hours"))
    locale = babel_locale(lang)
    day_names = get_day_names("wide", context="stand-alone", locale=locale)
    week = [
        {"day": day_names[i], "ranges": ranges}
        for i, ranges in hours.week()
    ]
    closed = [format_date(d, "long", locale=locale) for d in hours.upcoming_closed_dates()]
    resources = [
        {
            "label": tr.gettext(r["label"]),
            "description": tr.gettext(r["description"]) if r.get("description") else "",
            "phone": r.get("phone", ""),
            "display_phone": r.get("display_phone") or r.get("phone", ""),
            "url": r.get("url", ""),
            "topics": list(r.get("topics") or []),
        }
        for r in page_resources()
    ]
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
    for r in page_resources():
        ids.append(r["label"])
        if r.get("description"):
            ids.append(r["description"])
    return ids
