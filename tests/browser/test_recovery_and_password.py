"""Issue 16, a case survives a counselor leaving, in Chromium (docs/protocol.md E12.5,
E12.9): an admin loads the team key file on the admin page and gives a disabled
counselor's mailbox to a colleague, who reads the old messages in the console; a
counselor changes the password on the console's password page, then unlocks the
mailboxes with the new password and reads a message from before."""

from __future__ import annotations

import json
from pathlib import Path

import mailbox_client as mc
import pytest
from mailbox_steps import counselor_seal, create_mailbox, give_key, set_team_key
from pages import axe_violations, console_login, new_page
from support import MakeCounselor, MakeVisitor, ServerProcess, http_session, server_database

pytestmark = pytest.mark.browser

PASSPHRASE = "Lagets reservnyckel i kassaskåpet 2026"
FIRST_TEXT = "Hallon-Fyrtorn-3317: jag vågar inte berätta hemma"
REPLY_TEXT = "Kastanj-Brygga-6402: vi läser allt du skriver här"
LATER_TEXT = "Nypon-Glänta-9158: det har hänt igen"
NEW_PASSWORD = "blåbär paraply cykelkorg vinter"


def team_key_file(tmp_path: Path, team) -> Path:  # noqa: ANN001 - an EC private key
    """The offline file as the admin page downloads it (E12.5), wrapped with PASSPHRASE."""
    path = tmp_path / "tillit-team-key.json"
    path.write_text(json.dumps(mc.wrap_with_password(team, PASSPHRASE, "team-key"), indent=2))
    return path


async def disable(srv: ServerProcess, admin_cookie: str, username: str) -> None:
    import re

    async with http_session(admin_cookie) as http:
        async with http.get(f"{srv.base_url}/console/admin") as resp:
            csrf = re.search(r'name="csrf_token" value="([^"]+)"', await resp.text()).group(1)
        async with http.post(f"{srv.base_url}/console/admin/accounts/{username}/disable",
                             data={"csrf_token": csrf}, allow_redirects=False) as resp:
            assert resp.status == 303


async def test_an_admin_recovers_a_disabled_counselors_mailbox_in_the_browser(
    browser, fresh_server: ServerProcess, make_counselor: MakeCounselor,
    make_visitor: MakeVisitor, tmp_path: Path,
) -> None:
    srv = fresh_server
    team = await set_team_key(srv)
    key_file = team_key_file(tmp_path, team)
    # Aster holds a case: the visitor wrote, she answered, the visitor wrote again.
    aster = await make_counselor(srv, display_name="Aster Nord")
    await give_key(aster)
    visitor = await make_visitor(srv)
    ack, box = await create_mailbox(visitor)
    assert ack.get("ok"), ack
    assert (await visitor.call("mailbox:send", {"locator": box.locator,
                                                "message": box.seal(FIRST_TEXT)})).get("ok")
    read = await aster.call("mailbox:read", {"mailbox_id": box.mailbox_id})
    assert (await aster.call("mailbox:reply", {"mailbox_id": box.mailbox_id,
                                               "message": counselor_seal(read, REPLY_TEXT)})
            ).get("ok")
    box.recipients = (await visitor.call("mailbox:recipients",
                                         {"locator": box.locator}))["recipients"]
    assert (await visitor.call("mailbox:send", {"locator": box.locator,
                                                "message": box.seal(LATER_TEXT)})).get("ok")

    # Aster leaves. Birk makes his key in the console; nothing of Aster's case is his.
    admin = srv.add_user(role="admin")
    admin_ctx, admin_page = await new_page(browser, 1400, 900, bypass_csp=True)
    birk = srv.add_user(display_name="Birk Syd")
    birk_ctx, console = await new_page(browser, 1400, 900)
    try:
        await console_login(admin_page, srv.base_url, admin)
        cookie = next(c["value"] for c in await admin_ctx.cookies()
                      if c["name"] == "tillit_session")
        await disable(srv, cookie, aster.account.username)  # type: ignore[attr-defined]
        await console_login(console, srv.base_url, birk)
        await console.fill("#mailbox-password", birk.password)
        await console.click("#mailbox-unlock-submit")
        await console.wait_for_selector("#mailbox-unlock", state="hidden")
        assert await console.locator(".mailbox-item").count() == 0

        # The admin opens the team key file with its passphrase, in the page only.
        await admin_page.reload()
        await admin_page.set_input_files("#recovery-file", str(key_file))
        await admin_page.fill("#recovery-passphrase", PASSPHRASE + "x")
        await admin_page.click("#recovery-unlock-submit")
        wrong = await admin_page.get_attribute("#recovery-unlock", "data-wrong")
        await admin_page.locator("#recovery-status", has_text=wrong).wait_for()
        assert await admin_page.locator("#recovery-work").is_hidden()
        await admin_page.set_input_files("#recovery-file", str(key_file))
        await admin_page.fill("#recovery-passphrase", PASSPHRASE)
        await admin_page.click("#recovery-unlock-submit")
        row = admin_page.locator(f".recovery-item[data-mailbox-id='{box.mailbox_id}']")
        await row.wait_for()
        assert "needs-recovery" in (await row.get_attribute("class"))
        assert "Aster Nord" in await row.inner_text()
        assert await admin_page.input_value("#recovery-passphrase") == ""
        assert await axe_violations(admin_page, "admin recovery") == []
        await admin_page.select_option("#recovery-to", birk.username)
        await row.locator(".recovery-give").click()
        await admin_page.locator("#recovery-status", has_text="Birk Syd").wait_for()
        assert "3" in await admin_page.inner_text("#recovery-status")
        # Once given, Birk can read the whole case: no longer listed as needing recovery.
        await admin_page.locator(
            f".recovery-item[data-mailbox-id='{box.mailbox_id}']:not(.needs-recovery)").wait_for()
        # Leaving the page drops the key: back on it, nothing is open (even from the
        # back-forward cache).
        await admin_page.goto(f"{srv.base_url}/console/audit")
        await admin_page.go_back()
        await admin_page.wait_for_selector("#recovery-unlock")
        assert await admin_page.locator("#recovery-work").is_hidden()
        assert await admin_page.locator(".recovery-item").count() == 0

        # Birk's console: the mailbox is his now, and the old messages open with his key.
        item = console.locator(f"#mailboxes .mailbox-item.mine[data-mailbox-id='{box.mailbox_id}']")
        await item.wait_for()
        await item.locator("button").click()
        for text in (FIRST_TEXT, REPLY_TEXT, LATER_TEXT):
            await console.locator("#mailbox-thread .message-text", has_text=text).wait_for()
    finally:
        await admin_ctx.close()
        await birk_ctx.close()
    with server_database(srv) as db:
        rows = db.execute("SELECT actor, target FROM audit WHERE action = 'mailbox.recover'"
                          ).fetchall()
    assert [tuple(r) for r in rows] == [(admin.username, birk.username)]


