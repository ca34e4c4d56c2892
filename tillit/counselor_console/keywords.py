"""The console's keyword rule, in Python: which indicators a text suggests.

The console runs this rule in the browser (static/console.js, `suggestIndicators`) on
decrypted text, and nothing of it travels back. This twin exists so the rule — which is
data in config/indicators.toml — can be tested without a browser, and so both stay the
same rule: NFKC, lower case; the visitor's language and its base language ("sv" for
"sv-x-easy"), or sv and en when none is stated; an indicator's `exclude` phrases are cut
out of the text before its keywords are looked for anywhere in it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from typing import Any


def normalize(text: str) -> str:
    return unicodedata.normalize("NFKC", text or "").lower()


def keyword_langs(lang: str | None) -> list[str]:
    """The keyword lists used for a visitor's language."""
    if not lang:
        return ["sv", "en"]
    base = lang.split("-", 1)[0]
    return [lang] if base == lang else [lang, base]


def suggest(indicators: Iterable[dict[str, Any]], text: str, lang: str | None) -> list[str]:
    """Ids of the indicators whose keywords occur in `text`, in config order."""
    hay = normalize(text)
    if not hay:
        return []
    langs = keyword_langs(lang)
    hits = []
    for ind in indicators:
        own = hay
        for code in langs:
            for phrase in (ind.get("exclude") or {}).get(code, []):
                if phrase:
                    own = own.replace(normalize(phrase), " ")
        words = [w for code in langs for w in (ind.get("keywords") or {}).get(code, [])]
        if any(w and normalize(w) in own for w in words):
            hits.append(ind["id"])
    return hits
