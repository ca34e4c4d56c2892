"""Every shipped language renders with real glyphs in Debian's Chromium: no tofu boxes.

Two checks per language, against the real page and the real catalogue:
- every character the catalogue can put on the page, drawn on a canvas in the page's own
  font stack, differs from the missing-glyph box (.notdef) that Chromium draws for a
  character no installed font has;
- Chromium reports (CDP `CSS.getPlatformFontsForNode`) that the start page's texts are drawn
  with Noto Sans plus the Noto font of the language's script only: Arabic-script letters
  in Noto Sans Arabic, Ge'ez in Noto Sans Ethiopic. Without them in the CSS stack Chromium
  picked DejaVu Sans for Sorani and Pashto and borrowed single letters (ۍ) from Noto Kufi
  Arabic, two designs inside one word.
"""

from __future__ import annotations

import pytest
from babel.messages.pofile import read_po
from pages import new_page, shipped_languages

from tillit.chat_server.i18n import babel_locale, catalogue_path
from tillit.chat_server.settings import load_settings

pytestmark = pytest.mark.browser

SETTINGS = load_settings(environ={})
LANGS = shipped_languages()  # TILLIT_TEST_LANGS=ckb,ps narrows a run
RTL = {e["id"] for e in SETTINGS.vocab["languages"] if e.get("dir") == "rtl"}
ETHIOPIC = {"ti", "am"}
# Two unassigned code points: no font has them, so both draw as the .notdef box.
MISSING = ("\u0378", "\u0379")


def script_font(lang: str) -> str:
    if lang in RTL:
        return "Noto Sans Arabic"
    if lang in ETHIOPIC:
        return "Noto Sans Ethiopic"
    return "Noto Sans"


def catalogue_characters(lang: str) -> str:
    with open(catalogue_path(lang, "visitor"), "rb") as fh:
        catalog = read_po(fh, locale=babel_locale(lang), domain="visitor")
    chars: set[str] = set()
    for message in catalog:
        if not message.id:
            continue
        strings = (message.string,) if isinstance(message.string, str) else message.string
        for text in strings:
            chars.update(c for c in text if not c.isspace())
    return "".join(sorted(chars))


# Draws each character alone on a canvas in the body's font and compares the pixels with
# the .notdef box; returns the characters that look like the box.
TOFU_JS = """([chars, missing]) => {
  const font = getComputedStyle(document.body).font;
  const canvas = document.createElement("canvas");
  canvas.width = 64; canvas.height = 64;
  const ctx = canvas.getContext("2d", {willReadFrequently: true});
  const draw = (c) => {
    ctx.clearRect(0, 0, 64, 64);
    ctx.font = font;
    ctx.textBaseline = "middle";
    ctx.fillText(c, 8, 32);
    return Array.from(ctx.getImageData(0, 0, 64, 64).data).join(",");
  };
  const box = draw(missing[0]);
  return {
    canary: draw(missing[1]) === box,
    box_inked: box.split(",").some((v) => v !== "0"),
    tofu: Array.from(chars).filter((c) => draw(c) === box),
  };
}"""


async def test_every_language_renders_with_real_glyphs(browser, server) -> None:  # noqa: ANN001
    """One page for all languages (languages loop inside to keep the run short)."""
    context, page = await new_page(browser, 360, 740)
    cdp = await context.new_cdp_session(page)
    problems: list[str] = []
    for lang in LANGS:
        await page.goto(f"{server.base_url}/?lang={lang}")
        await page.wait_for_selector(f"html[lang='{lang}'][data-ready]")

        result = await page.evaluate(TOFU_JS, [catalogue_characters(lang), list(MISSING)])
        # The check itself works: two missing characters draw the same, visible box.
        assert result["canary"] and result["box_inked"]
        if result["tofu"]:
            problems.append(f"{lang}: drawn as boxes: {result['tofu']}")

        await cdp.send("DOM.enable")
        await cdp.send("CSS.enable")
        root = (await cdp.send("DOM.getDocument", {"depth": -1}))["root"]["nodeId"]
        # The language switch names every language in its own script (opened: closed, its
        # list is not drawn at all).
        await page.click("#lang-switch summary")
        switch = await platform_fonts(cdp, root, "#lang-switch li")
        if set(switch) != {"Noto Sans", "Noto Sans Arabic", "Noto Sans Ethiopic"}:
            problems.append(f"{lang}: language switch drawn in {switch}")
        used = await platform_fonts(
            cdp, root, "main h1, main h2, main p, main li:not(#lang-switch li), main label, button"
        )
        wanted = script_font(lang)
        # Most glyphs are the language's own letters (names like BRIS and Shift are Latin).
        if not set(used) <= {"Noto Sans", wanted} or used.get(wanted, 0) <= sum(used.values()) / 2:
            problems.append(f"{lang}: texts drawn in {used}, expected mostly {wanted}")
    await context.close()
    assert not problems, "\n".join(problems)


async def platform_fonts(cdp, root: int, selector: str) -> dict[str, int]:  # noqa: ANN001
    """Glyphs per font family that Chromium used for the elements' own text."""
    nodes = (await cdp.send("DOM.querySelectorAll", {"nodeId": root, "selector": selector}))
    assert len(nodes["nodeIds"]) > 10, selector
    used: dict[str, int] = {}
    for node in nodes["nodeIds"]:
        found = await cdp.send("CSS.getPlatformFontsForNode", {"nodeId": node})
        for font in found["fonts"]:
            used[font["familyName"]] = used.get(font["familyName"], 0) + font["glyphCount"]
    return used