async def test_a_counselor_changes_the_password_and_still_reads_old_messages(
    browser, fresh_server: ServerProcess, make_visitor: MakeVisitor,
) -> None:
    srv = fresh_server
    await set_team_key(srv)
    account = srv.add_user(display_name="Aster Nord")
    context, console = await new_page(browser, 1400, 900, bypass_csp=True)
    try:
        await console_login(console, srv.base_url, account)
        await console.fill("#mailbox-password", account.password)
        await console.click("#mailbox-unlock-submit")
        await console.wait_for_selector("#mailbox-unlock", state="hidden")
        with server_database(srv) as db:
            kid = db.execute("SELECT kid FROM counselor_keys WHERE username = ?",
                             (account.username,)).fetchone()[0]
        visitor = await make_visitor(srv)
        ack, box = await create_mailbox(visitor)
        assert ack.get("ok"), ack
        assert (await visitor.call("mailbox:send", {"locator": box.locator,
                                                    "message": box.seal(FIRST_TEXT)})).get("ok")

        await console.click("#change-password-link")
        await console.wait_for_url(f"{srv.base_url}/console/password")
        assert await axe_violations(console, "password page") == []
        form = console.locator("#password-form")
        # A wrong old password changes nothing.
        await console.fill("#old-password", "fel lösenord helt enkelt")
        await console.fill("#new-password", NEW_PASSWORD)
        await console.fill("#new-password-again", NEW_PASSWORD)
        await console.click("#password-submit")
        await console.locator("#password-status",
                              has_text=await form.get_attribute("data-wrong")).wait_for()
        await console.fill("#old-password", account.password)
        await console.click("#password-submit")
        await console.locator("#password-status",
                              has_text=await form.get_attribute("data-done-key")).wait_for()
        assert await console.input_value("#old-password") == ""
        assert await axe_violations(console, "password changed") == []
        with server_database(srv) as db:
            record = json.loads(db.execute("SELECT record FROM counselor_keys WHERE username = ?",
                                           (account.username,)).fetchone()[0])
        assert record["kid"] == kid
        mc.unwrap_with_password(record, NEW_PASSWORD)

        # Back in the console (a new page load: the key is gone from memory), the new
        # password unlocks the same key, and the message from before opens.
        await console.goto(f"{srv.base_url}/console")
        await console.wait_for_selector("#conn-status[data-state='connected']")
        await console.fill("#mailbox-password", NEW_PASSWORD)
        await console.click("#mailbox-unlock-submit")
        await console.wait_for_selector("#mailbox-unlock", state="hidden")
        assert await console.locator("#mailbox-new-key").is_hidden()
        item = console.locator(f"#mailboxes .mailbox-item[data-mailbox-id='{box.mailbox_id}']")
        await item.locator("button").click()
        await console.locator("#mailbox-thread .message-text", has_text=FIRST_TEXT).wait_for()
    finally:
        await context.close()
