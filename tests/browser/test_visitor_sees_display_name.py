"""The visitor page shows the counselor's display name, never the login (issue 9)."""

from __future__ import annotations

import sqlite3

import pytest
from pages import new_page, start_visitor_chat
from protocol_client import CounselorClient, console_login, ok
from support import TEST_USER_AGENT, ServerProcess

pytestmark = pytest.mark.browser


async def test_the_visitor_page_names_the_display_name_or_a_counselor(
    browser, server: ServerProcess
) -> None:
    named = server.add_user("counselor_aster_shown", display_name="Aster Lindqvist")
    unnamed = server.add_user("counselor_aster_unnamed")
    with sqlite3.connect(server.data_dir / "tillit.sqlite3") as conn:  # from before names
        conn.execute("UPDATE accounts SET display_name = NULL WHERE username = ?",
                     (unnamed.username,))
    for acct, expected in ((named, "Du chattar med Aster Lindqvist"),
                           (unnamed, "Du chattar med din rådgivare")):
        status, body, cookie, _ = await console_login(
            server.base_url, acct.username, acct.password, acct.next_totp(), TEST_USER_AGENT)
        assert status == 200, body
        counselor = CounselorClient(server.base_url, cookie, TEST_USER_AGENT)
        await counselor.connect()
        context, page = await new_page(browser, 360, 740)
        try:
            await start_visitor_chat(page, server.base_url)
            chat_id = ok(await counselor.queue_list())["queue"][0]["chat_id"]
            ok(await counselor.accept(chat_id))
            await page.wait_for_selector("#view-chat:not([hidden])")
            title = page.locator("#chat-title")
            await page.wait_for_function(
                "(t) => document.getElementById('chat-title').textContent.includes(t)",
                arg=expected)
            assert acct.username not in await page.locator("body").inner_text()
            assert expected in await title.inner_text()
            ok(await counselor.close(chat_id, {}))
        finally:
            await context.close()
            await counselor.disconnect()
