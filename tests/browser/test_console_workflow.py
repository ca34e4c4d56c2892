"""The console in Chromium through a child's chat with a concern: take next, the duty
to report, indicators suggested locally, a referral card, a note, a refused close, the
decision, and the close; then the audit log and the statistics are checked."""

from __future__ import annotations

import json

import pytest
from pages import console_login, new_page
from protocol_client import ok
from support import ServerProcess, connect_visitor, server_database

pytestmark = pytest.mark.browser

CHILD_TEXT = "Pappa läser mina sms och vi ska åka till hemlandet på sommarlovet"
NOTE = "Ringa tillbaka-Ugglan-4412: pratar igen efter skolan"


async def test_child_with_a_concern_from_take_next_to_decision_and_close(
    browser, server: ServerProcess
) -> None:
    account = server.add_user()
    context, page = await new_page(browser, 1400, 900)
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.on("response", lambda r: errors.append(r.url) if r.status >= 400 else None)
    await console_login(page, server.base_url, account)
    with server_database(server) as conn:
        facts_before = conn.execute("SELECT COUNT(*) FROM stats_facts").fetchone()[0]

    visitor = await connect_visitor(server.base_url)
    try:
        ok(await visitor.start(lang="sv", age_group="13_15", gender="girl", role="self"))
        await page.locator(".queue-item").first.wait_for()
        await page.click("#take-next")
        panel = page.locator(".chat-panel:not([hidden])")
        await panel.wait_for()
        await visitor.wait_assigned()
        code = await panel.locator(".safety-code").get_attribute("data-code")
        assert code == visitor.crypto.safety_code()

        # A 13-15-year-old is a child: set by the age group, and the console offers the
        # wording about the duty to report in the visitor's language.
        child_box = panel.locator(".wf-child-box")
        assert await child_box.is_checked() and await child_box.is_disabled()
        await panel.locator(".wf-inform").wait_for()
        wording = (await panel.locator(".wf-wording").inner_text()).strip()
        assert "anmäl" in wording and "socialtjänsten" in wording
        await panel.locator(".wf-use-wording").click()
        await panel.locator(".send").click()
        told = await visitor.receive()
        assert told.text == wording
        await panel.locator(".wf-informed").click()
        await panel.locator(".wf-informed-done").wait_for()

        # The visitor's words suggest indicators, in the browser only.
        ok(await visitor.send(CHILD_TEXT))
        await panel.locator(".message.from-visitor .message-text",
                            has_text="hemlandet").wait_for()
        suggested = panel.locator(".indicator.suggested")
        await suggested.first.wait_for()
        ids = await suggested.evaluate_all("els => els.map(e => e.dataset.indicator)")
        assert {"phone_checked", "trip_to_origin"} <= set(ids), ids

        await panel.locator(".indicator[data-indicator='phone_checked'] input").check()
        await page.wait_for_selector(".chat-panel.decision-due:not([hidden])")
        await panel.locator(".wf-routine").wait_for()
        assert await panel.locator(".wf-routine-steps li").count() == 4
        await panel.locator(".indicator[data-indicator='threat_to_kill'] input").check()
        banner = panel.locator(".acute-banner")
        await banner.wait_for()
        assert "112" in await banner.inner_text()
        assert "114 14" in await banner.inner_text()

        # A referral card, as the visitor page shows it, and a note.
        await panel.locator(".card-select").select_option("bris")
        await panel.locator(".send-card").click()
        card = await visitor.receive()
        assert card.type == "resource"
        body = visitor.crypto.open(card.envelope, "counselor")
        assert body["title"] and body["phone"] == "116 111"
        await panel.locator(".note-input").fill(NOTE)
        await panel.locator(".note-save").click()
        await panel.locator(".notes-list .note-text", has_text="Ugglan-4412").wait_for()

        # The close is refused while the decision is missing...
        await panel.locator(".close-chat").click()
        form = panel.locator(".close-form")
        await form.wait_for()
        assert await form.locator("input[name=referrals][value=bris]").is_checked()
        await form.locator(".close-outcome").select_option("completed")
        await form.locator(".close-submit").click()
        error = form.locator(".close-error")
        await error.wait_for()
        assert "beslut" in (await error.inner_text()).lower()
        assert not visitor.events_named("chat:ended")
        assert await page.locator(".chat-panel").count() == 1

        # ...and allowed once it is recorded.
        await panel.locator(".wf-decision-kind").select_option("report_made")
        await panel.locator(".wf-decision-to").select_option("social_services")
        await panel.locator(".wf-decision-channel").select_option("oral")
        await panel.locator(".wf-record").click()
        await page.wait_for_selector(".chat-panel[data-decision='report_made']")
        await form.locator(".close-submit").click()
        ended = await visitor.wait_for_event("chat:ended")
        assert ended["by"] == "counselor"
        await page.locator(".chat-panel").wait_for(state="detached")
    finally:
        await visitor.disconnect()
        await context.close()
    assert not errors, errors

    chat_id = visitor.chat_id
    with server_database(server) as conn:
        decisions = conn.execute(
            "SELECT actor, detail FROM audit WHERE action = 'report.decision' AND target = ?",
            (chat_id,)).fetchall()
        facts = [dict(r) for r in conn.execute("SELECT * FROM stats_facts ORDER BY id")]
    assert len(decisions) == 1 and decisions[0]["actor"] == account.username
    detail = json.loads(decisions[0]["detail"])
    assert (detail["decision"], detail["to"], detail["channel"], detail["informed"]) == (
        "report_made", "social_services", "oral", True)
    [fact] = facts[facts_before:]
    assert (fact["decision"], fact["decision_to"], fact["age_group"], fact["child"]) == (
        "report_made", "social_services", "13_15", 1)
    assert json.loads(fact["indicators"]) == ["phone_checked", "threat_to_kill"]
    assert json.loads(fact["referrals"]) == ["bris"]
    assert fact["outcome"] == "completed"
    # Nothing identifying in the statistics; no text and no keyword hit on the server.
    for value in fact.values():
        assert chat_id not in str(value) and account.username not in str(value)
    raw = b"".join(p.read_bytes() for p in server.data_files()
                   if p.name.startswith("tillit.sqlite3"))
    for needle in (CHILD_TEXT[:30], "hemlandet", NOTE[:20], "Ugglan-4412", wording[:30]):
        assert needle.encode() not in raw, needle
    log = server.log_text()
    assert "hemlandet" not in log and "trip_to_origin" not in log
