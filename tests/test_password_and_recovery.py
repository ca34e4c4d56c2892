"""Issue 16, a case survives a counselor leaving (docs/protocol.md E5, E12.5, E12.9):
an account's own password change stores the new hash and the counselor key record
rewrapped under the new password in one step; an admin who opened the team key recovers
a departed counselor's mailbox for a colleague, who then reads the old messages."""

from __future__ import annotations

import json
import re
from typing import Any

import mailbox_client as mc
import pytest
from cryptography.exceptions import InvalidTag
from mailbox_steps import counselor_seal, create_mailbox, give_key, set_team_key
from protocol_client import console_login, error_code, ok
from support import (
    CSRF_FIELD,
    TEST_USER_AGENT,
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    http_get,
    http_session,
    login_cookie,
    server_database,
)

CSRF_ATTR = re.compile(r'data-csrf="([^"]+)"')
RECORD = re.compile(r'<script type="application/json" id="password-key-record">(.*?)</script>',
                    re.S)


def stored(srv: ServerProcess, username: str) -> tuple[str, dict[str, Any] | None]:
    """The account's password hash and key record as the database holds them."""
    with server_database(srv) as db:
        hashed = db.execute("SELECT password_hash FROM accounts WHERE username = ?",
                            (username,)).fetchone()[0]
        row = db.execute("SELECT kid, record FROM counselor_keys WHERE username = ?",
                         (username,)).fetchone()
    return hashed, (None if row is None else {**json.loads(row["record"]), "_kid": row["kid"]})


def audit_rows(srv: ServerProcess, action: str) -> list[dict[str, Any]]:
    with server_database(srv) as db:
        return [dict(r) for r in db.execute(
            "SELECT actor, target, detail FROM audit WHERE action = ? ORDER BY id", (action,))]


async def change(srv: ServerProcess, cookie: str, csrf: str | None, body: Any,
                 ) -> tuple[int, dict[str, Any]]:
    headers = {"X-CSRF-Token": csrf} if csrf else {}
    async with http_session(cookie) as http, http.post(
            f"{srv.base_url}/api/console/password", json=body, headers=headers) as resp:
        return resp.status, await resp.json(content_type=None)


async def password_page(srv: ServerProcess, cookie: str) -> tuple[str, dict[str, Any] | None]:
    """The page's CSRF token and the key record it hands to the browser for the rewrap."""
    status, html, _ = await http_get(srv, "/console/password", cookie)
    assert status == 200, html
    found = RECORD.search(html)
    return CSRF_ATTR.search(html).group(1), (json.loads(found.group(1)) if found else None)


