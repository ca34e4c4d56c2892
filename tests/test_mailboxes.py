"""Mailboxes and return codes (docs/protocol.md E12) against the real server, with the
independent Python clients: create, answer, open with the code, transfer, delete."""

from __future__ import annotations

import asyncio
import sqlite3
import time
from pathlib import Path
from typing import Any

import mailbox_client as mc
from mailbox_steps import (
    counselor_seal,
    create_mailbox,
    give_key,
    mailbox_pow,
    open_mailbox,
    set_team_key,
)
from protocol_client import error_code, ok
from sqlalchemy.ext.asyncio import AsyncEngine
from support import (
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    close_held_chats,
    redis_holders,
    server_pair,
)

from tillit.chat_server.mailbox_store import MailboxStore
from tillit.counselor_console.purge import run_purge

pytest_plugins = ["durable_fixtures"]
MAILBOX_TABLES = ("mailboxes", "mailbox_messages", "mailbox_reads", "mailbox_notes")


def rows_of(srv: ServerProcess, table: str) -> list[tuple]:
    with sqlite3.connect(srv.data_dir / "tillit.sqlite3") as conn:
        return conn.execute(f"SELECT * FROM {table}").fetchall()  # noqa: S608 - test names


async def test_without_a_team_key_a_mailbox_cannot_be_made(
    fresh_server: ServerProcess, make_visitor: MakeVisitor
) -> None:
    visitor = await make_visitor(fresh_server)
    ack, _ = await create_mailbox(visitor)
    assert error_code(ack) == "unavailable"
    assert rows_of(fresh_server, "mailboxes") == []


