"""Right law, right alarms, in the console in Chromium: a first-person suicide message is
suggested as self-harm (not a threat to kill) in Swedish and Arabic; marking it shows the
acute banner with 112, Självmordslinjen 90101 and, for a child, BRIS 116 111; the
duty-to-report wording is in the visitor's language and says which; a referral line
outside its hours shows as closed (the browser's clock is set)."""

from __future__ import annotations

import datetime as dt
import re
from zoneinfo import ZoneInfo

import pytest
from pages import console_login, new_page, open_chat_in_two_pages
from protocol_client import VisitorClient, ok
from support import ServerProcess, connect_visitor

pytestmark = pytest.mark.browser


async def _take(page, visitor: VisitorClient):  # noqa: ANN001, ANN202
    """Accept this visitor's chat from the queue; its panel."""
    item = page.locator(f".queue-item[data-chat-id='{visitor.chat_id}'] .accept")
    await item.click()
    panel = page.locator(f".chat-panel[data-chat-id='{visitor.chat_id}']")
    await panel.wait_for()
    await visitor.wait_assigned()
    return panel


async def _suggested(panel) -> set[str]:  # noqa: ANN001
    tags = panel.locator(".indicator.suggested")
    await tags.first.wait_for()
    return set(await tags.evaluate_all("els => els.map(e => e.dataset.indicator)"))


async def test_suicidal_words_suggest_self_harm_and_raise_the_acute_banner(
    browser, server: ServerProcess
) -> None:
    account = server.add_user(languages="sv,ar")
    context, page = await new_page(browser, 1400, 900)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    await console_login(page, server.base_url, account)
    swedish = await connect_visitor(server.base_url)
    arabic = await connect_visitor(server.base_url)
    try:
        ok(await swedish.start(lang="sv", age_group="13_15", gender="girl", role="self"))
        ok(await arabic.start(lang="ar", age_group="18_25", role="self"))
        await page.locator(f".queue-item[data-chat-id='{arabic.chat_id}']").wait_for()

        panel = await _take(page, swedish)
        # The duty-to-report wording says which language it is in (the visitor's).
        await panel.locator(".wf-inform").wait_for()
        assert (await panel.locator(".wf-wording-lang").inner_text()).strip() == (
            "Text på Svenska:")
        assert "får veta eller misstänker" in await panel.locator(".wf-wording").inner_text()
        ok(await swedish.send("ibland vill jag bara ta livet av mig"))
        ids = await _suggested(panel)
        assert "self_harm" in ids and "threat_to_kill" not in ids, ids
        banner = panel.locator(".acute-banner")
        assert await banner.is_hidden()
        await panel.locator(".indicator[data-indicator='self_harm'] input").check()
        await banner.wait_for()
        text = await banner.inner_text()
        assert "112" in text and "90101" in text and "116 111" in text, text

        panel_ar = await _take(page, arabic)
        note = panel_ar.locator(".wf-wording-lang")
        assert await note.get_attribute("data-lang") == "ar"
        assert "العربية" in (await note.text_content() or "")
        assert "الخدمات الاجتماعية" in (await panel_ar.locator(".wf-wording").text_content() or "")
        ok(await arabic.send("أريد أن أقتل نفسي"))
        ids = await _suggested(panel_ar)
        assert "self_harm" in ids and "threat_to_kill" not in ids, ids
        await panel_ar.locator(".indicator[data-indicator='self_harm'] input").check()
        banner_ar = panel_ar.locator(".acute-banner")
        await banner_ar.wait_for()
        text = await banner_ar.inner_text()
        # An adult: 112 and Självmordslinjen, not the children's line.
        assert "90101" in text and "112" in text and "116 111" not in text, text
    finally:
        await swedish.disconnect()
        await arabic.disconnect()
        await context.close()
    assert not errors, errors


async def test_referral_cards_show_a_line_closed_now_with_its_hours(
    browser, server: ServerProcess
) -> None:
    account = server.add_user()
    context, page = await new_page(browser, 1400, 900)
    # Tuesday 22:30 in Stockholm: Stödlinjen för män (07-21) is closed, BRIS is open.
    await page.clock.set_fixed_time(
        dt.datetime(2026, 11, 24, 22, 30, tzinfo=ZoneInfo("Europe/Stockholm")))
    await console_login(page, server.base_url, account)
    visitor = await connect_visitor(server.base_url)
    try:
        ok(await visitor.start(lang="sv", age_group="18_25", role="self"))
        panel = await _take(page, visitor)
        men = panel.locator(".card-select option[value='stodlinjen_man']")
        assert await men.get_attribute("data-closed-now") == "true"
        text = await men.inner_text()
        assert "stängt nu" in text and "07:00–21:00" in text, text
        bris = panel.locator(".card-select option[value='bris']")
        assert await bris.get_attribute("data-closed-now") == "false"
        # The card the visitor gets carries the hours, since they may read it later.
        await panel.locator(".card-select").select_option("stodlinjen_man")
        await panel.locator(".send-card").click()
        card = visitor.crypto.open((await visitor.receive()).envelope, "counselor")
        assert "07:00–21:00" in card["text"], card
    finally:
        await visitor.disconnect()
        await context.close()


async def test_the_safety_code_reads_the_same_on_both_pages(browser, server: ServerProcess) -> None:
    """Go-live security, point 14: "737 392" on the visitor page and in the console."""
    account = server.add_user()
    chat = await open_chat_in_two_pages(browser, server.base_url, account, (1400, 900))
    visitor, panel = chat.visitor, chat.panel
    try:
        # The page's safety info explains what the lock and the code can and cannot do.
        info = await visitor.locator("#safety-info").text_content() or ""
        assert "Hur privat är chatten?" in info and "ändrat den här webbplatsen" in info
        await panel.locator(".safety-code[data-code]").wait_for()
        shown_v = (await visitor.inner_text("#safety-code")).strip()
        shown_c = (await panel.locator(".safety-code").inner_text()).strip()
        assert re.fullmatch(r"\d{3} \d{3}", shown_v), shown_v
        assert shown_v == shown_c
    finally:
        await chat.close()
