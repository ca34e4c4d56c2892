"""Issue 16's "Done when", in Chromium against the real server (docs/protocol.md E12).

An admin makes the team recovery key in the admin page; a counselor unlocks (makes) their
mailbox key in the console. A visitor, in a persistent browser profile, chats, gets a
return code and a second code, and leaves. The counselor answers in the mailbox and
proposes a time. A fresh profile enters the code, reads both, answers, and starts a chat
that reaches the same counselor first (a colleague's "take next" skips it), with the
counselor's case notes from before. The second code opens an empty mailbox. Delete with
the code removes the mailbox's rows and wrapped key. Afterwards neither the data folder,
Redis (when used), the server log nor the closed profiles hold a text, the code or the
locator; nor the data folder or Redis the deleted mailbox's id (a returning chat holds it
only while it lives, E12.9).
"""

from __future__ import annotations

import json
import os
import sqlite3
from pathlib import Path

import mailbox_client as mc
import pytest
from pages import axe_violations, console_login, find_in_profile, launch_profile, new_page
from support import REDIS_URL, MakeCounselor, ServerProcess, redis_holders

pytestmark = pytest.mark.browser

VISITOR_CHAT_TEXT = "Lingon-Fyr-5521: jag får inte gå ut på kvällarna"
REPLY_TEXT = "Tallkotte-Bro-8830: tack för att du skrev, vi finns kvar här"
PROPOSAL_TEXT = "Mossa-Kompass-2214: passar den här tiden för ett samtal?"
ANSWER_TEXT = "Ekorre-Lykta-4407: ja, jag kan på torsdag efter skolan"
NOTE_TEXT = "Vildros-Sten-1196: orolig för resa i sommar"
PASSPHRASE = "Lagets reservnyckel i kassaskåpet 2026"
DATA_TABLES = ("mailboxes", "mailbox_messages", "mailbox_reads", "mailbox_notes")


def code_needles(code: str) -> dict[str, str]:
    """The code as shown, as typed without dashes, and its locator (base64url)."""
    secrets = mc.derive(mc.parse_code(code))
    return {f"code {code}": code, f"code {code} bare": code.replace("-", ""),
            f"locator of {code}": secrets.locator_b64}


def rows(srv: ServerProcess, table: str) -> list[tuple]:
    with sqlite3.connect(srv.data_dir / "tillit.sqlite3") as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - fixed names


def found_in_bytes(blobs: dict[str, bytes], needles: dict[str, str]) -> list[tuple[str, str]]:
    return [(where, name) for where, data in blobs.items() for name, text in needles.items()
            if text.encode() in data or text.encode("utf-16-le") in data]


async def redis_values() -> dict[str, bytes]:
    """Every key and value of the test Redis when the store is Redis (else nothing)."""
    if os.environ.get("TILLIT_TEST_STORE") != "redis":
        return {}
    import redis.asyncio as aioredis

    client = aioredis.Redis.from_url(REDIS_URL)
    try:
        out = {}
        async for key in client.scan_iter(match="tillit-test-*"):
            out[f"redis {key!r}"] = key + (await client.dump(key) or b"")
        return out
    finally:
        await client.aclose()


async def first_page(context):  # noqa: ANN001, ANN201 - Playwright objects
    return context.pages[0] if context.pages else await context.new_page()


async def make_team_key(browser, srv: ServerProcess, tmp_path: Path) -> None:  # noqa: ANN001
    """Item 7: the admin page makes the team key in the browser and posts its public half."""
    admin = srv.add_user(role="admin")
    context, page = await new_page(browser)
    try:
        await console_login(page, srv.base_url, admin)
        await page.fill("#team-passphrase", PASSPHRASE)
        await page.fill("#team-passphrase-again", PASSPHRASE)
        async with page.expect_download() as info:
            await page.click("#team-key-create")
        download = await info.value
        assert download.suggested_filename == "tillit-team-key.json"
        saved = tmp_path / "tillit-team-key.json"
        await download.save_as(saved)
        await page.wait_for_url("**/console/admin?done=team_key")
    finally:
        await context.close()
    record = json.loads(saved.read_text())
    assert record["type"] == "team-key" and record["iterations"] >= 600_000
    # The file opens with the passphrase (and only with it): the team can recover a case.
    team = mc.unwrap_with_password(record, PASSPHRASE, "team-key")
    assert mc.encode_public_key(team) == record["pubkey"]


