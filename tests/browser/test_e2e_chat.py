"""The real visitor page and the real console, in two browser contexts, chat both ways."""

from __future__ import annotations

import pytest
from pages import (
    chat_with_python_counselor,
    message_texts,
    new_page,
    open_chat_in_two_pages,
    start_visitor_chat,
)
from protocol_client import DEFAULT_USER_AGENT, CounselorClient, ok

pytestmark = pytest.mark.browser


async def test_visitor_page_and_console_chat_both_ways(browser, server) -> None:
    account = server.add_user()
    chat = await open_chat_in_two_pages(browser, server.base_url, account)
    visitor, counselor, panel = chat.visitor, chat.counselor, chat.panel

    visitor_code = (await visitor.inner_text("#safety-code")).replace(" ", "")
    counselor_code = await panel.locator(".safety-code").get_attribute("data-code")
    assert visitor_code.isdigit() and len(visitor_code) == 6
    assert visitor_code == counselor_code

    await chat.visitor_sends("Hej, jag är rädd för att åka på sommarlovet")
    assert await message_texts(counselor, ".chat-panel:not([hidden])") == [
        "Hej, jag är rädd för att åka på sommarlovet"
    ]

    await chat.counselor_sends("Tack för att du skriver. Berätta mer.")
    texts = await message_texts(visitor, "#messages")
    assert texts == [
        "Hej, jag är rädd för att åka på sommarlovet",
        "Tack för att du skriver. Berätta mer.",
    ]

    await chat.counselor_closes()


async def test_visitor_page_talks_with_an_independent_python_client(
    browser, server
) -> None:
    """The page's WebCrypto and a client written with `cryptography` derive the same keys."""
    account = server.add_user()
    counselor = await CounselorClient.login(
        server.base_url, account.username, account.password, account.next_totp(),
        DEFAULT_USER_AGENT,
    )
    await counselor.connect()
    try:
        _, visitor = await new_page(browser, 360, 740)
        await start_visitor_chat(visitor, server.base_url, lang="en")
        queue = ok(await counselor.queue_list())["queue"]
        assert len(queue) == 1
        chat_id = queue[0]["chat_id"]
        ok(await counselor.accept(chat_id))
        await visitor.wait_for_selector("#view-chat:not([hidden])")
        code = (await visitor.inner_text("#safety-code")).replace(" ", "")
        assert code == counselor.chats[chat_id].safety_code()

        await visitor.fill("#message-input", "Written in Chromium, read in Python")
        await visitor.press("#message-input", "Enter")
        got = await counselor.receive()
        assert got.text == "Written in Chromium, read in Python"

        ok(await counselor.send(chat_id, "Written in Python, read in Chromium"))
        await visitor.locator("#messages .message.from-counselor").first.wait_for()
        assert "Written in Python, read in Chromium" in await message_texts(visitor, "#messages")
        ok(await counselor.close(chat_id, {}))
    finally:
        await counselor.disconnect()


async def test_visitor_page_waits_again_when_the_counselor_hands_back_to_the_queue(
    browser, server
) -> None:
    """A transfer to the queue shows the visitor the queue; the next counselor re-keys."""
    first_account = server.add_user()
    first = await CounselorClient.login(
        server.base_url, first_account.username, first_account.password,
        first_account.next_totp(), DEFAULT_USER_AGENT,
    )
    await first.connect()
    second_account = server.add_user()
    second = await CounselorClient.login(
        server.base_url, second_account.username, second_account.password,
        second_account.next_totp(), DEFAULT_USER_AGENT,
    )
    await second.connect()
    try:
        _, visitor = await new_page(browser, 360, 740)
        chat_id = await chat_with_python_counselor(
            visitor, server.base_url, first, "Jag vill prata med någon", "Jag lyssnar"
        )
        ok(await first.transfer(chat_id, "queue"))
        await visitor.wait_for_selector("#view-queue:not([hidden])")
        assert await visitor.inner_text("#queue-position")

        ok(await second.accept(chat_id))
        await visitor.wait_for_selector("#view-chat:not([hidden])")
        code = (await visitor.inner_text("#safety-code")).replace(" ", "")
        assert code == second.chats[chat_id].safety_code()
        ok(await second.send(chat_id, "Hej, jag tar över nu"))
        await visitor.locator("#messages .message.from-counselor >> nth=1").wait_for()
        texts = await message_texts(visitor, "#messages")
        assert texts[0] == "Jag vill prata med någon"  # the transcript stayed
        assert texts[-1] == "Hej, jag tar över nu"
        ok(await second.close(chat_id, {}))
    finally:
        await first.disconnect()
        await second.disconnect()
