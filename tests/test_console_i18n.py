"""The console catalogues: every text the console, the admin pages and the workflow
vocabularies show has a Swedish and an English translation with the same placeholders."""

from __future__ import annotations

import json
import re
from html.parser import HTMLParser

import pytest
from babel.messages.pofile import read_po
from jinja2.ext import babel_extract

from tillit.chat_server.i18n import catalogue_path
from tillit.chat_server.settings import STATIC_DIR, load_settings
from tillit.counselor_console.console_texts import CLIENT_TEXTS
from tillit.counselor_console.routes import TEMPLATES
from tillit.counselor_console.workflow_config import load_workflow

LANGS = ("sv", "en")
PLACEHOLDER = re.compile(r"\{(\w+)\}")
TEMPLATE_FILES = ("login.html", "console.html", "admin.html", "admin_secret.html",
                  "_staff_nav.html", "forbidden.html", "password.html")


def used_msgids() -> set[str]:
    ids: set[str] = set(CLIENT_TEXTS.values())
    for name in TEMPLATE_FILES:
        with open(TEMPLATES / name, "rb") as fh:
            for _line, _func, message, _comments in babel_extract(fh, ("_",), [], {}):
                ids.add(message)
    wf = load_workflow()
    for entries in (wf.indicators, wf.groups, wf.decisions, wf.receivers, wf.reasons,
                    wf.channels, wf.outcomes, wf.canned):
        ids.update(e["label"] for e in entries)
    ids.update(g["prompt"] for g in wf.groups if g.get("prompt"))
    ids.update(wf.anonymous_routine)
    return ids


def load(lang: str):
    with open(catalogue_path(lang, "console"), "rb") as fh:
        return read_po(fh, locale=lang, domain="console", abort_invalid=True)


@pytest.mark.parametrize("lang", LANGS)
def test_every_console_msgid_is_translated(lang: str) -> None:
    catalog = load(lang)
    missing = []
    for msgid in sorted(used_msgids()):
        message = catalog.get(msgid)
        if not message or message.fuzzy or not message.string:
            missing.append(msgid)
            continue
        assert set(PLACEHOLDER.findall(message.string)) == set(PLACEHOLDER.findall(msgid)), (
            lang, msgid)
    assert not missing, f"{lang} lacks: {missing}"


def test_every_client_text_key_used_by_console_js_exists() -> None:
    source = "".join(p.read_text(encoding="utf-8") for p in (STATIC_DIR / "console").glob("*.js"))
    used = set(re.findall(r"\bt\(\s*\"(\w+)\"", source))
    assert used and used <= set(CLIENT_TEXTS), used - set(CLIENT_TEXTS)


def test_the_config_carries_the_workflow_in_the_visitors_languages() -> None:
    from tillit.counselor_console.console_config import workflow_config

    settings = load_settings(environ={"TILLIT_RESOURCES_SOCIAL_SERVICES_NUMBER": "020-11 22 33"})
    config = workflow_config(settings, load_workflow(), "sv")
    json.dumps(config)  # goes into the JSON data island
    ids = {i["id"] for i in config["indicators"]}
    assert {"threat_to_kill", "marriage_plans", "phone_checked"} <= ids
    assert all(i["keywords"].get("sv") is not None for i in config["indicators"])
    assert config["inform_wording"]["sv"] and config["inform_wording"]["en"]
    assert [n["id"] for n in config["acute_numbers"]] == ["emergency", "police", "socialjour"]
    # The region's on-call number is the operator's setting, never the 112 placeholder.
    assert config["acute_numbers"][2]["phone"] == "020-11 22 33"
    bris = next(c["card"] for c in config["cards"]["sv"] if c["id"] == "bris")
    assert bris["type"] == "resource" and bris["phone"] == "116 111" and bris["title"]
    assert set(bris) <= {"type", "title", "phone", "url", "text"}


class _Check(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.problems: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, _ in attrs:
            if name == "style" or name.startswith("on"):
                self.problems.append(f"<{tag} {name}>")
        if tag == "style" or (tag == "script" and dict(attrs).get("type") != "application/json"
                              and not dict(attrs).get("src", "").startswith("/static/")):
            self.problems.append(tag)


@pytest.mark.parametrize("name", TEMPLATE_FILES)
def test_templates_have_no_inline_code(name: str) -> None:
    check = _Check()
    check.feed((TEMPLATES / name).read_text(encoding="utf-8"))
    assert not check.problems