async def test_the_whole_path_from_create_to_delete(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    srv = fresh_server
    team = await set_team_key(srv)
    aster = await make_counselor(srv, display_name="Aster Nord")
    birk = await make_counselor(srv, display_name="Birk Syd")
    aster_key, birk_key = await give_key(aster), await give_key(birk)
    keys_ack = ok(await aster.call("mailbox:keys", {}))
    assert keys_ack["key"]["kid"] == mc.key_id(mc.encode_public_key(aster_key))
    assert keys_ack["team"]["kid"] == mc.key_id(mc.encode_public_key(team))

    # A visitor makes a mailbox (outside any chat) and leaves a message for whoever answers.
    visitor = await make_visitor(srv)
    ack, box = await create_mailbox(visitor)
    ok(ack)
    assert box is not None and ack["mailbox_id"] == box.mailbox_id and ack["idle_days"] == 30
    roles = sorted(r["role"] for r in ack["recipients"])
    assert roles == ["counselor", "counselor", "mailbox", "team"]  # unassigned: every key
    first = "Hej, jag kan inte prata hemma. Kan ni svara här?"
    sent = ok(await visitor.call("mailbox:send", {"locator": box.locator,
                                                  "message": box.seal(first)}))
    assert sent["seq"] == 1 and sent["ts"] % 60 == 0
    # Only the socket that opened the mailbox may write to it.
    stranger = await make_visitor(srv)
    assert error_code(await stranger.call("mailbox:send", {
        "locator": box.locator, "message": box.seal("x")})) == "not_found"

    # Both counselors see it, unassigned, with one unread message.
    for c in (aster, birk):
        listed = ok(await c.call("mailbox:list", {}))["mailboxes"]
        assert [(m["mailbox_id"], m["mine"], m["unread"]) for m in listed] == [
            (box.mailbox_id, False, 1)]
    read = ok(await aster.call("mailbox:read", {"mailbox_id": box.mailbox_id}))
    assert mc.open_message(read["messages"][0], box.mailbox_id, aster_key)["text"] == first
    assert mc.open_message(read["messages"][0], box.mailbox_id, team)["text"] == first
    assert ok(await aster.call("mailbox:list", {}))["mailboxes"][0]["unread"] == 0

    # Aster answers: the mailbox becomes hers, and the open socket is told at once.
    answer = "Hej! Jag heter Aster. Du kan skriva här när du vill."
    ok(await aster.call("mailbox:reply", {"mailbox_id": box.mailbox_id,
                                          "message": counselor_seal(read, answer)}))
    pushed = await visitor.wait_for_event("mailbox:message")
    assert box.read(pushed["message"])["text"] == answer
    # Birk now may neither read nor see it; his stale seal is refused too.
    assert ok(await birk.call("mailbox:list", {}))["mailboxes"] == []
    assert error_code(await birk.call("mailbox:read",
                                      {"mailbox_id": box.mailbox_id})) == "forbidden"
    # A time proposal, stored as such.
    at = int(time.time()) + 86_400
    proposal = counselor_seal(read, "Torsdag kl 18?", "time_proposal", at=at, minutes=30)
    ok(await aster.call("mailbox:propose_time", {"mailbox_id": box.mailbox_id,
                                                 "message": proposal}))
    # Seals must be for the current recipients: Birk is no longer one of the visitor's.
    assert error_code(await visitor.call("mailbox:send", {
        "locator": box.locator, "message": box.seal("gammal lista")})) == "conflict"

    # Later, a fresh socket enters the code: reads everything and who answers.
    await visitor.disconnect()
    again = await make_visitor(srv)
    opened, box2 = await open_mailbox(again, box.code)
    ok(opened)
    assert opened["mailbox"]["counselor_name"] == "Aster Nord"
    bodies = [box2.read(m) for m in opened["messages"]]
    assert [b["text"] for b in bodies] == [first, answer, "Torsdag kl 18?"]
    assert [m["kind"] for m in opened["messages"]] == ["message", "message", "proposal"]
    assert bodies[2]["at"] == at and bodies[2]["minutes"] == 30
    ok(await again.call("mailbox:send", {"locator": box2.locator,
                                         "message": box2.seal("Torsdag passar.")}))

    # A wrong code answers exactly as an absent one: there is no "wrong code".
    wrong, _ = await open_mailbox(again, mc.generate_code())
    assert wrong == {"ok": False, "error": {"code": "not_found",
                                            "message": "no mailbox for this code"}}

    # Case notes: the author's own, sealed at rest.
    note = ok(await aster.call("mailbox:note_add", {"mailbox_id": box.mailbox_id,
                                                    "text": "Vill prata torsdagar."}))
    assert note["note"]["text"] == "Vill prata torsdagar."
    assert [n["text"] for n in ok(await aster.call(
        "mailbox:note_list", {"mailbox_id": box.mailbox_id}))["notes"]] == ["Vill prata torsdagar."]
    assert ok(await birk.call("mailbox:note_list", {"mailbox_id": box.mailbox_id}))["notes"] == []

    # Aster transfers the mailbox to Birk, rewrapping every message for his key.
    staff = ok(await aster.call("mailbox:staff", {}))["staff"]
    birk_pub = next(s["pubkey"] for s in staff if s["username"] == birk.account.username)
    read = ok(await aster.call("mailbox:read", {"mailbox_id": box.mailbox_id}))
    entries = [mc.rewrap_for(m, box.mailbox_id, aster_key, birk_pub) for m in read["messages"]]
    assert error_code(await aster.call("mailbox:transfer", {
        "mailbox_id": box.mailbox_id, "to": aster.account.username,
        "entries": entries})) == "invalid_payload"
    ok(await aster.call("mailbox:transfer", {"mailbox_id": box.mailbox_id,
                                             "to": birk.account.username, "entries": entries}))
    listed = ok(await birk.call("mailbox:list", {}))["mailboxes"]
    assert [(m["mailbox_id"], m["mine"]) for m in listed] == [(box.mailbox_id, True)]
    read_b = ok(await birk.call("mailbox:read", {"mailbox_id": box.mailbox_id}))
    assert [mc.open_message(m, box.mailbox_id, birk_key)["text"] for m in read_b["messages"]] \
        == [first, answer, "Torsdag kl 18?", "Torsdag passar."]

    # Nothing stored holds the code, the locator or a text.
    data = b"".join(p.read_bytes() for p in srv.data_files())
    for secret in (box.locator.encode(), box.code, mc.format_code(box.code).encode(),
                   first.encode(), answer.encode()):
        assert secret not in data
    assert box.locator not in srv.log_text() and box.mailbox_id not in srv.log_text()

    # The visitor deletes everything with the code; the counselor is told.
    ok(await again.call("mailbox:delete", {"locator": box2.locator}))
    gone = await birk.wait_for_event("mailbox:gone")
    assert gone == {"mailbox_id": box.mailbox_id}
    for table in MAILBOX_TABLES:
        assert rows_of(srv, table) == [], table
    assert ok(await birk.call("mailbox:list", {}))["mailboxes"] == []
    reopened, _ = await open_mailbox(await make_visitor(srv), box.code)
    assert error_code(reopened) == "not_found"
    data = b"".join(p.read_bytes() for p in srv.data_files())
    assert box.mailbox_id.encode() not in data


async def test_guessing_is_throttled_per_mailbox_id_whether_it_exists_or_not(
    tmp_path, make_visitor: MakeVisitor
) -> None:
    from support import start_server as _start_server

    srv = _start_server(tmp_path, {"TILLIT_CONTINUITY_OPEN_PER_ID": "3",
                                   "TILLIT_CONTINUITY_POW_FAIL_STEPS": "3:10"})
    try:
        await set_team_key(srv)
        visitor = await make_visitor(srv)
        ack, box = await create_mailbox(visitor)  # the first of three for this id
        ok(ack)
        absent = mc.generate_code()
        for _ in range(2):
            ok((await open_mailbox(visitor, box.code))[0])
        assert ok(await visitor.call("pow:challenge", {"for": "mailbox"}))["bits"] == 8
        for _ in range(3):
            assert error_code((await open_mailbox(visitor, absent))[0]) == "not_found"
        # Failed opens over the whole service make every further guess dearer.
        assert ok(await visitor.call("pow:challenge", {"for": "mailbox"}))["bits"] == 10
        assert ok(await visitor.call("pow:challenge", {}))["bits"] == 8  # chats unchanged
        # Past the limit: the same answer for the existing mailbox and the absent one.
        assert error_code((await open_mailbox(visitor, box.code))[0]) == "rate_limited"
        assert error_code((await open_mailbox(visitor, absent))[0]) == "rate_limited"
        # Without work nothing is looked up at all; a solution counts once.
        assert error_code(await visitor.call("mailbox:open", {
            "locator": mc.derive(absent).locator_b64, "pow": None})) == "pow_required"
        solved = await mailbox_pow(visitor)
        other = mc.derive(mc.generate_code()).locator_b64
        assert error_code(await visitor.call("mailbox:open",
                                             {"locator": other, "pow": solved})) == "not_found"
        assert error_code(await visitor.call("mailbox:open",
                                             {"locator": other, "pow": solved})) == "pow_reused"
    finally:
        srv.stop()


async def test_a_message_can_be_left_while_the_service_is_closed(
    tmp_path, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    from support import start_server as _start_server

    srv = _start_server(tmp_path, {f"TILLIT_HOURS_{day}": ""
                                   for day in ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")})
    try:
        await set_team_key(srv)
        counselor = await make_counselor(srv)
        await give_key(counselor)
        visitor = await make_visitor(srv)
        assert error_code(await visitor.start()) == "closed"
        ack, box = await create_mailbox(visitor)
        ok(ack)
        ok(await visitor.call("mailbox:send", {"locator": box.locator,
                                               "message": box.seal("Ni har stängt.")}))
        update = await counselor.wait_for_event("mailbox:update")
        assert update["mailbox"]["mailbox_id"] == box.mailbox_id
        assert update["mailbox"]["unread"] == 1
    finally:
        srv.stop()


async def test_expiry_deletes_idle_mailboxes_with_their_notes(durable: AsyncEngine) -> None:
    store = MailboxStore(durable, ["counselor"])
    key = mc.generate_key_pair()
    now = time.time()
    for name, created in (("old", now - 31 * 86_400), ("new", now - 29 * 86_400)):
        secrets = mc.derive(mc.generate_code())
        assert await store.create(secrets.mailbox_id, mc.encode_public_key(key),
                                  mc.wrap_mailbox_key(key, secrets), None, created)
        envelope = mc.seal_message(secrets.mailbox_id, "v2c", mc.make_body(name),
                                   [mc.encode_public_key(key)])
        assert await store.add_message(secrets.mailbox_id, envelope, "message", 200, created)
        await store.add_note(secrets.mailbox_id, "counselor_aster", b"n" * 12, b"c" * 32, created)
        if name == "old":
            old_id = secrets.mailbox_id
    counts = await run_purge(durable, 30, 3600, now=now, mailbox_idle_days=30)
    assert counts["mailboxes"] == 1
    assert await store.get(old_id) is None
    assert await store.notes_of(old_id, "counselor_aster") == []
    assert await store.messages(old_id) == ([], False)
    assert len(await store.idle_since("9999-12-31")) == 1  # the new one stays


async def test_a_retried_message_is_stored_once_and_a_full_mailbox_says_too_large(
    durable: AsyncEngine,
) -> None:
    store = MailboxStore(durable, ["counselor"])
    key = mc.generate_key_pair()
    secrets = mc.derive(mc.generate_code())
    await store.create(secrets.mailbox_id, mc.encode_public_key(key),
                       mc.wrap_mailbox_key(key, secrets), None)
    envelope = mc.seal_message(secrets.mailbox_id, "v2c", mc.make_body("a"),
                               [mc.encode_public_key(key)])
    first = await store.add_message(secrets.mailbox_id, envelope, "message", 2)
    again = await store.add_message(secrets.mailbox_id, envelope, "message", 2)
    assert first[0] == again[0] == 1 and again[2] is False
    other = mc.seal_message(secrets.mailbox_id, "v2c", mc.make_body("b"),
                            [mc.encode_public_key(key)])
    assert (await store.add_message(secrets.mailbox_id, other, "message", 2))[0] == 2
    third = mc.seal_message(secrets.mailbox_id, "v2c", mc.make_body("c"),
                            [mc.encode_public_key(key)])
    assert await store.add_message(secrets.mailbox_id, third, "message", 2) is None
    await asyncio.sleep(0)



async def answered_mailbox(srv: ServerProcess, make_visitor: MakeVisitor,
                           make_counselor: MakeCounselor, question: str, answer: str,
                           names: tuple[str, ...] = (), staff_on: ServerProcess | None = None,
                           ) -> tuple[Any, Any, Any, Any]:
    """Two counselors with keys (connected to `staff_on`, else `srv`); a visitor's
    mailbox, made on `srv`, whose message the first answered."""
    await set_team_key(srv)
    first, second = [await make_counselor(staff_on or srv,
                                          **({"display_name": n} if n else {}))
                     for n in (names or (None, None))]
    await give_key(first)
    await give_key(second)
    visitor = await make_visitor(srv)
    ack, box = await create_mailbox(visitor)
    ok(ack)
    ok(await visitor.call("mailbox:send", {"locator": box.locator,
                                           "message": box.seal(question)}))
    read = ok(await first.call("mailbox:read", {"mailbox_id": box.mailbox_id}))
    ok(await first.call("mailbox:reply", {"mailbox_id": box.mailbox_id,
                                          "message": counselor_seal(read, answer)}))
    return first, second, visitor, box

async def test_a_returning_contact_reaches_the_mailbox_counselor_first(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    """Also run with TILLIT_TEST_STORE=redis: the flags live in the ephemeral store."""
    srv = fresh_server
    aster, birk, visitor, box = await answered_mailbox(
        srv, make_visitor, make_counselor, "Hej igen", "Välkommen",
        names=("Aster Nord", "Birk Syd"))
    ok(await aster.call("mailbox:note_add", {"mailbox_id": box.mailbox_id,
                                             "text": "Pratade om skolan."}))
    await visitor.disconnect()

    back = await make_visitor(srv)
    # A locator this socket has not opened starts nothing.
    assert error_code(await back.start(mailbox=box.locator)) == "not_found"
    ok((await open_mailbox(back, box.code))[0])
    ok(await back.start(mailbox=box.locator))
    queued = ok(await birk.queue_list())["queue"]
    assert [(q["chat_id"], q.get("returning")) for q in queued] == [(back.chat_id, True)]
    # Reserved for Aster while she is online: Birk's "take next" passes it by.
    assert error_code(await birk.take_next()) == "not_found"
    taken = ok(await aster.take_next())
    assert taken["chat_id"] == back.chat_id
    assert taken["meta"]["returning"] is True
    assert taken["meta"]["mailbox_id"] == box.mailbox_id
    assert [n["text"] for n in taken["meta"]["mailbox_notes"]] == ["Pratade om skolan."]
    # After a reload (`chat:mine`) Aster sees the same: the link and her notes.
    [mine] = ok(await aster.mine())["chats"]
    assert mine["meta"]["mailbox_id"] == box.mailbox_id
    assert [n["text"] for n in mine["meta"]["mailbox_notes"]] == ["Pratade om skolan."]
    await back.wait_assigned()
    ok(await aster.send(back.chat_id, "Hej, det är Aster igen."))
    assert (await back.receive()).text == "Hej, det är Aster igen."


async def test_a_returning_contact_goes_to_the_queue_when_the_counselor_is_away(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    srv = fresh_server
    aster, birk, visitor, box = await answered_mailbox(
        srv, make_visitor, make_counselor, "Hallå", "Hej")
    await aster.disconnect()
    await asyncio.sleep(0.2)
    ok(await visitor.start(mailbox=box.locator))
    taken = ok(await birk.take_next())
    assert taken["chat_id"] == visitor.chat_id
    # Birk sees a returning contact, but not whose mailbox: that is Aster's case.
    assert taken["meta"]["returning"] is True and taken["meta"]["mailbox_id"] is None
    assert "mailbox_notes" not in taken["meta"]


async def start_returning(srv: ServerProcess, make_visitor: MakeVisitor, box: Any) -> Any:
    """A fresh visitor socket on `srv` opens the mailbox with its code and starts a chat."""
    back = await make_visitor(srv)
    ok((await open_mailbox(back, box.code))[0])
    ok(await back.start(mailbox=box.locator))
    return back


async def test_a_returning_chat_started_on_one_process_is_known_on_the_other(
    tmp_path: Path, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    """Two processes on one Redis (issue 15): the visitor starts on A, staff accept on B.
    Only the mailbox's own counselor learns its id and gets their notes; the link
    lives in the chat's Redis hash and is gone once the chat has ended."""
    with server_pair(tmp_path) as pair:
        a, b = pair.servers
        aster, birk, visitor, box = await answered_mailbox(
            a, make_visitor, make_counselor, "Hej igen", "Välkommen",
            names=("Aster Nord", "Birk Syd"), staff_on=b)
        ok(await aster.call("mailbox:note_add", {"mailbox_id": box.mailbox_id,
                                                 "text": "Pratade om skolan."}))
        await visitor.disconnect()

        # A colleague accepts it: a returning contact, but not whose mailbox.
        back = await start_returning(a, make_visitor, box)
        assert await redis_holders(f"{pair.prefix}:*", box.mailbox_id) == [
            f"{pair.prefix}:chat:{back.chat_id}"]
        taken = ok(await birk.accept(back.chat_id))
        assert taken["meta"]["returning"] is True and taken["meta"]["mailbox_id"] is None
        assert "mailbox_notes" not in taken["meta"]
        await close_held_chats(birk)
        assert await redis_holders(f"{pair.prefix}:*", box.mailbox_id) == []

        # The mailbox's counselor accepts it on the other process: id and own notes.
        again = await start_returning(a, make_visitor, box)
        taken = ok(await aster.accept(again.chat_id))
        assert taken["meta"]["returning"] is True
        assert taken["meta"]["mailbox_id"] == box.mailbox_id
        assert [n["text"] for n in taken["meta"]["mailbox_notes"]] == ["Pratade om skolan."]
        # The visitor ends it: the chat is kept for the closing form, the link is not.
        ok(await again.end())
        await aster.wait_for_event("chat:ended", wait_s=10)
        assert await redis_holders(f"{pair.prefix}:*", box.mailbox_id) == []
        await close_held_chats(aster)
        assert await redis_holders(f"{pair.prefix}:*", box.mailbox_id) == []


async def test_take_next_on_another_process_prefers_the_mailbox_counselor(
    tmp_path: Path, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    """The visitor's process (A) sees that the mailbox's counselor is online on B (the
    presence stamps), so the chat is reserved for them: a colleague's "take next" on B
    passes it by, theirs takes it with the mailbox id and their notes."""
    with server_pair(tmp_path) as pair:
        a, b = pair.servers
        aster, birk, visitor, box = await answered_mailbox(
            a, make_visitor, make_counselor, "Hallå", "Hej",
            names=("Aster Nord", "Birk Syd"), staff_on=b)
        ok(await aster.call("mailbox:note_add", {"mailbox_id": box.mailbox_id,
                                                 "text": "Vill prata på kvällen."}))
        await visitor.disconnect()
        back = await start_returning(a, make_visitor, box)
        assert error_code(await birk.take_next()) == "not_found"
        taken = ok(await aster.take_next())
        assert taken["chat_id"] == back.chat_id
        assert taken["meta"]["mailbox_id"] == box.mailbox_id
        assert [n["text"] for n in taken["meta"]["mailbox_notes"]] == ["Vill prata på kvällen."]
        await close_held_chats(aster)
        assert await redis_holders(f"{pair.prefix}:*", box.mailbox_id) == []


async def test_statistics_count_returning_contacts_and_mailbox_messages_without_ids(
    durable: AsyncEngine,
) -> None:
    from datetime import date

    from sqlalchemy import text

    from tillit.counselor_console import stats, stats_facts

    store = MailboxStore(durable, ["counselor"])
    key = mc.generate_key_pair()
    ids = []
    for n in range(6):
        secrets = mc.derive(mc.generate_code())
        ids.append(secrets.mailbox_id)
        await store.create(secrets.mailbox_id, mc.encode_public_key(key),
                           mc.wrap_mailbox_key(key, secrets), None)
        envelope = mc.seal_message(secrets.mailbox_id, "v2c", mc.make_body(str(n)),
                                   [mc.encode_public_key(key)])
        await store.add_message(secrets.mailbox_id, envelope, "message", 200)
    reply = mc.seal_message(ids[0], "c2v", mc.make_body("svar"), [mc.encode_public_key(key)])
    await store.add_message(ids[0], reply, "message", 200)
    for returning in [True] * 6 + [False] * 7:
        await stats_facts.record(durable, {"returning_contact": returning, "answered": 1})
    today = date.today()
    counts = await stats_facts.mailbox_counts_between(durable, today, today)
    assert counts == {"created": 6, "messages_v2c": 6, "messages_c2v": 1}
    report = stats.build_report(await stats_facts.facts_between(durable, today, today),
                                today, today, mailbox_counts=counts)
    rows = report.rows()
    assert ("returning", "yes", "6") in rows and ("returning", "no", "7") in rows
    assert ("mailbox", "created", "6") in rows and ("mailbox", "messages_c2v", "<5") in rows
    # No statistics row names a mailbox.
    async with durable.connect() as conn:
        for table in ("stats_facts", "mailbox_counts"):
            dump = repr((await conn.execute(text(f"SELECT * FROM {table}"))).all())  # noqa: S608
            assert not any(i in dump for i in ids), table


async def test_the_servers_expiry_tells_open_sockets_and_the_holder(durable: AsyncEngine) -> None:
    from tillit.chat_server.mailboxes import Counters, MailboxService, expire_idle

    pushed: list[tuple[str, dict, str, str]] = []

    async def emit(event: str, data: dict, room: str, namespace: str) -> None:
        pushed.append((event, data, room, namespace))

    store = MailboxStore(durable, ["counselor"])
    service = MailboxService(store, None, emit, Counters(), idle_days=30, max_messages=200,  # type: ignore[arg-type]
                             pow_bits_base=8, pow_fail_steps=[], pow_max_bits=24,
                             open_per_id=10, open_window_s=3600)
    key = mc.generate_key_pair()
    secrets = mc.derive(mc.generate_code())
    await store.create(secrets.mailbox_id, mc.encode_public_key(key),
                       mc.wrap_mailbox_key(key, secrets), None, time.time())
    assert await expire_idle(service, time.time() + 29 * 86_400) == 0
    assert await expire_idle(service, time.time() + 31 * 86_400) == 1
    assert await store.get(secrets.mailbox_id) is None
    assert {(e, r, ns) for e, _, r, ns in pushed} == {
        ("mailbox:gone", f"mailbox:{secrets.mailbox_id}", "/visitor"),
        ("mailbox:gone", "staff", "/counselor")}


async def test_a_mailbox_made_in_a_chat_belongs_to_its_counselor(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    from protocol_client import open_chat

    srv = fresh_server
    await set_team_key(srv)
    aster = await make_counselor(srv)
    birk = await make_counselor(srv)
    aster_key = await give_key(aster)
    await give_key(birk)
    visitor = await make_visitor(srv)
    chat_id = await open_chat(visitor, aster, lang="sv")
    # Another socket cannot name this chat.
    stranger = await make_visitor(srv)
    assert error_code((await create_mailbox(stranger, chat_id))[0]) == "forbidden"
    ack, box = await create_mailbox(visitor, chat_id)
    ok(ack)
    told = await aster.wait_for_event("chat:mailbox")
    assert told == {"chat_id": chat_id, "mailbox_id": box.mailbox_id}
    kids = {r["kid"] for r in ack["recipients"] if r["role"] == "counselor"}
    assert kids == {mc.key_id(mc.encode_public_key(aster_key))}  # not every counselor's
    ok(await visitor.call("mailbox:send", {"locator": box.locator,
                                           "message": box.seal("Tack för i dag")}))
    assert [m["mine"] for m in ok(await aster.call("mailbox:list", {}))["mailboxes"]] == [True]
    assert ok(await birk.call("mailbox:list", {}))["mailboxes"] == []


def test_shapes_refuse_what_is_not_exactly_e12() -> None:
    from tillit.safety import mailbox_shapes as shapes
    from tillit.safety.errors import ProtocolError

    locator = mc.derive(mc.generate_code()).locator_b64
    code = mc.generate_code()
    assert shapes.locator_to_id("locator", mc.derive(code).locator_b64) == mc.derive(
        code).mailbox_id
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
    # 43 characters carry 258 bits for 256: the last two must be zero (canonical).
    non_canonical = locator[:-1] + alphabet[alphabet.index(locator[-1]) | 1]
    for bad in (locator + "=", locator[:-2], "ö" * 43, non_canonical, None, 5):
        try:
            shapes.locator_to_id("locator", bad)
        except ProtocolError as exc:
            assert exc.code == "invalid_payload"
        else:
            raise AssertionError(f"accepted {bad!r}")
    key = mc.generate_key_pair()
    mailbox_id = mc.derive(mc.generate_code()).mailbox_id
    envelope = mc.seal_message(mailbox_id, "v2c", mc.make_body("x"), [mc.encode_public_key(key)])
    assert shapes.envelope("m", envelope, "v2c")["id"] == envelope["id"]
    for changed, code in (({**envelope, "dir": "c2v"}, "invalid_payload"),
                          ({**envelope, "extra": 1}, "invalid_payload"),
                          ({**envelope, "keys": envelope["keys"] * 2}, "invalid_payload"),
                          ({**envelope, "ct": "A" * 22_000}, "too_large")):
        try:
            shapes.envelope("m", changed, "v2c")
        except ProtocolError as exc:
            assert exc.code == code, changed.keys()
        else:
            raise AssertionError("accepted a changed envelope")
    record = mc.wrap_with_password(key, "lösen", iterations=600_000)
    assert shapes.key_record("r", record)["kid"] == record["kid"]
    for changed in ({**record, "iterations": 599_999}, {**record, "kid": "A" * 22},
                    {**record, "type": "team-key"}):
        try:
            shapes.key_record("r", changed)
        except ProtocolError:
            pass
        else:
            raise AssertionError("accepted a changed record")


async def test_the_store_on_both_databases(durable: AsyncEngine) -> None:
    """What the events do, one query at a time, on SQLite and PostgreSQL alike."""
    from tillit.durable.schema import accounts

    async with durable.begin() as conn:
        for name, disabled in (("counselor_aster", 0), ("counselor_birk", 0),
                               ("counselor_gone", 1)):
            await conn.execute(accounts.insert().values(
                username=name, display_name=name.split("_")[1].title(), role="counselor",
                password_hash="h", totp_secret="s", created_day="2026-12-01",
                disabled=disabled))
    store = MailboxStore(durable, ["counselor"])
    keys = {}
    for name in ("counselor_aster", "counselor_birk", "counselor_gone"):
        keys[name] = mc.generate_key_pair()
        await store.set_key_record(name, mc.wrap_with_password(keys[name], "lösen"))
    assert [s.username for s in await store.staff_keys()] == ["counselor_aster",
                                                              "counselor_birk"]
    assert len(await store.disabled_kids()) == 1
    team = mc.generate_key_pair()
    team_pub = mc.encode_public_key(team)
    await store.set_team(mc.key_id(team_pub), team_pub)
    await store.set_team(mc.key_id(team_pub), team_pub)  # replaced, not doubled
    assert await store.team() == {"kid": mc.key_id(team_pub), "pubkey": team_pub}

    box_key = mc.generate_key_pair()
    secrets = mc.derive(mc.generate_code())
    mid = secrets.mailbox_id
    assert await store.create(mid, mc.encode_public_key(box_key),
                              mc.wrap_mailbox_key(box_key, secrets), None)
    assert not await store.create(mid, mc.encode_public_key(box_key),
                                  mc.wrap_mailbox_key(box_key, secrets), None)
    assert await store.listing("counselor_aster") == []  # no message yet
    pubs = [mc.encode_public_key(k) for k in (box_key, team, keys["counselor_aster"],
                                              keys["counselor_birk"])]
    first = mc.seal_message(mid, "v2c", mc.make_body("hej"), pubs)
    await store.add_message(mid, first, "message", 200)
    listed = await store.listing("counselor_birk")
    assert [(i["mailbox_id"], i["unread"], i["last_dir"]) for i in listed] == [(mid, 1, "v2c")]
    await store.mark_read(mid, "counselor_birk", 1)
    await store.mark_read(mid, "counselor_birk", 1)
    assert (await store.listing("counselor_birk"))[0]["unread"] == 0
    assert (await store.listing("counselor_aster"))[0]["unread"] == 1
    assert await store.assign(mid, "counselor_aster", only_if_unassigned=True)
    assert not await store.assign(mid, "counselor_birk", only_if_unassigned=True)
    assert await store.listing("counselor_birk") == []
    assert (await store.listing("counselor_aster"))[0]["mine"] is True
    entry = mc.rewrap_for(first, mid, keys["counselor_aster"],
                          mc.encode_public_key(keys["counselor_birk"]))
    await store.add_entries(mid, [entry], await store.disabled_kids(), "counselor_birk")
    moved = await store.message(mid, 1)
    assert mc.open_message(moved, mid, keys["counselor_birk"])["text"] == "hej"
    assert (await store.get(mid)).assigned == "counselor_birk"
    await store.add_note(mid, "counselor_birk", b"n" * 12, b"c" * 32, time.time())
    assert await store.delete([mid]) == 1
    assert await store.get(mid) is None and await store.notes_of(mid, "counselor_birk") == []
    assert await store.messages(mid) == ([], False)
