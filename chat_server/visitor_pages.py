"""The visitor page: `GET /`, one document for the whole flow (DESIGN.md "The visitor page").

Rendered with its own Jinja2 environment per language (autoescape on, `jinja2.ext.i18n`
with the `visitor` gettext domain). The no-trace headers come from the server's
middleware; this module sets `Cache-Control: no-store` on its own response as well.
"""

from __future__ import annotations

import gettext
from pathlib import Path
from typing import Any

import jinja2
from aiohttp import web

from chat_server.i18n import get_translations
from chat_server.settings import Settings
from chat_server.visitor_texts import client_texts

TEMPLATES_DIR = Path(__file__).resolve().parent / "templates"
DOMAIN = "visitor"
# Optional questions whose answers are one vocabulary entry each (PROTOCOL.md section 4).
CHOICE_VOCABS = ("age_groups", "genders", "roles", "topics")


class VisitorPages:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._envs: dict[str, jinja2.Environment] = {}

    @property
    def languages(self) -> list[str]:
        return list(self.settings.get("site.languages") or ["sv"])

    def pick_lang(self, requested: str | None) -> str:
        if requested and requested in self.languages:
            return requested
        default = self.settings.get("site.default_lang") or "sv"
        return default if default in self.languages else self.languages[0]

    def environment(self, lang: str) -> jinja2.Environment:
        env = self._envs.get(lang)
        if env is None:
            env = jinja2.Environment(
                loader=jinja2.FileSystemLoader(TEMPLATES_DIR),
                autoescape=True,
                extensions=["jinja2.ext.i18n"],
                undefined=jinja2.StrictUndefined,
            )
            env.install_gettext_translations(get_translations(lang, DOMAIN), newstyle=True)
            self._envs[lang] = env
        return env

    def context(self, lang: str) -> dict[str, Any]:
        tr: gettext.NullTranslations = get_translations(lang, DOMAIN)
        vocab = self.settings.vocab
        languages = [
            {"id": e["id"], "name": e.get("name", e["id"]), "dir": e.get("dir", "ltr")}
            for e in vocab.get("languages", [])
        ]
        direction = next((e["dir"] for e in languages if e["id"] == lang), "ltr")
        choices = {
            name: [{"id": e["id"], "label": tr.gettext(e["label"])} for e in vocab.get(name, [])]
            for name in CHOICE_VOCABS
        }
        exit_url = self.settings.get("safety.exit_url") or "about:blank"
        config = {
            "lang": lang,
            "exit_url": exit_url,
            "max_text_chars": int(self.settings.get("chat.max_text_chars") or 2000),
            **client_texts(tr),
        }
        return {
            "lang": lang,
            "dir": direction,
            "title": self.settings.get("site.title") or "Samtal",
            "exit_url": exit_url,
            "languages": languages,
            "choices": choices,
            "config": config,
            "max_text_chars": config["max_text_chars"],
        }

    def render(self, lang: str) -> str:
        template = self.environment(lang).get_template("visitor.html")
        return template.render(self.context(lang))

    async def index(self, request: web.Request) -> web.Response:
        lang = self.pick_lang(request.query.get("lang"))
        response = web.Response(text=self.render(lang), content_type="text/html", charset="utf-8")
        response.headers["Cache-Control"] = "no-store"
        response.headers["Content-Language"] = lang
        return response


def setup_visitor_pages(app: web.Application, settings: Settings) -> None:
    """Registers `GET /`. `/static/` is served by the application factory."""
    pages = VisitorPages(settings)
    app.router.add_get("/", pages.index, name="visitor_page")
