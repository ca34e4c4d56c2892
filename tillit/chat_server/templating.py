"""Jinja2 environments per template folder, language and gettext domain."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2

from tillit.chat_server.i18n import get_translations


@lru_cache(maxsize=64)
def environment(
    template_dir: str, lang: str, domain: str, strict: bool = False
) -> jinja2.Environment:
    """`strict`: a variable missing from the context is an error, not an empty string."""
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(template_dir),
        autoescape=jinja2.select_autoescape(["html", "xml"], default=True),
        extensions=["jinja2.ext.i18n"],
        trim_blocks=not strict,
        lstrip_blocks=not strict,
        undefined=jinja2.StrictUndefined if strict else jinja2.Undefined,
    )
    env.install_gettext_translations(get_translations(lang, domain), newstyle=True)  # type: ignore[attr-defined]
    return env


def render(template_dir: Path, name: str, lang: str, domain: str, **context: Any) -> str:
    env = environment(str(template_dir), lang, domain)
    return env.get_template(name).render(lang=lang, **context)


def translate(lang: str, domain: str, texts: dict[str, str]) -> dict[str, str]:
    """Client-side texts, translated for the page that carries them."""
    gettext = get_translations(lang, domain).gettext
    return {key: gettext(msgid) for key, msgid in texts.items()}