async def test_a_password_change_rewraps_the_key_in_the_same_step(
    fresh_server: ServerProcess, make_counselor: MakeCounselor
) -> None:
    srv = fresh_server
    aster = await make_counselor(srv)
    acct = aster.account  # type: ignore[attr-defined]
    old = acct.password
    key = mc.generate_key_pair()
    ok(await aster.call("mailbox:keys", {"set": mc.wrap_with_password(key, old)}))
    kid = mc.key_id(mc.encode_public_key(key))
    other_cookie = await login_cookie(srv, acct)  # a second login, e.g. another computer
    cookie = aster.session_cookie
    csrf, record = await password_page(srv, cookie)
    assert record is not None and record["kid"] == kid
    hash_before, _ = stored(srv, acct.username)
    new = "tre nya ord i ett längre lösen"
    rewrapped = mc.rewrap_with_password(record, old, new)

    # Refused: no CSRF token; a wrong old password; a new one too short; another key pair.
    assert (await change(srv, cookie, None, {"old_password": old, "new_password": new}))[0] == 403
    status, body = await change(srv, cookie, csrf, {"old_password": old + "x",
                                                    "new_password": new, "key": rewrapped})
    assert (status, body["error"]["code"]) == (401, "unauthorized")
    status, body = await change(srv, cookie, csrf, {"old_password": old,
                                                    "new_password": "kort lösen"})
    assert (status, body["error"]["code"]) == (400, "invalid_payload")
    assert "12" in body["error"]["message"]
    foreign = mc.wrap_with_password(mc.generate_key_pair(), new)
    status, body = await change(srv, cookie, csrf, {"old_password": old, "new_password": new,
                                                    "key": foreign})
    assert (status, body["error"]["code"]) == (409, "conflict")
    wrong_type = mc.wrap_with_password(key, new, "team-key")
    status, _ = await change(srv, cookie, csrf, {"old_password": old, "new_password": new,
                                                 "key": wrong_type})
    assert status == 400
    hash_now, record_now = stored(srv, acct.username)
    assert hash_now == hash_before and record_now["salt"] == record["salt"]  # nothing stored
    assert audit_rows(srv, "account.password_change") == []
    assert [r["actor"] for r in audit_rows(srv, "login.failed")] == [acct.username]

    # The change: the new hash and the rewrapped record, the same kid.
    status, body = await change(srv, cookie, csrf, {"old_password": old, "new_password": new,
                                                    "key": rewrapped})
    assert status == 200 and body == {"ok": True, "key": True, "sessions_ended": 1}, body
    hash_after, record_after = stored(srv, acct.username)
    assert hash_after != hash_before
    assert record_after["_kid"] == kid and record_after["salt"] == rewrapped["salt"]
    keys = ok(await aster.call("mailbox:keys", {}))["key"]
    assert keys == rewrapped and keys["kid"] == kid and keys["salt"] != record["salt"]
    opened = mc.unwrap_with_password(keys, new)
    assert mc.encode_public_key(opened) == mc.encode_public_key(key)
    with pytest.raises(InvalidTag):
        mc.unwrap_with_password(keys, old)
    rows = audit_rows(srv, "account.password_change")
    assert [(r["actor"], json.loads(r["detail"])) for r in rows] == [
        (acct.username, {"key": True, "sessions_ended": 1})]
    assert old not in str(rows) and new not in str(rows)

    # This session stays; the other login has ended; the new password logs in, the old not.
    assert (await http_get(srv, "/console/password", cookie))[0] == 200
    status, _, headers = await http_get(srv, "/console", other_cookie)
    assert status == 302 and headers["Location"] == "/console/login"
    status, *_ = await console_login(srv.base_url, acct.username, old, acct.next_totp(),
                                     TEST_USER_AGENT)
    assert status == 401
    status, *_ = await console_login(srv.base_url, acct.username, new, acct.next_totp(),
                                     TEST_USER_AGENT)
    assert status == 200


async def test_every_role_changes_its_password_and_guesses_are_throttled(
    fresh_server: ServerProcess,
) -> None:
    srv = fresh_server
    acct = srv.add_user(role="supervisor")
    cookie = await login_cookie(srv, acct)
    csrf, record = await password_page(srv, cookie)
    assert record is None  # no key record: nothing to rewrap
    new = "en helt annan lång fras"
    status, body = await change(srv, cookie, csrf, {"old_password": acct.password,
                                                    "new_password": new})
    assert status == 200 and body["key"] is False
    status, body = await change(srv, cookie, csrf, {"old_password": new,
                                                    "new_password": "x" * 257})
    assert (status, body["error"]["code"]) == (400, "invalid_payload")
    assert "256" in body["error"]["message"]
    # Wrong old passwords count with the logins: after five, even the right one waits.
    for _ in range(5):
        assert (await change(srv, cookie, csrf, {"old_password": "gissning-" * 2,
                                                 "new_password": new + "!"}))[0] == 401
    status, body = await change(srv, cookie, csrf, {"old_password": new,
                                                    "new_password": new + "!"})
    assert (status, body["error"]["code"]) == (429, "rate_limited")
    status, *_ = await console_login(srv.base_url, acct.username, new, acct.next_totp(),
                                     TEST_USER_AGENT)
    assert status == 429


async def admin_post(srv: ServerProcess, cookie: str, path: str) -> int:
    async with http_session(cookie) as http:
        async with http.get(f"{srv.base_url}/console/admin") as resp:
            csrf = CSRF_FIELD.search(await resp.text()).group(1)
        async with http.post(f"{srv.base_url}{path}", data={"csrf_token": csrf},
                             allow_redirects=False) as resp:
            return resp.status


