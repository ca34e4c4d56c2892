"""The visitor catalogues: they parse, and every text the page uses has a translation."""

from __future__ import annotations

import json
import re
import tomllib
import unicodedata
from html.parser import HTMLParser

import pytest
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from tillit.chat_server import visitor_help
from tillit.chat_server.i18n import babel_locale, catalogue_path, get_translations
from tillit.chat_server.settings import CONFIG_DIR, STATIC_DIR, VOCABULARIES, load_settings
from tillit.chat_server.visitor_pages import TEMPLATES_DIR, VisitorPages
from tillit.chat_server.visitor_texts import (
    CLIENT_PLURALS,
    CLIENT_TEXTS,
    MAILBOX_EXPIRY,
    MAILBOX_TEXTS,
    client_texts,
)

SETTINGS = load_settings(environ={})
# Every language the page ships (`site.languages`), Swedish first.
LANGS = tuple(SETTINGS.site.languages)
RTL = {e["id"] for e in SETTINGS.vocab["languages"] if e.get("dir") == "rtl"}
# The gettext rule each language must carry (CLDR's categories, as gettext writes them).
PLURAL_FORMS = {
    "sv": "nplurals=2; plural=(n != 1);",
    "sv-x-easy": "nplurals=2; plural=(n != 1);",
    "en": "nplurals=2; plural=(n != 1);",
    "so": "nplurals=2; plural=(n != 1);",
    "fa": "nplurals=2; plural=(n > 1);",
    "prs": "nplurals=2; plural=(n > 1);",
    "ti": "nplurals=2; plural=(n > 1);",
    "ckb": "nplurals=2; plural=(n != 1);",
    "kmr": "nplurals=2; plural=(n != 1);",
    "tr": "nplurals=2; plural=(n != 1);",
    "ps": "nplurals=2; plural=(n != 1);",
    "am": "nplurals=2; plural=(n > 1);",
    "ar": "nplurals=6; plural=(n==0 ? 0 : n==1 ? 1 : n==2 ? 2 : n%100>=3 && n%100<=10 ? 3 "
    ": n%100>=11 ? 4 : 5);",
}
PLACEHOLDER = re.compile(r"\{(\w+)\}")


def used_msgids() -> set[str | tuple[str, str]]:
    ids: set[str | tuple[str, str]] = set()
    for template in ("visitor.html", "visitor_help.html", "visitor_mailbox.html"):
        with open(TEMPLATES_DIR / template, "rb") as fh:
            for _line, _func, message, _comments in babel_extract(
                fh, ("_", "gettext", "ngettext"), [], {}
            ):
                ids.add(message)
    ids.update(visitor_help.msgids())
    ids.update(CLIENT_TEXTS.values())
    ids.update(CLIENT_PLURALS.values())
    ids.update(MAILBOX_TEXTS.values())
    ids.add(MAILBOX_EXPIRY)
    with open(VOCABULARIES, "rb") as fh:
        vocab = tomllib.load(fh)
    for name in ("age_groups", "genders", "roles", "topics", "sectors", "contact"):
        ids.update(entry["label"] for entry in vocab[name])
    # Referral cards reach the visitor in their language, whichever one a counselor sends.
    with open(CONFIG_DIR / "resources.toml", "rb") as fh:
        for entry in tomllib.load(fh)["resources"]:
            ids.update(m for m in (entry["label"], entry.get("description")) if m)
    return ids


def load(lang: str):
    with open(catalogue_path(lang, "visitor"), "rb") as fh:
        return read_po(fh, locale=babel_locale(lang), domain="visitor", abort_invalid=True)


def test_every_shipped_language_has_a_catalogue_and_a_plural_rule() -> None:
    assert LANGS[0] == "sv"
    assert {"sv", "sv-x-easy", "en", "ar", "so", "fa", "prs", "ti"} <= set(LANGS)
    assert set(LANGS) <= set(PLURAL_FORMS), "add the new language's plural rule above"
    for lang in LANGS:
        assert catalogue_path(lang, "visitor").is_file(), lang


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_parses_with_a_proper_header(lang: str) -> None:
    catalog = load(lang)
    assert not catalog.fuzzy
    assert catalog.plural_forms == PLURAL_FORMS[lang]
    # Honest about review: every header says whether a native speaker has checked it.
    assert "native speaker" in catalog.header_comment


@pytest.mark.parametrize("lang", LANGS)
def test_catalogue_covers_every_swedish_msgid(lang: str) -> None:
    """Swedish is the reference: whatever it translates, every shipped language translates."""
    ours = load(lang)
    missing = [
        m.id for m in load("sv")
        if m.id and not (ours.get(m.id if isinstance(m.id, str) else m.id[0])
                         and all(ours.get(m.id if isinstance(m.id, str) else m.id[0]).string))
    ]
    assert not missing, f"{lang} lacks: {missing}"


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
            assert len(strings) == catalog.num_plurals, f"{lang}: {key!r} needs every form"
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
    source = "".join(p.read_text(encoding="utf-8") for p in (STATIC_DIR / "visitor").glob("*.js"))
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
    html = VisitorPages(SETTINGS).render(lang)
    check = _PageCheck()
    check.feed(html)
    assert not check.problems
    direction = "rtl" if lang in RTL else "ltr"
    assert f'<html lang="{lang}" dir="{direction}">' in html
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
        "lang-switch",
        "feelings-board",
        "view-closed",
    ):
        assert element_id in check.ids, element_id


def test_right_to_left_languages_are_marked_so() -> None:
    assert {"ar", "fa", "prs"} <= RTL
    for lang in ("ar", "fa", "prs"):
        assert f'<html lang="{lang}" dir="rtl">' in VisitorPages(SETTINGS).render(lang)


