"""The visitor page: `GET /`, one document for the whole flow (README.md "The visitor page").

Rendered with tillit.chat_server.templating's strict Jinja2 environment per language (autoescape,
`jinja2.ext.i18n` with the `visitor` gettext domain). The no-trace headers come from the server's
middleware; this module sets `Cache-Control: no-store` on its own response as well.
"""

from __future__ import annotations

import gettext
import re
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web
from markupsafe import Markup

from tillit.chat_server import templating
from tillit.chat_server.exit_route import EXIT_PATH
from tillit.chat_server.i18n import get_translations
from tillit.chat_server.settings import STATIC_DIR, Settings
from tillit.chat_server.visitor_help import help_context
from tillit.chat_server.visitor_texts import client_texts, mailbox_texts

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DOMAIN = "visitor"
# Optional questions whose answers are one vocabulary entry each (docs/protocol.md section 4).
CHOICE_VOCABS = ("age_groups", "genders", "roles", "topics", "sectors", "contact")
SYMBOLS_FILE = STATIC_DIR / "feelings" / "symbols.svg"
# Indentation at the start of a template line: the browser ignores it (the page has no
# <pre>, and its one <textarea> is empty), so it is not sent (page weight, issue 13).
INDENT = re.compile(r"\n[ \t]+")
# The mailbox screens, fetched by visitor/mailbox.js when the visitor first needs them.
MAILBOX_VIEW_PATH = "/mailbox-view"


@lru_cache(maxsize=1)
def inline_symbols() -> Markup:
    """symbols.svg as a hidden sprite inside the page, so that `<use href="#i-chat">` needs
    no request of its own. Chromium fetched the file once more for a `<use>` parsed after
    the first response had finished (`no-store` keeps it out of the memory cache): up to
    three fetches of 4 kB on a slow phone line."""
    text = SYMBOLS_FILE.read_text(encoding="utf-8")
    text = re.sub(r"<!--.*?-->\n?", "", text, flags=re.S)
    text = text.replace(
        '<svg xmlns="http://www.w3.org/2000/svg">',
        '<svg class="sprite" width="0" height="0" aria-hidden="true" focusable="false">',
        1,
    )
    return Markup(text.strip())


def language_words(page_languages: list[dict[str, Any]], lang: str) -> list[dict[str, str]]:
    """The word "Language" in every page language (each catalogue's own msgstr), the
    current one first, each word once: the collapsed switch says what it is to a visitor
    who does not read the current language."""
    words: list[dict[str, str]] = []
    seen: set[str] = set()
    ordered = sorted(page_languages, key=lambda e: e["id"] != lang)
    for e in ordered:
        word = get_translations(e["id"], DOMAIN).gettext("Language")
        if word not in seen:
            seen.add(word)
            words.append({"id": e["id"], "dir": e["dir"], "word": word})
    return words


def visitor_path(settings: Settings) -> str:
    """`site.visitor_path`, checked: an absolute path on this site (default `/`)."""
    path = settings.site.visitor_path
    if not path.startswith("/") or path.startswith("//") or "?" in path or "#" in path:
        raise ValueError(f"site.visitor_path must be a path like '/' or '/hej', not {path!r}")
    return path


class VisitorPages:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    @property
    def languages(self) -> list[str]:
        return list(self.settings.site.languages)

    def pick_lang(self, requested: str | None) -> str:
        if requested and requested in self.languages:
            return requested
        default = self.settings.site.default_lang
        return default if default in self.languages else self.languages[0]

    def environment(self, lang: str) -> jinja2.Environment:
        env = templating.environment(str(TEMPLATES_DIR), lang, DOMAIN, strict=True)
        # The data island carries the page's texts: as UTF-8 (still escaped for HTML by
        # `tojson`), not as \uXXXX, which made a Sorani page 3.7 kB heavier.
        env.policies["json.dumps_kwargs"] = {"sort_keys": True, "ensure_ascii": False}
        return env

    def context(self, lang: str) -> dict[str, Any]:
        tr: gettext.NullTranslations = get_translations(lang, DOMAIN)
        vocab = self.settings.vocab
        languages = [
            {"id": e["id"], "name": e.get("name", e["id"]), "dir": e.get("dir", "ltr"),
             "easy_read": bool(e.get("easy_read"))}
            for e in vocab.get("languages", [])
        ]
        direction = next((e["dir"] for e in languages if e["id"] == lang), "ltr")
        # The in-page language switch offers the shipped page languages, in vocabulary order.
        page_languages = [e for e in languages if e["id"] in self.languages]
        current_name = next((e["name"] for e in languages if e["id"] == lang), lang)
        easy_read = any(e["easy_read"] for e in languages if e["id"] == lang)
        extras = help_context(self.settings, lang, tr)
        choices = {
            name: [{"id": e["id"], "label": tr.gettext(e["label"])} for e in vocab.get(name, [])]
            for name in CHOICE_VOCABS
        }
        # An emptied exit_url still leaves the page: for a blank one.
        exit_url = self.settings.safety.exit_url or "about:blank"
        config = {
            "lang": lang,
            "exit_url": exit_url,
            "exit_endpoint": EXIT_PATH,
            "max_text_chars": self.settings.chat.max_text_chars,
            "open_now": extras["hours"]["open_now"],
            **client_texts(tr),
        }
        return {
            "lang": lang,
            "dir": direction,
            "title": self.settings.site.title,
            "favicon": self.settings.site.favicon,
            "exit_url": exit_url,
            "languages": languages,
            "page_languages": page_languages,
            "current_language_name": current_name,
            "language_words": language_words(page_languages, lang),
            "symbols": inline_symbols(),
            "easy_read": easy_read,
            **extras,
            "choices": choices,
            "config": config,
            "max_text_chars": config["max_text_chars"],
        }

    def render(self, lang: str) -> str:
        template = self.environment(lang).get_template("visitor.html")
        return INDENT.sub("\n", template.render(self.context(lang)))

    def render_mailbox(self, lang: str) -> str:
        """The mailbox screens (E12) as an HTML fragment for visitor/mailbox.js."""
        template = self.environment(lang).get_template("visitor_mailbox.html")
        context = {"max_text_chars": self.settings.chat.max_text_chars,
                   **mailbox_texts(get_translations(lang, DOMAIN))}
        return INDENT.sub("\n", template.render(context))

    async def mailbox_view(self, request: web.Request) -> web.Response:
        lang = self.pick_lang(request.query.get("lang"))
        response = web.Response(text=self.render_mailbox(lang), content_type="text/html",
                                charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = lang
        return response

    async def index(self, request: web.Request) -> web.Response:
        lang = self.pick_lang(request.query.get("lang"))
        response = web.Response(text=self.render(lang), content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = lang
        return response


def setup_visitor_pages(app: web.Application, settings: Settings) -> None:
    """Registers the page at `site.visitor_path`. `/static/` is served by the app factory."""
    pages = VisitorPages(settings)
    app.router.add_get(visitor_path(settings), pages.index, name="visitor_page")
    app.router.add_get(MAILBOX_VIEW_PATH, pages.mailbox_view, name="visitor_mailbox_view")