async def test_an_admin_recovers_a_departed_counselors_mailbox_with_the_team_key(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    srv = fresh_server
    team = await set_team_key(srv)
    aster = await make_counselor(srv, display_name="Aster Nord")
    aster_key = await give_key(aster)
    aster_name = aster.account.username  # type: ignore[attr-defined]

    # A visitor writes; Aster answers (the mailbox becomes hers); the visitor writes again.
    visitor = await make_visitor(srv)
    ack, box = await create_mailbox(visitor)
    ok(ack)
    first = "Jag behöver hjälp, kan ni svara här?"
    ok(await visitor.call("mailbox:send", {"locator": box.locator, "message": box.seal(first)}))
    read = ok(await aster.call("mailbox:read", {"mailbox_id": box.mailbox_id}))
    answer = "Vi finns här. Skriv när det är lugnt."
    ok(await aster.call("mailbox:reply", {"mailbox_id": box.mailbox_id,
                                          "message": counselor_seal(read, answer)}))
    box.recipients = ok(await visitor.call("mailbox:recipients",
                                           {"locator": box.locator}))["recipients"]
    second = "Tack. Det blev värre i helgen."
    ok(await visitor.call("mailbox:send", {"locator": box.locator, "message": box.seal(second)}))
    texts = [first, answer, second]

    # Aster leaves: an admin disables her account. Birk gets a key afterwards and can
    # read none of the old messages.
    admin = await make_counselor(srv, role="admin")
    assert await admin_post(srv, admin.session_cookie,
                            f"/console/admin/accounts/{aster_name}/disable") == 303
    birk = await make_counselor(srv, display_name="Birk Syd")
    birk_key = await give_key(birk)
    birk_name = birk.account.username  # type: ignore[attr-defined]
    assert error_code(await birk.call("mailbox:read", {"mailbox_id": box.mailbox_id})) \
        == "forbidden"

    # The admin lists every mailbox, reads the envelopes, and rewraps with the team key.
    listed = ok(await admin.call("mailbox:list", {}))["mailboxes"]
    assert [(m["mailbox_id"], m["assigned"]) for m in listed] == [(box.mailbox_id, aster_name)]
    staff = ok(await admin.call("mailbox:staff", {}))["staff"]
    assert [s["username"] for s in staff] == [birk_name]  # the disabled account is gone
    envelopes = ok(await admin.call("mailbox:read", {"mailbox_id": box.mailbox_id}))["messages"]
    assert len(envelopes) == 3
    for env in envelopes:
        with pytest.raises(mc.NotARecipient):
            mc.open_message(env, box.mailbox_id, birk_key)
    birk_pub = staff[0]["pubkey"]
    entries = [mc.rewrap_for(env, box.mailbox_id, team, birk_pub) for env in envelopes]
    wrong = [mc.rewrap_for(envelopes[0], box.mailbox_id, team,
                           mc.encode_public_key(mc.generate_key_pair()))]
    assert error_code(await admin.call("mailbox:transfer", {
        "mailbox_id": box.mailbox_id, "to": birk_name, "entries": wrong})) == "invalid_payload"
    assert error_code(await birk.call("mailbox:transfer", {
        "mailbox_id": box.mailbox_id, "to": birk_name, "entries": entries})) == "forbidden"
    ok(await admin.call("mailbox:transfer", {"mailbox_id": box.mailbox_id, "to": birk_name,
                                             "entries": entries}))

    # Birk now holds the mailbox and reads every old message with his own key.
    mine = ok(await birk.call("mailbox:list", {}))["mailboxes"]
    assert [(m["mailbox_id"], m["mine"]) for m in mine] == [(box.mailbox_id, True)]
    got = ok(await birk.call("mailbox:read", {"mailbox_id": box.mailbox_id}))
    assert [mc.open_message(e, box.mailbox_id, birk_key)["text"] for e in got["messages"]] \
        == texts
    # The departed counselor's entries went with the transfer; the team's stay.
    aster_kid = mc.key_id(mc.encode_public_key(aster_key))
    assert all(aster_kid not in {k["kid"] for k in e["keys"]} for e in got["messages"])
    assert all(mc.open_message(e, box.mailbox_id, team) for e in got["messages"])
    rows = audit_rows(srv, "mailbox.recover")
    admin_name = admin.account.username  # type: ignore[attr-defined]
    assert [(r["actor"], r["target"]) for r in rows] == [(admin_name, birk_name)]
    assert box.mailbox_id not in str(rows)
    # The visitor's next message is for Birk (and the team), not for the departed one.
    recipients = ok(await visitor.call("mailbox:recipients", {"locator": box.locator}))
    kids = {r["kid"] for r in recipients["recipients"]}
    assert mc.key_id(birk_pub) in kids and aster_kid not in kids
