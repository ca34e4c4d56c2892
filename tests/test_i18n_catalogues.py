"""The visitor catalogues: they parse, and every text the page uses has a translation."""

from __future__ import annotations

import json
import re
import tomllib
from html.parser import HTMLParser

import pytest
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from chat_server.i18n import catalogue_path, get_translations
from chat_server.settings import ROOT, VOCABULARIES, load_settings
from chat_server.visitor_pages import TEMPLATES_DIR, VisitorPages
from chat_server.visitor_texts import CLIENT_PLURALS, CLIENT_TEXTS, client_texts

LANGS = ("sv", "en")
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def used_msgids() -> set[str | tuple[str, str]]:
    ids: set[str | tuple[str, str]] = set()
    with open(TEMPLATES_DIR / "visitor.html", "rb") as fh:
        for _line, _func, message, _comments in babel_extract(
            fh, ("_", "gettext", "ngettext"), [], {}
        ):
            ids.add(message)
    ids.update(CLIENT_TEXTS.values())
    ids.update(CLIENT_PLURALS.values())
    with open(VOCABULARIES, "rb") as fh:
        vocab = tomllib.load(fh)
    for name in ("age_groups", "genders", "roles", "topics"):
        ids.update(entry["label"] for entry in vocab[name])
    return ids


def load(lang: str):
    with open(catalogue_path(lang, "visitor"), "rb") as fh:
        return read_po(fh, locale=lang, domain="visitor", abort_invalid=True)


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_parses_with_a_proper_header(lang: str) -> None:
    catalog = load(lang)
    assert not catalog.fuzzy
    assert str(catalog.locale) == lang
    assert catalog.plural_forms == "nplurals=2; plural=(n != 1);"
    assert "native speaker" in catalog.header_comment


@pytest.mark.parametrize("lang", LANGS)
def test_every_used_msgid_is_translated(lang: str) -> None:
    catalog = load(lang)
    missing = []
    for msgid in used_msgids():
        key = msgid[0] if isinstance(msgid, tuple) else msgid
        message = catalog.get(key)
        strings = message.string if message else None
        if isinstance(strings, str):
            strings = (strings,)
        if not message or message.fuzzy or not strings or not all(strings):
            missing.append(key)
            continue
        if isinstance(msgid, tuple):
            assert message.id == msgid, f"{lang}: plural msgid differs for {key!r}"
            assert len(strings) == 2, f"{lang}: {key!r} needs two plural forms"
        wanted = set(PLACEHOLDER.findall(key))
        for text in strings:
            assert set(PLACEHOLDER.findall(text)) == wanted, f"{lang}: placeholders in {text!r}"
    assert not missing, f"{lang} lacks translations for: {missing}"


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_has_no_stale_entries(lang: str) -> None:
    used = {m[0] if isinstance(m, tuple) else m for m in used_msgids()}
    stale = [
        m.id
        for m in load(lang)
        if m.id and (m.id[0] if isinstance(m.id, tuple) else m.id) not in used
    ]
    assert not stale


def test_swedish_is_served_and_plurals_follow_the_rule() -> None:
    tr = get_translations("sv", "visitor")
    assert tr.gettext("Leave this page quickly") == "Lämna sidan snabbt"
    data = client_texts(tr)
    forms = data["plurals"]["wait_minutes"]
    index = data["plural_index"]
    assert forms[index[1]].endswith("{n} minut.")
    assert forms[index[2]].endswith("{n} minuter.")
    assert forms[index[0]].endswith("{n} minuter.")
    assert data["texts"]["typing"] == "Rådgivaren skriver…"


def test_every_client_text_key_used_by_the_script_exists() -> None:
    source = (ROOT / "static" / "visitor.js").read_text(encoding="utf-8")
    singular = set(re.findall(r"\bt\(\s*\"(\w+)\"", source))
    plural = set(re.findall(r"\btn\(\s*\"(\w+)\"", source))
    assert singular and plural
    assert singular <= set(CLIENT_TEXTS), singular - set(CLIENT_TEXTS)
    assert plural <= set(CLIENT_PLURALS), plural - set(CLIENT_PLURALS)
    # ended_<by> is built from the chat:ended payload
    for by in ("visitor", "counselor", "timeout", "left_queue", "unknown"):
        assert f"ended_{by}" in CLIENT_TEXTS


class _PageCheck(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []
        self.ids: set[str] = set()
        self.island = ""
        self._in_island = False

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        if "id" in attrs:
            self.ids.add(attrs["id"])
        for name in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"<{tag} {name}=…>")
        if tag == "style":
            self.problems.append("<style>")
        if tag == "script":
            if attrs.get("type") == "application/json":
                self._in_island = True
            elif not attrs.get("src", "").startswith("/static/"):
                self.problems.append("inline or foreign <script>")
        if tag in ("link", "img") and re.match(
            r"(https?:)?//", attrs.get("href") or attrs.get("src") or ""
        ):
            self.problems.append(f"foreign <{tag}>")

    def handle_data(self, data):
        if self._in_island:
            self.island += data

    def handle_endtag(self, tag):
        if tag == "script":
            self._in_island = False


@pytest.mark.parametrize("lang", LANGS)
def test_page_renders_without_inline_code(lang: str) -> None:
    html = VisitorPages(load_settings(environ={})).render(lang)
    check = _PageCheck()
    check.feed(html)
    assert not check.problems
    assert f'<html lang="{lang}" dir="ltr">' in html
    config = json.loads(check.island)
    assert config["lang"] == lang and set(config["texts"]) == set(CLIENT_TEXTS)
    for element_id in (
        "quick-exit",
        "start-chat",
        "emergency",
        "queue-position",
        "est-wait",
        "safety-code",
        "messages",
        "message-input",
        "send",
        "end-chat",
        "chat-ended",
        "leave-queue",
    ):
        assert element_id in check.ids, element_id
