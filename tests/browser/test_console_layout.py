"""The console laid out to the viewport (issue 16): with banners and the close form open the
message log keeps its room and scrolls, and every control is a target of 24×24 px or more.

Set TILLIT_SCREENSHOTS=DIR to keep a screenshot of each size there."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from pages import axe_violations, console_login, new_page
from protocol_client import ok
from support import ServerProcess, connect_visitor

pytestmark = pytest.mark.browser

MIN_LOG_PX = 300
MIN_TARGET_PX = 24


async def busy_console(  # noqa: ANN201
    browser, server: ServerProcess, width: int, height: int, bypass_csp: bool = False  # noqa: ANN001
):
    """A counselor with two chats whose visitors left by the quick exit (two alert
    banners), one with many messages, an acute indicator (the red banner), the chat's
    status line and the close form open."""
    account = server.add_user()
    context, page = await new_page(browser, width, height, bypass_csp=bypass_csp)
    await console_login(page, server.base_url, account)
    visitors = []
    for _ in range(2):
        visitor = await connect_visitor(server.base_url)
        ok(await visitor.start(lang="sv", age_group="13_15"))
        visitors.append(visitor)
        await page.locator(".queue-item").first.wait_for()
        await page.click("#take-next")
        await visitor.wait_assigned()
    first, second = visitors
    await page.locator(".chat-tab").first.click()
    panel = page.locator(".chat-panel:not([hidden])")
    for i in range(40):
        ok(await first.send(f"Rad {i}: jag vet inte riktigt hur jag ska säga det här."))
    await panel.locator(".message.from-visitor", has_text="Rad 39:").wait_for(state="attached")
    shots = os.environ.get("TILLIT_SCREENSHOTS")
    if shots:
        await page.screenshot(path=str(Path(shots) / f"console-chat-{width}x{height}.png"))
    await panel.locator(".indicator[data-indicator='threat_to_kill'] input").check()
    await panel.locator(".acute-banner").wait_for()
    for visitor in visitors:
        ok(await visitor.end("quick_exit"))
    # A locator, not wait_for_function: a string predicate is evaluated with eval, which
    # the console's CSP refuses unless the context bypasses it.
    await page.locator("#notices .notice").nth(1).wait_for()
    await page.locator(".chat-tab").first.click()
    await panel.locator(".chat-status").wait_for()
    await panel.locator(".close-chat").click()
    await panel.locator(".close-form").wait_for()
    return context, page, visitors


@pytest.mark.parametrize(("width", "height"), [(1280, 720), (1280, 900)])
async def test_the_message_log_keeps_its_room_with_banners_and_the_close_form_open(
    browser, server: ServerProcess, width: int, height: int
) -> None:
    context, page, visitors = await busy_console(browser, server, width, height)
    try:
        figures = await page.evaluate("""() => {
            const panel = document.querySelector('.chat-panel:not([hidden])');
            const log = panel.querySelector('.messages');
            const visible = (sel) => {
                const n = panel.querySelector(sel) || document.querySelector(sel);
                return !!n && n.getClientRects().length > 0;
            };
            const r = log.getBoundingClientRect();
            const composer = panel.querySelector('.composer').getBoundingClientRect();
            const form = panel.querySelector('.close-form').getBoundingClientRect();
            const aside = panel.querySelector('.workflow');
            const column = aside.getBoundingClientRect();
            return {
                log: r.height, logTop: r.top, logBottom: r.bottom,
                scrollable: log.scrollHeight > log.clientHeight
                    && getComputedStyle(log).overflowY === 'auto',
                composerBottom: composer.bottom, formTop: form.top, formHeight: form.height,
                columnBottom: column.bottom,
                columnScrolls: getComputedStyle(aside).overflowY === 'auto',
                notices: document.querySelectorAll('#notices .notice').length,
                acute: visible('.acute-banner'), status: visible('.chat-status'),
                closeForm: visible('.close-form'),
                innerHeight,
            };
        }""")
        print(f"\n{width}x{height}: {figures}")
        shots = os.environ.get("TILLIT_SCREENSHOTS")
        if shots:
            await page.screenshot(path=str(Path(shots) / f"console-busy-{width}x{height}.png"))
        assert figures["notices"] >= 2 and figures["acute"] and figures["status"]
        assert figures["closeForm"] and figures["formHeight"] > 100
        assert figures["log"] >= MIN_LOG_PX, figures
        assert figures["scrollable"], figures
        # Nothing is pushed out of the window: the composer is on screen, the close form
        # starts on screen in the workflow column, which ends on screen and scrolls.
        assert figures["composerBottom"] <= figures["innerHeight"] + 1, figures
        assert figures["formTop"] < figures["innerHeight"] - 100, figures
        assert figures["columnBottom"] <= figures["innerHeight"] + 1, figures
        assert figures["columnScrolls"], figures
    finally:
        for visitor in visitors:
            await visitor.disconnect()
        await context.close()


async def test_every_checkbox_and_button_is_at_least_24_by_24(
    browser, server: ServerProcess
) -> None:
    context, page, visitors = await busy_console(browser, server, 1280, 720)
    try:
        # The workflow column scrolls: measure each control where it is, visible or not
        # on screen, but rendered (not display: none).
        small = await page.evaluate("""(min) => {
            const sel = 'button, input[type=checkbox], input[type=radio], select, '
                + '.topbar a, [role=tab]';
            return Array.from(document.querySelectorAll(sel))
                .filter((n) => n.getClientRects().length > 0)
                .map((n) => {
                    const r = n.getBoundingClientRect();
                    return {what: n.className || n.tagName + (n.name ? ':' + n.name : ''),
                            w: Math.round(r.width * 10) / 10, h: Math.round(r.height * 10) / 10};
                })
                .filter((t) => t.w < min || t.h < min);
        }""", MIN_TARGET_PX)
        counted = await page.evaluate("""() => document.querySelectorAll(
            '.chat-panel:not([hidden]) input[type=checkbox]').length""")
        assert counted >= 10  # indicators, the child box, topics and referrals
        assert small == [], small
    finally:
        for visitor in visitors:
            await visitor.disconnect()
        await context.close()


async def test_staff_pages_and_the_busy_console_pass_axe(browser, server: ServerProcess) -> None:
    """The admin page (with an account missing its display name), the 403 page and the
    console with banners, signals and the close form open: no serious axe finding."""
    admin = server.add_user("admin_aster_axe", role="admin")
    unnamed = server.add_user("counselor_aster_axe_unnamed")
    with sqlite3.connect(server.data_dir / "tillit.sqlite3") as conn:
        conn.execute("UPDATE accounts SET display_name = NULL WHERE username = ?",
                     (unnamed.username,))
    context, page = await new_page(browser, 1280, 720, bypass_csp=True)
    await console_login(page, server.base_url, admin)
    found = await axe_violations(page, "admin page")
    await context.close()
    context, page = await new_page(browser, 1280, 720, bypass_csp=True)
    await console_login(page, server.base_url, unnamed)
    await page.goto(f"{server.base_url}/console/admin")
    found += await axe_violations(page, "403 page")
    await context.close()
    context, page, visitors = await busy_console(browser, server, 1280, 720, bypass_csp=True)
    try:
        found += await axe_violations(page, "busy console")
    finally:
        for visitor in visitors:
            await visitor.disconnect()
        await context.close()
    assert found == [], found
