"""The visitor page on a 390×844 phone ("Right law, right alarms", points 8 and 11).

The start button and the danger question sit inside the first screen in every shipped
language (`site.languages`); the other optional questions come while the visitor waits,
and their answers reach the counselor's queue. The Shift hint shows only where a keyboard
is likely. Positions are written to `$TILLIT_FIRST_SCREEN_REPORT` when that is set.
"""

from __future__ import annotations

import json
import os

import pytest
from pages import console_login, new_page
from protocol_client import ok

from tillit.chat_server.settings import load_settings

pytestmark = pytest.mark.browser

LANGS = tuple(load_settings(environ={}).site.languages)
PHONE = {"width": 390, "height": 844}
MARGIN = 48  # px left below the start button on the first screen

POSITIONS_JS = """() => {
  const box = (sel) => document.querySelector(sel).getBoundingClientRect();
  const b = box('#start-chat'), d = box('.danger-question'), n = box('#danger-no');
  return {button_top: b.top, button_bottom: b.top + b.height, danger_top: d.top,
          danger_bottom: d.top + d.height, no_bottom: n.top + n.height,
          scroll_height: document.documentElement.scrollHeight};
}"""


async def phone_page(browser, mobile: bool = True):  # noqa: ANN001, ANN201
    """A 390×844 touch phone (no hover, coarse pointer), as Playwright emulates one."""
    context = await browser.new_context(
        viewport=PHONE, has_touch=mobile, is_mobile=mobile, device_scale_factor=1
    )
    context.set_default_timeout(15_000)
    return context, await context.new_page()


async def test_start_button_and_danger_question_fit_the_first_screen_in_every_language(
    browser, server
) -> None:
    context, page = await phone_page(browser)
    measured: dict[str, dict[str, float]] = {}
    for lang in LANGS:
        await page.goto(f"{server.base_url}/?lang={lang}")
        await page.wait_for_selector("html[data-ready]")
        pos = await page.evaluate(POSITIONS_JS)
        measured[lang] = pos
        # With room to spare: a longer translation or a bigger system font still fits.
        assert pos["button_bottom"] <= PHONE["height"] - MARGIN, (lang, pos)
        assert pos["danger_bottom"] <= PHONE["height"] - MARGIN, (lang, pos)
        assert pos["danger_top"] < pos["button_top"], (lang, pos)
        # Before the chat, only the danger question is asked.
        assert not await page.locator("#q-age").is_visible()
        assert not await page.locator("#topic-control").is_visible()
    write_report(measured)
    await context.close()


async def test_language_switch_is_one_compact_line_at_the_top_in_every_language(
    browser, server
) -> None:
    """A visitor who cannot read the current language finds the switch: at the top, the
    word "Language" in every page language beside a globe; it opens the full list."""
    context, page = await phone_page(browser)
    for lang in LANGS:
        await page.goto(f"{server.base_url}/?lang={lang}")
        await page.wait_for_selector("html[data-ready]")
        summary = page.locator("#lang-switch summary")
        box = await summary.bounding_box()
        assert box["y"] < 200 and box["height"] <= 100, (lang, box)
        text = await summary.inner_text()
        for word in ("Language", "Språk", "اللغة", "ቋንቋ", "Dil"):
            assert word in text, (lang, text)
        # Closed, the list takes no room; open, every language is one tap away.
        assert not await page.locator("#lang-switch a[lang='en']").is_visible()
        await summary.click()
        for other in LANGS:
            assert await page.locator(f"#lang-switch a[hreflang='{other}']").is_visible()
    # The switch still replaces the page without a history entry (visitor.js).
    before = await page.evaluate("history.length")
    await page.click("#lang-switch a[hreflang='ar']")
    await page.wait_for_selector("html[lang='ar'][data-ready]")
    assert await page.evaluate("history.length") == before
    await context.close()


def write_report(measured: dict[str, dict[str, float]]) -> None:
    """The measured positions, for the report (only when asked, through the environment)."""
    report = os.environ.get("TILLIT_FIRST_SCREEN_REPORT")
    if report:
        with open(report, "w", encoding="utf-8") as fh:
            json.dump(measured, fh, indent=1)