async def test_the_whole_mailbox_path(
    pw, browser, fresh_server: ServerProcess, make_counselor: MakeCounselor, tmp_path: Path
) -> None:
    srv = fresh_server
    await make_team_key(browser, srv, tmp_path)

    # The counselor's first visit to the mailboxes makes their key, wrapped with the password.
    account = srv.add_user(display_name="Aster Nord")
    console_ctx, console = await new_page(browser, 1400, 900)
    await console_login(console, srv.base_url, account)
    await console.fill("#mailbox-password", account.password)
    await console.click("#mailbox-unlock-submit")
    await console.wait_for_selector("#mailbox-unlock", state="hidden")
    colleague = await make_counselor(srv)  # online, no mailbox of their own

    # 1. A visitor chats, gets a return code in the chat, and a second code in the safety info.
    first_profile = tmp_path / "profile-1"
    ctx1 = await launch_profile(pw, first_profile)
    try:
        page = await first_page(ctx1)
        await page.goto(f"{srv.base_url}/?lang=sv")
        entries = await page.evaluate("history.length")
        await page.click("#start-chat")
        item = console.locator(".queue-item").first
        await item.wait_for()
        await item.locator(".accept").click()
        panel = console.locator(".chat-panel:not([hidden])")
        await page.wait_for_selector("#view-chat:not([hidden])")
        await page.fill("#message-input", VISITOR_CHAT_TEXT)
        await page.press("#message-input", "Enter")
        await panel.locator(".message.from-visitor").first.wait_for()

        await page.click("#return-code-request")
        await page.wait_for_selector("#return-code-shown:not([hidden])")
        code = (await page.inner_text("#return-code")).strip()
        assert len(code) == 19 and code.count("-") == 3, code
        mc.parse_code(code)  # a valid code of E12.2
        assert code not in page.url
        # The counselor learns that a mailbox was made in this chat, and can open it.
        await panel.locator(".chat-mailbox-open").wait_for()

        await page.click("#safety-info summary")
        # Offered only here, with what it is and that it expires like every mailbox.
        await page.locator("#safety-info #decoy-about").wait_for()
        assert "tom brevlåda" in await page.inner_text("#decoy-about")
        assert "tom brevlåda" not in await page.inner_text("#main")
        await page.click("#decoy-request")
        await page.wait_for_selector("#decoy-shown:not([hidden])", timeout=60_000)
        decoy = (await page.inner_text("#decoy-code")).strip()
        assert decoy != code and len(decoy) == 19
        # No history entry, and so none with the code.
        assert await page.evaluate("history.length") == entries

        await page.click("#end-chat")
        await page.click("#end-confirmed")
        await page.wait_for_selector("#chat-ended:not([hidden])")
    finally:
        await ctx1.close()
    box = mc.derive(mc.parse_code(code))

    # 2. The counselor answers in the mailbox, proposes a time and keeps a case note.
    await panel.locator(".chat-mailbox-open").click()
    await console.wait_for_selector("#mailbox-detail:not([hidden])")
    await console.fill("#mailbox-reply", REPLY_TEXT)
    await console.click("#mailbox-send-reply")
    await console.locator("#mailbox-thread .message").first.wait_for()
    await console.fill("#mailbox-time", "2026-12-03T16:30")
    await console.fill("#mailbox-minutes", "45")
    await console.fill("#mailbox-time-text", PROPOSAL_TEXT)
    await console.click("#mailbox-propose")
    await console.locator("#mailbox-thread .proposed-time").wait_for()
    await console.fill("#mailbox-note-input", NOTE_TEXT)
    await console.click("#mailbox-note-save")
    await console.locator("#mailbox-notes .note").wait_for()
    await panel.locator(".close-chat").click()
    await panel.locator(".close-submit").click()
    # Their own mailbox, first in the list.
    await console.locator(f"#mailboxes .mailbox-item.mine[data-mailbox-id='{box.mailbox_id}']"
                          ).wait_for()

    # 3. A fresh profile enters the code (as typed by hand), reads, answers and chats.
    second_profile = tmp_path / "profile-2"
    ctx2 = await launch_profile(pw, second_profile)
    try:
        page = await first_page(ctx2)
        await page.goto(f"{srv.base_url}/?lang=sv")
        entries = await page.evaluate("history.length")
        field = page.locator("#return-code-input")
        assert await field.get_attribute("autocomplete") == "off"
        await field.fill("not-a-code!")
        await page.click("#return-code-open")
        await page.wait_for_selector("#return-code-open-error:not([hidden])")
        assert await page.is_hidden("#view-mailbox")
        await field.fill(" " + code.lower().replace("-", " ") + " ")
        await page.click("#return-code-open")
        await page.wait_for_selector("#view-mailbox:not([hidden])")
        texts = [t.strip() for t in await page.locator(
            "#mailbox-messages .message .message-text").all_inner_texts()]
        assert texts == [REPLY_TEXT, PROPOSAL_TEXT]
        proposal = await page.inner_text("#mailbox-messages .proposed-time")
        assert "16:30" in proposal and "45" in proposal
        assert "Aster Nord" in await page.inner_text("#mailbox-with")
        assert await field.input_value() == ""

        await page.fill("#mailbox-input", ANSWER_TEXT)
        await page.click("#mailbox-send")
        await page.wait_for_selector("#mailbox-status:not(:empty)")
        await console.locator("#mailbox-thread .message-text", has_text=ANSWER_TEXT).wait_for()

        # The live chat goes first to the same counselor: the colleague's take-next skips it.
        await page.click("#mailbox-chat")
        await page.wait_for_selector("#view-queue:not([hidden]) #queue-status:not([aria-busy])")
        assert (await colleague.take_next()).get("error", {}).get("code") == "not_found"
        await console.click("#take-next")
        chat_panel = console.locator(".chat-panel:not([hidden])")
        await chat_panel.locator(".returning-badge:not([hidden])").wait_for()
        assert NOTE_TEXT in await chat_panel.locator(".returning-notes").inner_text()
        await page.wait_for_selector("#view-chat:not([hidden])")
        await page.click("#end-chat")
        await page.click("#end-confirmed")
        await page.wait_for_selector("#chat-ended:not([hidden])")
        await chat_panel.locator(".close-chat").click()
        await chat_panel.locator(".close-submit").click()

        # 5. Delete with the code: one confirmation.
        await page.click("#new-chat")
        await page.fill("#return-code-input", code)
        await page.click("#return-code-open")
        await page.wait_for_selector("#view-mailbox:not([hidden])")
        await page.click("#mailbox-delete")
        await page.wait_for_selector("#mailbox-delete-confirm:not([hidden])")
        await page.click("#mailbox-delete-yes")
        await page.wait_for_selector("#view-start:not([hidden])")
        assert await page.evaluate("history.length") == entries
    finally:
        await ctx2.close()

    # 4. The second code opens a mailbox with nothing in it (and the screens pass axe).
    ctx3, page = await new_page(browser, 360, 740, bypass_csp=True)
    try:
        await page.goto(f"{srv.base_url}/?lang=sv")
        await page.fill("#return-code-input", decoy)
        await page.click("#return-code-open")
        await page.wait_for_selector("#view-mailbox:not([hidden])")
        assert await page.locator("#mailbox-messages .message").count() == 0
        assert await axe_violations(page, "mailbox view") == []
        await page.click("#mailbox-close")
        await page.fill("#return-code-input", code)  # deleted: opens nothing
        await page.click("#return-code-open")
        await page.wait_for_selector("#return-code-open-error:not([hidden])")
        assert await axe_violations(page, "start with a code error") == []
    finally:
        await ctx3.close()
    await console_ctx.close()

    # Every row and the wrapped key of the deleted mailbox are gone; the decoy's remain.
    decoy_id = mc.derive(mc.parse_code(decoy)).mailbox_id
    assert [r[0] for r in rows(srv, "mailboxes")] == [decoy_id]
    for table in DATA_TABLES[1:]:
        assert all(box.mailbox_id not in map(str, r) for r in rows(srv, table)), table
    assert rows(srv, "mailbox_messages") == [] and rows(srv, "mailbox_notes") == []

    texts = {"visitor chat text": VISITOR_CHAT_TEXT, "reply": REPLY_TEXT,
             "proposal": PROPOSAL_TEXT, "answer": ANSWER_TEXT, "note": NOTE_TEXT}
    for marker, text in list(texts.items()):
        texts[marker + " marker"] = text.split(":")[0]
    secrets = {**texts, **code_needles(code), **code_needles(decoy)}
    server_side = {str(p): p.read_bytes() for p in srv.data_files()}
    server_side["server log"] = srv.log_text().encode()
    # Nor the deleted mailbox's id: the returning chat's link to it (docs/protocol.md
    # E12.9, in the chat's ephemeral record) was cleared at the chat's end and purged with
    # it. In Redis only the open throttle's expiring counters may still name it (E12.8).
    assert found_in_bytes(server_side, {"mailbox id": box.mailbox_id}) == []
    if os.environ.get("TILLIT_TEST_STORE") == "redis":
        assert await redis_holders("tillit-test-*", box.mailbox_id) == []
    server_side.update(await redis_values())
    assert found_in_bytes(server_side, secrets) == []
    # The closed profiles: neither the texts nor the codes (history, cache, autofill).
    leaks = find_in_profile(first_profile, secrets) + find_in_profile(second_profile, secrets)
    assert leaks == [], leaks


