"""Past capacity the visitor's page waits and sends again: the young person sees a calm
note, not a failed message, and the counselor gets the message once."""

from __future__ import annotations

import asyncio
import os
import signal

import pytest
from pages import chat_with_python_counselor, new_page
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
