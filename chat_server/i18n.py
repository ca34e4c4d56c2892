"""Gettext catalogues from config/locales/, read with Babel and compiled in memory.

Catalogues are plain `.po` files so that an operator or translator can edit them
without a build step; `<lang>/LC_MESSAGES/<domain>.po`, one domain per face
(`visitor`, `console`).
"""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from pathlib import Path

from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from chat_server.settings import CONFIG_DIR

LOCALES_DIR = CONFIG_DIR / "locales"


def catalogue_path(lang: str, domain: str) -> Path:
    return LOCALES_DIR / lang / "LC_MESSAGES" / f"{domain}.po"


@lru_cache(maxsize=128)
def get_translations(lang: str, domain: str) -> gettext.NullTranslations:
    """Translations for `lang`; msgids (English) when no catalogue exists."""
    path = catalogue_path(lang, domain)
    if not path.is_file():
        return gettext.NullTranslations()
    with open(path, "rb") as fh:
        catalog = read_po(fh, locale=lang.replace("-", "_"), domain=domain)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def available_languages(domain: str) -> list[str]:
    if not LOCALES_DIR.is_dir():
        return []
    return sorted(p.name for p in LOCALES_DIR.iterdir() if catalogue_path(p.name, domain).is_file())
