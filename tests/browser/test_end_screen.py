"""Ending a chat on the visitor page ("Right law, right alarms", points 10, 12 and 13).

"End chat" asks once more, with "Continue chatting" as the default; the quick exit never
asks. The "counselor has joined" notice sits in the message log. After the end the
conversation stays readable (memory only) and the resources that fit the chat's topics
come first.
"""

from __future__ import annotations

import pytest
from protocol_client import ok

pytestmark = pytest.mark.browser

VISITOR_TEXT = "Jag är rädd för resan till morbror i sommar"
COUNSELOR_TEXT = "Tack för att du berättar. När ska resan vara?"


async def chat_on_phone(browser, base_url: str, counselor, topics=("travel",)):  # noqa: ANN001, ANN201
    """A 390×844 touch phone: start, answer the topics in the queue, get a counselor,
    exchange one message each way."""
    context = await browser.new_context(
        viewport={"width": 390, "height": 844}, has_touch=True, is_mobile=True
    )
    context.set_default_timeout(15_000)
    page = await context.new_page()
    await page.goto(f"{base_url}/?lang=sv")
    await page.click("#start-chat")
    await page.wait_for_selector("#view-queue:not([hidden]) #queue-status:not([aria-busy])")
    for topic in topics:
        await page.check(f"#topic-{topic}")
    await page.wait_for_selector("#meta-status:not(:empty)")
    queue = ok(await counselor.queue_list())["queue"]
    assert len(queue) == 1 and queue[0]["topics"] == list(topics), queue
    chat_id = queue[0]["chat_id"]
    ok(await counselor.accept(chat_id))
    await page.wait_for_selector("#view-chat:not([hidden])")
    await page.fill("#message-input", VISITOR_TEXT)
    await page.press("#message-input", "Enter")
    assert (await counselor.receive()).text == VISITOR_TEXT
    ok(await counselor.send(chat_id, COUNSELOR_TEXT))
    await page.locator("#messages .from-counselor").first.wait_for()
    return context, page, chat_id


async def test_end_chat_asks_and_continue_is_the_default(browser, server, make_counselor) -> None:
    counselor = await make_counselor()
    context, page, chat_id = await chat_on_phone(browser, server.base_url, counselor)
    # The joined notice is in the message log, before the messages, not outside it.
    joined = page.locator("#messages > li.system-note").first
    assert "har kommit in i chatten" in await joined.inner_text()
    assert await page.evaluate(
        "document.querySelector('#messages').firstElementChild.classList.contains('system-note')")
    assert await page.inner_text("#connection") == ""

    await page.click("#end-chat")
    await page.wait_for_selector("#end-confirm:not([hidden])")
    # The default: focus on "Continue chatting", and Enter keeps the chat.
    assert await page.evaluate("document.activeElement.id") == "end-continue"
    await page.keyboard.press("Enter")
    assert await page.locator("#end-confirm").is_hidden()
    assert await page.locator("#view-chat").is_visible()
    ok(await counselor.send(chat_id, "Är du kvar?"))
    await page.locator("#messages .from-counselor >> nth=1").wait_for()
    assert not [d for d in counselor.events_named("chat:ended") if d.get("chat_id") == chat_id]

    # Confirming ends it.
    await page.click("#end-chat")
    await page.click("#end-confirmed")
    await page.wait_for_selector("#chat-ended:not([hidden])")
    ended = await counselor.wait_for_event("chat:ended", lambda d: d.get("chat_id") == chat_id)
    assert ended["by"] == "visitor"
    await context.close()


async def test_the_end_screen_keeps_the_conversation_and_fitting_resources_first(
    browser, server, make_counselor
) -> None:
    counselor = await make_counselor()
    context, page, chat_id = await chat_on_phone(browser, server.base_url, counselor,
                                                 topics=("sexuality",))
    ok(await counselor.close(chat_id, {}))
    await page.wait_for_selector("#chat-ended:not([hidden])")
    log = page.locator("#ended-log")
    assert await log.is_visible()
    texts = [t.strip() for t in await log.locator(".message-text").all_inner_texts()]
    assert texts == [VISITOR_TEXT, COUNSELOR_TEXT]
    assert await page.locator("#messages > *").count() == 0  # moved, not copied
    # Topic "sexuality": the resources that list it (tillit/config/resources.toml) come first.
    topics = await page.locator("#chat-ended .resources > li").evaluate_all(
        "els => els.map(e => e.getAttribute('data-topics').split(' '))")
    fits = ["sexuality" in t for t in topics]
    assert fits[0] and fits == sorted(fits, reverse=True), topics
    assert sum(fits) >= 1 and not all(fits)
    # A new chat forgets it.
    await page.click("#new-chat")
    await page.wait_for_selector("#view-start:not([hidden])")
    assert VISITOR_TEXT not in await page.evaluate("document.body.innerText")
    assert VISITOR_TEXT not in await page.evaluate("document.documentElement.innerHTML")
    await context.close()


async def test_the_quick_exit_never_asks(browser, exit_server, exit_site, make_counselor) -> None:
    counselor = await make_counselor(exit_server)
    context, page, chat_id = await chat_on_phone(browser, exit_server.base_url, counselor)
    await page.click("#quick-exit")
    await page.wait_for_url(exit_site.url)
    ended = await counselor.wait_for_event("chat:ended", lambda d: d.get("chat_id") == chat_id)
    assert ended.get("reason") == "quick_exit"
    await context.close()


async def test_the_shift_hint_stays_hidden_on_a_phone_through_the_chat(
    browser, server, make_counselor
) -> None:
    counselor = await make_counselor()
    context, page, _ = await chat_on_phone(browser, server.base_url, counselor)
    assert await page.evaluate("matchMedia('(pointer: coarse)').matches")
    assert not await page.locator(".exit-hint").is_visible()
    await context.close()