async def test_the_questions_come_in_the_queue_and_reach_the_counselor(
    browser, server, make_counselor
) -> None:
    counselor = await make_counselor()
    context, page = await phone_page(browser)
    await page.goto(f"{server.base_url}/?lang=sv")
    await page.check("#danger-no")
    await page.click("#start-chat")
    await page.wait_for_selector("#view-queue:not([hidden]) #queue-status:not([aria-busy])")
    assert await page.locator("#q-age").is_visible()
    # Sector only for a professional.
    assert not await page.locator("#q-sector").is_visible()
    await page.select_option("#q-role", "self")
    assert not await page.locator("#q-sector").is_visible()
    await page.select_option("#q-role", "professional")
    assert await page.locator("#q-sector").is_visible()
    await page.select_option("#q-sector", "social_services")
    await page.select_option("#q-contact", "repeat")
    await page.select_option("#q-age", "over_25")
    await page.check("#topic-travel")
    await page.wait_for_selector("#meta-status:not(:empty)")

    async def entry() -> dict:
        queue = ok(await counselor.queue_list())["queue"]
        assert len(queue) == 1, queue
        return queue[0]

    got = await entry()
    assert (got["role"], got["sector"], got["contact"], got["age_group"], got["topics"]) == (
        "professional", "social_services", "repeat", "over_25", ["travel"])
    assert got["danger_now"] is False and got["lang"] == "sv"

    # Changing the role away from professional takes the sector away.
    await page.select_option("#q-role", "worried")
    assert not await page.locator("#q-sector").is_visible()
    for _ in range(50):
        got = await entry()
        if got["role"] == "worried":
            break
        await page.wait_for_timeout(100)
    assert got["role"] == "worried" and got["sector"] is None
    ok(await counselor.accept(got["chat_id"]))
    await page.wait_for_selector("#view-chat:not([hidden])")
    await context.close()


async def test_shift_hint_only_where_a_keyboard_is_likely(browser, server) -> None:
    phone, page = await phone_page(browser, mobile=True)
    await page.goto(f"{server.base_url}/?lang=sv")
    assert await page.evaluate("matchMedia('(pointer: coarse)').matches")
    assert not await page.locator(".exit-hint").is_visible()
    # The safety information still says it, for everyone.
    await page.click("#safety-info summary")
    assert "Shift" in await page.inner_text("#safety-info")
    await phone.close()

    desktop, page = await new_page(browser, 1280, 800)
    await page.goto(f"{server.base_url}/?lang=sv")
    assert await page.evaluate("matchMedia('(hover: hover) and (pointer: fine)').matches")
    assert await page.locator(".exit-hint").is_visible()
    await desktop.close()




async def test_answers_show_in_the_console_queue_and_in_the_open_chat(
    browser, server, make_visitor
) -> None:
    account = server.add_user()
    _, console = await new_page(browser)
    errors: list[str] = []
    console.on("pageerror", lambda e: errors.append(str(e)))
    await console_login(console, server.base_url, account)
    context, page = await phone_page(browser)
    await page.goto(f"{server.base_url}/?lang=sv")
    await page.click("#start-chat")
    await page.wait_for_selector("#view-queue:not([hidden]) #queue-status:not([aria-busy])")
    item = console.locator(".queue-item").first
    await item.wait_for()
    await page.select_option("#q-role", "professional")
    await page.select_option("#q-sector", "school")
    # The queue item updates while the visitor waits.
    await console.wait_for_function(
        "() => (document.querySelector('.queue-item .qi-role') || {}).textContent"
        " && document.querySelector('.queue-item .qi-role').textContent.includes('Skola')")
    await page.click("#leave-queue")
    await context.close()
    await console.wait_for_selector(".queue-item", state="detached")

    # A visitor who answers just after the counselor took the chat: the panel updates.
    visitor = await make_visitor()
    ok(await visitor.start(lang="sv"))
    await item.wait_for()
    await console.locator(".queue-item .accept").first.click()
    panel = console.locator(".chat-panel:not([hidden])")
    await panel.wait_for()
    await visitor.wait_assigned()
    ok(await visitor.call("chat:update_meta", {
        "chat_id": visitor.chat_id, "age_group": "over_25", "role": "professional",
        "sector": "police", "contact": "repeat"}))
    await console.wait_for_function(
        "() => { const p = document.querySelector('.chat-panel:not([hidden])');"
        " return p && p.querySelector('.meta-role').textContent.includes('Polis')"
        " && p.querySelector('.meta-contact').textContent.includes('Upprepad'); }")
    assert errors == []