def test_language_switch_offers_every_language_in_its_own_script() -> None:
    html = VisitorPages(SETTINGS).render("ar")
    for lang, name in (("sv", "Svenska"), ("ti", "ትግርኛ"), ("fa", "فارسی"), ("so", "Soomaali")):
        assert f'href="?lang={lang}" lang="{lang}"' in html
        assert f">{name}</a>" in html
    assert 'href="?lang=ar" lang="ar" hreflang="ar" dir="rtl" aria-current="true"' in html


def test_easy_read_page_says_one_idea_per_line() -> None:
    html = VisitorPages(SETTINGS).render("sv-x-easy")
    assert '<body class="easy-read">' in html
    assert '<html lang="sv-x-easy" dir="ltr">' in html
    # Line breaks between ideas survive into the page (CSS white-space: pre-line).
    assert "Du säger inte ditt namn.\nDu behöver inget konto." in html
    assert '<body class="easy-read">' not in VisitorPages(SETTINGS).render("sv")


def test_feelings_and_resources_are_translated_on_the_page() -> None:
    html = VisitorPages(SETTINGS).render("so")
    assert "Waan baqayaa" in html  # "I am scared"
    assert 'href="tel:116111"' in html and "Qof kasta oo ka yar 18 sano." in html
    # Resources for professionals stay in the console.
    assert "010-223 57 60" not in html


def test_hours_use_the_visitor_s_day_names() -> None:
    week = {"mon": ["15:00-21:00"], "tue": [], "sat": ["10:00-12:00", "13:00-16:00"]}
    settings = load_settings(environ={}, overrides={"hours": week})
    ar = VisitorPages(settings).render("ar")
    assert "الاثنين" in ar and "15:00–21:00" in ar and "مغلق" in ar
    sv = VisitorPages(settings).render("sv")
    assert "måndag" in sv.lower() and "10:00–12:00, 13:00–16:00" in sv and "Stängt" in sv
    assert "ሰኑይ" in VisitorPages(settings).render("ti")  # Monday in Tigrinya


# The five priority languages added after the first eight (DOMAIN.md "Languages"), and
# the script each is written in: a catalogue in the wrong script is caught here.
NEW_LANGS = {"ckb": "ARABIC", "kmr": "LATIN", "tr": "LATIN", "ps": "ARABIC", "am": "ETHIOPIC"}
PHONE = re.compile(r"\d[\d -]*\d|\d")


def _script_share(text: str, script: str) -> float:
    letters = [c for c in PLACEHOLDER.sub("", text) if c.isalpha()]
    # Names kept as they are (Shift, JavaScript, BRIS, Kvinnofridslinjen…) are Latin.
    own = [c for c in letters if unicodedata.name(c, "").startswith(script)]
    return len(own) / len(letters) if letters else 1.0


def test_the_five_new_priority_languages_ship_in_their_own_script() -> None:
    assert set(NEW_LANGS) <= set(LANGS)
    assert {"ckb", "ps"} <= RTL and not {"kmr", "tr", "am"} & RTL
    for lang, script in NEW_LANGS.items():
        catalog = load(lang)
        assert catalog.locale_identifier and "native speaker" in catalog.header_comment
        texts = [s for m in catalog if m.id
                 for s in ((m.string,) if isinstance(m.string, str) else m.string)]
        assert len(texts) >= len([m for m in load("sv") if m.id])
        own = sum(_script_share(t, script) for t in texts) / len(texts)
        assert own > 0.8, f"{lang}: only {own:.0%} of the letters are {script}"


def test_phone_numbers_and_ages_are_kept_exactly_in_every_language() -> None:
    """112, 114 14, 020-50 50 50…: a visitor must be able to dial what the page says.

    Every number of two or more digits in the English text appears, spaces and dashes
    as they are, in each translation (other digit shapes such as ۱۱۲ read as 0–9).
    """
    def western(text: str) -> str:
        return "".join(str(unicodedata.digit(c, c)) if c.isdigit() else c for c in text)

    wrong = []
    for lang in LANGS:
        for m in load(lang):
            msgid = m.id[0] if isinstance(m.id, tuple) else m.id
            numbers = [n for n in PHONE.findall(msgid or "") if len(n) > 1]
            for text in (m.string,) if isinstance(m.string, str) else m.string:
                missing = [n for n in numbers if n not in western(text)]
                if missing:
                    wrong.append(f"{lang}: {missing} missing in {text!r}")
    assert not wrong, "\n".join(wrong)


def test_new_languages_get_their_own_day_names_and_direction() -> None:
    week = {"mon": ["15:00-21:00"]}
    settings = load_settings(environ={}, overrides={"hours": week})
    pages = VisitorPages(settings)
    for lang, monday, direction in (
        ("ckb", "دووشەممە", "rtl"), ("kmr", "duşem", "ltr"), ("tr", "Pazartesi", "ltr"),
        ("ps", "دوشنبه", "rtl"), ("am", "ሰኞ", "ltr"),
    ):
        html = pages.render(lang)
        assert f'<html lang="{lang}" dir="{direction}">' in html
        assert monday in html, lang
    switch = pages.render("sv")
    for lang, name in (("ckb", "کوردی (سۆرانی)"), ("kmr", "Kurmancî"), ("tr", "Türkçe"),
                       ("ps", "پښتو"), ("am", "አማርኛ")):
        direction = "rtl" if lang in ("ckb", "ps") else "ltr"
        assert f'href="?lang={lang}" lang="{lang}" hreflang="{lang}" dir="{direction}">' \
               f'{name}</a>' in switch
