"""axe-core over every state of the visitor page in every shipped language (issue 7).

States: start, questions (answered, emergency numbers shown), queue, chat (with the
feelings board open and a feeling sent), ended, out of hours. The chat side is driven
by the independent protocol client as the counselor. One server and one browser for
the whole run; languages loop inside the tests to keep the run short.
"""

from __future__ import annotations

import pytest
from pages import axe_violations, new_page, shipped_languages
from protocol_client import ok
from support import CLOSED_ALL_WEEK, server_fixture

pytestmark = pytest.mark.browser

# Every shipped language; TILLIT_TEST_LANGS=ckb,ps narrows a run to some of them.
LANGS = shipped_languages()


closed_server = server_fixture(CLOSED_ALL_WEEK)


async def test_every_state_in_every_language(browser, server, make_counselor) -> None:
    counselor = await make_counselor()
    _, page = await new_page(browser, 360, 740, bypass_csp=True)
    found: list[str] = []
    for lang in LANGS:
        await page.goto(f"{server.base_url}/?lang={lang}")
        await page.wait_for_selector("html[data-ready]")
        found += await axe_violations(page, f"{lang} start")

        await page.check("#danger-yes")
        await page.wait_for_selector("#emergency:not([hidden])")
        found += await axe_violations(page, f"{lang} danger")

        await page.click("#start-chat")
        await page.wait_for_selector("#est-wait:not(:empty)")
        # The optional questions come while waiting (issue 8), the sector for a professional.
        await page.select_option("#q-age", "13_15")
        await page.select_option("#q-role", "professional")
        await page.wait_for_selector("#meta-status:not(:empty)")
        found += await axe_violations(page, f"{lang} queue with questions")

        queue = ok(await counselor.queue_list())["queue"]
        assert [q["lang"] for q in queue] == [lang] and queue[0]["danger_now"] is True
        chat_id = queue[0]["chat_id"]
        ok(await counselor.accept(chat_id))
        await page.wait_for_selector("#view-chat:not([hidden])")
        ok(await counselor.send(chat_id, "Hej! Vad vill du prata om?"))
        await page.locator("#messages .from-counselor").first.wait_for()
        # The message's time: the language's own clock, or Sweden's 24-hour clock when
        # the browser has no data for the language; never en-US "AM" on a Pashto page.
        sent_at = await page.inner_text("#messages .from-counselor .message-meta")
        assert sent_at.strip() and ("AM" not in sent_at and "PM" not in sent_at
                                    or lang == "en"), (lang, sent_at)
        if await page.get_attribute("#feelings-toggle", "aria-expanded") == "false":
            await page.click("#feelings-toggle")  # easy-read opens the board by itself
        assert await page.get_attribute("#feelings-toggle", "aria-expanded") == "true"
        feeling = page.locator("#feelings-board .feeling").first
        label = (await feeling.inner_text()).strip()
        await feeling.click()
        got = await counselor.receive()
        # The counselor reads the picture as words, in the visitor's language.
        assert (got.type, got.text) == ("feeling", label)
        await page.wait_for_selector("#messages .from-visitor[data-type='feeling'][data-id]")
        found += await axe_violations(page, f"{lang} chat")
        await page.click("#end-chat")
        await page.wait_for_selector("#end-confirm:not([hidden])")
        found += await axe_violations(page, f"{lang} end asked")
        await page.click("#end-continue")

        ok(await counselor.close(chat_id, {}))
        await page.wait_for_selector("#chat-ended:not([hidden])")
        found += await axe_violations(page, f"{lang} ended")
    assert not found, "\n".join(found)


async def test_out_of_hours_in_every_language(browser, closed_server) -> None:
    _, page = await new_page(browser, 360, 740, bypass_csp=True)
    found: list[str] = []
    for lang in LANGS:
        await page.goto(f"{closed_server.base_url}/?lang={lang}")
        await page.wait_for_selector("#view-closed:not([hidden])")
        assert await page.locator("#view-closed .resources a[href='tel:116111']").count() == 1
        found += await axe_violations(page, f"{lang} out of hours")
    # And a visitor who starts anyway (from the start view) lands on the same help.
    await page.click("#closed-back")
    await page.click("#start-chat")
    await page.wait_for_selector("#view-closed:not([hidden])")
    assert await page.evaluate("document.activeElement.id") == "closed-title"
    assert not found, "\n".join(found)


async def test_arabic_mirrors_and_swedish_does_not(browser, server) -> None:
    _, page = await new_page(browser, 360, 740)
    for lang, rtl in (("ar", True), ("fa", True), ("ckb", True), ("ps", True), ("sv", False),
                      ("am", False)):
        await page.goto(f"{server.base_url}/?lang={lang}")
        assert await page.get_attribute("html", "dir") == ("rtl" if rtl else "ltr")
        radio = await page.locator("#danger-yes").bounding_box()
        label = await page.locator("label[for='danger-yes']").bounding_box()
        exit_box = await page.locator("#quick-exit").bounding_box()
        assert (radio["x"] > label["x"]) is rtl  # the control sits at the line's start
        assert (exit_box["x"] > 100) is rtl  # the exit button starts at the right in RTL


async def test_language_switch_adds_no_history_entry_and_no_cookie(browser, server) -> None:
    context, page = await new_page(browser, 360, 740)
    await page.goto(f"{server.base_url}/?lang=sv")
    before = await page.evaluate("history.length")
    await page.click("#lang-switch summary")
    await page.click("#lang-switch a[lang='ti']")
    await page.wait_for_selector("html[lang='ti'][data-ready]")
    assert await page.evaluate("history.length") == before
    assert await page.get_attribute("#start-chat", "class") == "primary"
    # The closed switch names the current language; in the list it is marked current.
    assert "ትግርኛ" in await page.inner_text("#lang-switch summary")
    assert "ትግርኛ" in await page.text_content("#lang-switch [aria-current]")
    assert await context.cookies() == []
    # Keyboard only: the switch is reachable and works with Enter.
    await page.focus("#lang-switch summary")
    await page.keyboard.press("Enter")
    await page.focus("#lang-switch a[lang='ar']")
    await page.keyboard.press("Enter")
    await page.wait_for_selector("html[lang='ar'][dir='rtl'][data-ready]")
    assert await page.evaluate("history.length") == before
