"""Every text of the statistics, audit and operations pages is translated (sv, en)."""

from __future__ import annotations

import re

import pytest
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from tillit.chat_server.i18n import catalogue_path
from tillit.counselor_console import stats_routes
from tillit.counselor_console.staff_pages import TEMPLATES

PAGES = ("_staff_nav.html", "stats.html", "audit.html", "ops.html")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def used_msgids() -> set[str]:
    ids: set[str] = set()
    for name in PAGES:
        with open(TEMPLATES / name, "rb") as fh:
            ids.update(m for _, _, m, _ in babel_extract(fh, ("_", "gettext"), [], {}))
    ids.update(stats_routes.DIMENSION_TITLES.values())
    ids.update(stats_routes.VALUE_TEXTS.values())
    ids.update(stats_routes.FIGURE_TEXTS.values())
    ids.update({stats_routes.DECISION_SHARE_TEXT, "{s} s", "{m} min {s} s"})
    return ids


@pytest.mark.parametrize("lang", ["sv", "en"])
def test_staff_page_texts_are_translated(lang: str) -> None:
    with open(catalogue_path(lang, "console"), "rb") as fh:
        catalog = read_po(fh, locale=lang, domain="console")
    missing = []
    for msgid in sorted(used_msgids()):
        message = catalog.get(msgid)
        if not message or not message.string or message.fuzzy:
            missing.append(msgid)
            continue
        assert set(PLACEHOLDER.findall(message.string)) == set(PLACEHOLDER.findall(msgid))
    assert not missing, f"{lang} lacks: {missing}"


def test_every_dimension_has_a_title() -> None:
    from tillit.counselor_console.stats import DIMENSION_NAMES

    assert set(DIMENSION_NAMES) == set(stats_routes.DIMENSION_TITLES)
