"""The statistics page and the operations panel in Debian's Chromium, under the real CSP."""

from __future__ import annotations

import re

from pages import axe_violations, console_login, new_page
from playwright.async_api import expect
from protocol_client import DEFAULT_USER_AGENT, CounselorClient, ok, open_chat
from support import connect_visitor


async def test_supervisor_reads_charts_and_tables_without_csp_errors(browser, server) -> None:
    counselor_acct = server.add_user("counselor_vega_stats", languages="sv,en")
    counselor = await CounselorClient.login(
        server.base_url, counselor_acct.username, counselor_acct.password,
        counselor_acct.next_totp(), DEFAULT_USER_AGENT)
    await counselor.connect()
    for lang in ("sv", "sv", "sv", "sv", "sv", "en"):
        visitor = await connect_visitor(server.base_url)
        chat_id = await open_chat(visitor, counselor, lang=lang)
        ok(await counselor.close(chat_id, {"outcome": "completed"}))
        await visitor.disconnect()
    await counselor.disconnect()

    supervisor = server.add_user("supervisor_vega_stats", role="supervisor")
    context, page = await new_page(browser, bypass_csp=False)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)
    await console_login(page, server.base_url, supervisor)
    problems.clear()  # only this page's own problems
    await page.goto(f"{server.base_url}/console/stats?lang=en")
    assert await page.locator("svg.chart").count() >= 10
    def cell(language: str):  # noqa: ANN202
        header = page.get_by_role("rowheader", name=language, exact=True)
        return page.locator("#bd-language tbody tr").filter(has=header).locator("td")

    assert await cell("Svenska").inner_text() == "5"
    assert await cell("English").inner_text() == "<5"
    assert not problems, problems
    await context.close()

    context, page = await new_page(browser, bypass_csp=True)
    await console_login(page, server.base_url, supervisor)
    await page.goto(f"{server.base_url}/console/stats?lang=en")
    assert await axe_violations(page, "stats page") == []
    await context.close()


async def test_operations_panel_updates_itself(browser, server) -> None:
    admin = server.add_user("admin_vega_ops", role="admin")
    context, page = await new_page(browser)
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: problems.append(r.url) if r.status >= 400 else None)
    await console_login(page, server.base_url, admin)
    problems.clear()
    await page.goto(f"{server.base_url}/console/ops?lang=en")
    await expect(page.locator("#ops-status")).to_have_text(re.compile(r"^Updated \d\d:\d\d"))
    visitor = await connect_visitor(server.base_url)
    ok(await visitor.start(lang="sv"))
    await expect(page.locator("#ops-queue_length")).to_have_text("1", timeout=12_000)
    await visitor.end()
    await visitor.disconnect()
    assert not problems, problems
    await context.close()