async def test_the_quick_exit_leaves_the_mailbox_and_back_shows_none_of_it(
    pw, tmp_path: Path, exit_site, exit_server: ServerProcess, make_visitor  # noqa: ANN001
) -> None:
    """The quick exit works on the mailbox screen: the page goes, Back leads to the page
    before, and nothing of the mailbox (its text, the code) is shown or kept there."""
    from mailbox_steps import create_mailbox, set_team_key

    await set_team_key(exit_server)
    maker = await make_visitor(exit_server)
    ack, made = await create_mailbox(maker)
    assert ack.get("ok"), ack
    sent = await maker.call("mailbox:send", {"locator": made.locator,
                                             "message": made.seal(ANSWER_TEXT)})
    assert sent.get("ok"), sent
    code = mc.format_code(made.code)

    profile = tmp_path / "profile"
    context = await launch_profile(pw, profile)
    try:
        page = await first_page(context)
        await page.goto(exit_site.origin + "/innan")
        await page.goto(f"{exit_server.base_url}/?lang=en")
        await page.fill("#return-code-input", code)
        await page.click("#return-code-open")
        await page.wait_for_selector("#view-mailbox:not([hidden]) .message")
        assert ANSWER_TEXT in await page.inner_text("#mailbox-messages")
        for _ in range(3):
            await page.keyboard.press("Shift")
        await page.wait_for_url(exit_site.url)
        await page.go_back(wait_until="commit")
        await page.wait_for_url(exit_site.origin + "/innan", wait_until="commit")
        shown = await page.evaluate("document.documentElement.innerText")
        assert ANSWER_TEXT not in shown and code not in shown
    finally:
        await context.close()
    assert find_in_profile(profile, {"text": ANSWER_TEXT, **code_needles(code)}) == []


