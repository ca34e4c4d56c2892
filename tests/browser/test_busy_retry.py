"""Past capacity both pages wait and send again (static/chat-session.js): the young person
sees a calm note, not a failed message, and the counselor gets the message once; the
counselor's message, too, arrives once without anyone pressing "Try again"."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from pages import (
    chat_with_python_counselor,
    message_texts,
    new_page,
    open_chat_in_two_pages,
)
from support import MakeCounselor, ServerProcess

pytestmark = pytest.mark.browser

BUSY_SV = "Många skriver just nu. Ditt meddelande skickas om en liten stund."


async def test_a_busy_answer_is_sent_again_by_the_page(
    browser, fresh_server: ServerProcess, make_counselor: MakeCounselor  # noqa: ANN001
) -> None:
    counselor = await make_counselor(fresh_server)
    _, page = await new_page(browser, 360, 740)
    await chat_with_python_counselor(page, fresh_server.base_url, counselor, "Hej", "Hej!")

    await page.fill("#message-input", "Skrivet när servern inte hann med")
    assert fresh_server.proc is not None
    os.kill(fresh_server.proc.pid, signal.SIGSTOP)  # its core is taken: the loop runs late
    try:
        await page.press("#message-input", "Enter")
        await asyncio.sleep(1.5)
    finally:
        os.kill(fresh_server.proc.pid, signal.SIGCONT)

    await page.wait_for_function(
        "t => document.getElementById('send-error').textContent.trim() === t", arg=BUSY_SV)
    got = await counselor.receive(wait_s=10)
    assert got.text == "Skrivet när servern inte hann med"
    await page.wait_for_function(
        "() => document.getElementById('send-error').textContent.trim() === ''")
    mine = page.locator("#messages .message.from-visitor").last
    assert await mine.get_attribute("class") == "message from-visitor"
    await asyncio.sleep(1.5)  # nothing comes twice
    assert counselor.drain_inbox() == [] and counselor.duplicates == 0


async def test_a_busy_answer_to_the_console_is_sent_again_by_the_console(
    browser, fresh_server: ServerProcess  # noqa: ANN001
) -> None:
    account = fresh_server.add_user()
    chat = await open_chat_in_two_pages(browser, fresh_server.base_url, account)
    console, visitor, panel = chat.counselor, chat.visitor, chat.panel

    await panel.locator(".message-input").fill("Skrivet när servern inte hann med")
    assert fresh_server.proc is not None
    os.kill(fresh_server.proc.pid, signal.SIGSTOP)
    try:
        await panel.locator(".send").click()
        await asyncio.sleep(1.5)
    finally:
        os.kill(fresh_server.proc.pid, signal.SIGCONT)

    mine = panel.locator(".message.from-counselor").last
    await mine.wait_for()
    await console.wait_for_function(
        "() => { const m = [...document.querySelectorAll('.chat-panel .message.from-counselor')]"
        ".pop(); return m && m.dataset.id && !m.classList.contains('pending'); }",
        timeout=20_000)
    assert int(await mine.get_attribute("data-retries") or 0) >= 1  # refused, then resent
    assert await mine.get_attribute("class") == "message from-counselor"
    assert await panel.locator(".retry").count() == 0
    await visitor.locator("#messages .message.from-counselor").first.wait_for()
    await asyncio.sleep(1.5)  # nothing comes twice
    assert await message_texts(visitor, "#messages") == ["Skrivet när servern inte hann med"]
