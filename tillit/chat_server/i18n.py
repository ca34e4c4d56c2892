"""Gettext catalogues from config/locales/ (or the operator's folder), read with
Babel and compiled in memory.

Catalogues are plain `.po` files so that an operator or translator can edit them
without a build step; `<lang>/LC_MESSAGES/<domain>.po`, one domain per face
(`visitor`, `console`).
"""

from __future__ import annotations

import gettext
import io
from functools import lru_cache
from pathlib import Path

from babel import Locale, UnknownLocaleError
from babel.messages.mofile import write_mo
from babel.messages.pofile import read_po

from tillit.chat_server.config_files import config_path, locale_names

# Language ids that Babel's CLDR data does not know, and the locale whose data (day
# names, number rules) fits them best. Dari is the Persian of Afghanistan; easy-read
# Swedish is Swedish in simpler words; CLDR files Kurmanji (`kmr`) under `ku`, which
# newer Babel finds through CLDR's alias table and older releases may not. The
# catalogue's own Plural-Forms header rules the plurals either way.
LOCALE_ALIASES = {"prs": "fa_AF", "sv-x-easy": "sv", "kmr": "ku"}


def babel_locale(lang: str) -> Locale:
    """A Babel locale for a page language id; falls back through aliases and the base language.

    `Locale.parse` refuses codes outside CLDR (`prs`) and private-use tags (`sv-x-easy`);
    those must still get a catalogue, so they borrow the nearest locale's data.
    """
    for candidate in (LOCALE_ALIASES.get(lang), lang.replace("-", "_"), lang.split("-")[0]):
        if not candidate:
            continue
        try:
            return Locale.parse(candidate)
        except (UnknownLocaleError, ValueError):
            continue
    return Locale.parse("en")


def catalogue_path(lang: str, domain: str) -> Path:
    return config_path(f"locales/{lang}/LC_MESSAGES/{domain}.po")


@lru_cache(maxsize=128)
def get_translations(lang: str, domain: str) -> gettext.NullTranslations:
    """Translations for `lang`; msgids (English) when no catalogue exists."""
    path = catalogue_path(lang, domain)
    if not path.is_file():
        return gettext.NullTranslations()
    with open(path, "rb") as fh:
        catalog = read_po(fh, locale=babel_locale(lang), domain=domain)
    buf = io.BytesIO()
    write_mo(buf, catalog, use_fuzzy=False)
    buf.seek(0)
    return gettext.GNUTranslations(buf)


def available_languages(domain: str) -> list[str]:
    return sorted(name for name in locale_names() if catalogue_path(name, domain).is_file())