async def test_when_closed_a_visitor_leaves_a_message_in_a_new_mailbox(
    browser, tmp_path: Path, make_counselor: MakeCounselor  # noqa: ANN001
) -> None:
    """Item 3: out of hours the page offers a mailbox instead of only turning away; the
    message waits there, readable by the counselors' keys and no one else's."""
    from mailbox_steps import give_key, set_team_key
    from support import CLOSED_ALL_WEEK

    srv = ServerProcess(tmp_path / "closed", CLOSED_ALL_WEEK)
    srv.start()
    try:
        await set_team_key(srv)
        counselor = await make_counselor(srv)
        key = await give_key(counselor)
        context, page = await new_page(browser, 360, 740, bypass_csp=True)
        try:
            await page.goto(f"{srv.base_url}/?lang=sv")
            await page.wait_for_selector("#view-closed:not([hidden]) #return-code-request")
            await page.click("#return-code-request")
            await page.wait_for_selector("#return-code-shown:not([hidden])")
            code = (await page.inner_text("#return-code")).strip()
            mc.parse_code(code)
            assert await axe_violations(page, "closed with a code") == []
            await page.click("#return-code-write")
            await page.wait_for_selector("#view-mailbox:not([hidden])")
            await page.fill("#mailbox-input", ANSWER_TEXT)
            await page.click("#mailbox-send")
            await page.wait_for_selector("#mailbox-messages .message")
        finally:
            await context.close()
        listed = (await counselor.call("mailbox:list", {}))["mailboxes"]
        box_id = mc.derive(mc.parse_code(code)).mailbox_id
        assert [(m["mailbox_id"], m["unread"], m["mine"]) for m in listed] == [(box_id, 1, False)]
        read = await counselor.call("mailbox:read", {"mailbox_id": box_id})
        body = mc.open_message(read["messages"][0], box_id, key)
        assert body["text"] == ANSWER_TEXT and body["kind"] == "text"
    finally:
        srv.stop()


async def test_a_counselor_transfers_a_mailbox_and_the_colleague_reads_all_of_it(
    browser, fresh_server: ServerProcess, make_counselor: MakeCounselor, make_visitor  # noqa: ANN001
) -> None:
    """Item 6: the console rewraps every message it can open for the colleague's key."""
    from mailbox_steps import create_mailbox, give_key, set_team_key

    srv = fresh_server
    await set_team_key(srv)
    account = srv.add_user(display_name="Aster Nord")
    context, console = await new_page(browser, 1400, 900)
    try:
        await console_login(console, srv.base_url, account)
        await console.fill("#mailbox-password", account.password)
        await console.click("#mailbox-unlock-submit")
        await console.wait_for_selector("#mailbox-unlock", state="hidden")
        birk = await make_counselor(srv, display_name="Birk Syd")
        birk_key = await give_key(birk)

        visitor = await make_visitor(srv)
        ack, box = await create_mailbox(visitor)
        assert ack.get("ok"), ack
        assert (await visitor.call("mailbox:send", {"locator": box.locator,
                                                    "message": box.seal(VISITOR_CHAT_TEXT)})
                ).get("ok")
        item = console.locator(f"#mailboxes .mailbox-item[data-mailbox-id='{box.mailbox_id}']")
        await item.locator("button").click()
        await console.locator("#mailbox-thread .message-text",
                              has_text=VISITOR_CHAT_TEXT).wait_for()
        await console.fill("#mailbox-reply", REPLY_TEXT)
        await console.click("#mailbox-send-reply")  # the mailbox becomes Aster's
        await console.locator("#mailbox-thread .message-text", has_text=REPLY_TEXT).wait_for()

        # Now only Aster's key (with the mailbox's and the team's) opens the next message.
        box.recipients = (await visitor.call("mailbox:recipients",
                                             {"locator": box.locator}))["recipients"]
        assert [r["role"] for r in box.recipients].count("counselor") == 1
        assert (await visitor.call("mailbox:send", {"locator": box.locator,
                                                    "message": box.seal(ANSWER_TEXT)})).get("ok")
        await console.locator("#mailbox-thread .message-text", has_text=ANSWER_TEXT).wait_for()

        await console.select_option("#mailbox-transfer-to", birk.account.username)
        await console.click("#mailbox-transfer")
        await console.locator("#mailbox-detail-status", has_text="Birk Syd").wait_for()
    finally:
        await context.close()

    mine = [m for m in (await birk.call("mailbox:list", {}))["mailboxes"] if m["mine"]]
    assert [m["mailbox_id"] for m in mine] == [box.mailbox_id]
    read = await birk.call("mailbox:read", {"mailbox_id": box.mailbox_id})
    texts = [mc.open_message(env, box.mailbox_id, birk_key)["text"] for env in read["messages"]]
    assert texts == [VISITOR_CHAT_TEXT, REPLY_TEXT, ANSWER_TEXT]
