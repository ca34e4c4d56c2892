"""Dropped connections: the visitor resumes with its token; the counselor re-keys and rejoins."""

from __future__ import annotations

import asyncio
import os

from protocol_client import b64u_encode, error_code, ok, open_chat
from support import MakeCounselor, MakeVisitor


async def test_visitor_resume_gets_missed_messages_once(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="16_17")
    ok(await visitor.send("Jag kanske måste gå snart"))
    await counselor.receive()
    ok(await counselor.send(chat_id, "Okej, säg till"))
    await visitor.receive()
    last_seen = visitor.last_id

    # The visitor's connection drops; the counselor keeps writing.
    await visitor.disconnect()
    texts = ["Är du kvar?", "Du kan skriva när du kan.", "Jag väntar här."]
    acks = [ok(await counselor.send(chat_id, t), "msg:send") for t in texts]
    missed_ids = [a["id"] for a in acks]
    assert missed_ids == sorted(missed_ids) and missed_ids[0] > last_seen

    # A new socket resumes with the token and gets exactly those three, in order.
    res = ok(await visitor.resume(after_id=last_seen), "chat:resume")
    assert res["chat_id"] == chat_id and res["state"] == "active"
    assert res["epoch"] == 1 and res["counselor_pubkey"] == counselor.chats[chat_id].pubkey
    assert [e["id"] for e in res["missed"]] == missed_ids
    assert all(e["from"] == "counselor" and e["chat_id"] == chat_id for e in res["missed"])
    shown = visitor.drain_inbox()
    assert [m.text for m in shown] == texts
    assert visitor.decrypt_errors == []

    # Resuming again from the new last id gives nothing more.
    res2 = ok(await visitor.resume(after_id=missed_ids[-1]), "chat:resume again")
    assert res2["missed"] == [] and res2["state"] == "active"
    await asyncio.sleep(0.2)
    assert visitor.drain_inbox() == []

    # The new socket is the chat's socket now, both ways.
    ok(await counselor.send(chat_id, "Välkommen tillbaka"))
    assert (await visitor.receive()).text == "Välkommen tillbaka"
    ok(await visitor.send("Tack, nu är jag här"))
    assert (await counselor.receive()).text == "Tack, nu är jag här"


async def test_resume_with_unknown_token_is_not_found(make_visitor: MakeVisitor) -> None:
    visitor = await make_visitor()
    ack = await visitor.call(
        "chat:resume", {"resume_token": b64u_encode(os.urandom(32)), "after_id": 0}
    )
    assert error_code(ack) == "not_found", ack
    # A token of a real chat with one character changed is no better.
    ok(await visitor.start(lang="sv"))
    token = visitor.resume_token
    assert token is not None
    wrong = ("A" if token[0] != "A" else "B") + token[1:]
    ack = await visitor.call("chat:resume", {"resume_token": wrong, "after_id": 0})
    assert error_code(ack) == "not_found", ack


async def test_resume_while_queued_then_assigned_on_new_socket(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    ok(await visitor.start(lang="sv", age_group="unknown"))
    await visitor.disconnect()
    res = ok(await visitor.resume(after_id=0), "chat:resume queued")
    assert res["state"] == "queued" and res["counselor_pubkey"] is None
    assert isinstance(res["position"], int) and res["position"] >= 1
    assert res["missed"] == []
    ok(await counselor.accept(visitor.chat_id))
    assigned = await visitor.wait_assigned()
    assert assigned["pubkey"] == counselor.chats[visitor.chat_id].pubkey
    ok(await visitor.send("Hej från nya anslutningen"))
    assert (await counselor.receive()).text == "Hej från nya anslutningen"


async def test_counselor_reload_rekeys_and_gets_missed(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="13_15")
    ok(await visitor.send("Första"))
    await counselor.receive()
    counselor_last = ok(await counselor.send(chat_id, "Svar ett"))["id"]
    await visitor.receive()

    # The counselor's page goes away; the visitor keeps writing.
    await counselor.disconnect()
    during = ["Hallå?", "Försvann du?"]
    during_ids = [ok(await visitor.send(t), "msg:send while counselor away")["id"] for t in during]

    await counselor.reconnect()
    mine = ok(await counselor.mine(), "chat:mine")
    held = {c["chat_id"]: c for c in mine["chats"]}
    assert chat_id in held, mine
    assert held[chat_id]["state"] == "active" and held[chat_id]["epoch"] == 1
    assert held[chat_id]["last_id"] == during_ids[-1]
    assert held[chat_id]["meta"]["age_group"] == "13_15"

    old_pub = counselor.chats[chat_id].pubkey
    rejoin = ok(await counselor.rejoin(chat_id, after_id=counselor_last), "chat:rejoin")
    new_pub = counselor.chats[chat_id].pubkey
    assert new_pub != old_pub
    assert rejoin["epoch"] == 2
    assert rejoin["visitor_pubkey"] == visitor.crypto.pubkey
    assert [e["id"] for e in rejoin["missed"]] == during_ids
    assert [m.text for m in counselor.drain_inbox()] == during

    update = await visitor.wait_for_event("key:update", lambda d: d.get("chat_id") == chat_id)
    assert update == {**update, "pubkey": new_pub, "epoch": 2, "from": "counselor"}
    assert visitor.crypto.epoch == 2
    assert visitor.crypto.safety_code() == counselor.chats[chat_id].safety_code()

    reply = ok(await counselor.send(chat_id, "Jag är tillbaka, förlåt"))
    got = await visitor.receive()
    assert (got.text, got.epoch, got.id) == ("Jag är tillbaka, förlåt", 2, reply["id"])
    ok(await visitor.send("Skönt"))
    got = await counselor.receive()
    assert (got.text, got.epoch) == ("Skönt", 2)
    assert visitor.decrypt_errors == [] and counselor.decrypt_errors == []


async def test_counselor_rejoin_someone_elses_chat_is_refused(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    holder, other = await make_counselor(), await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, holder)
    assert chat_id not in {c["chat_id"] for c in ok(await other.mine())["chats"]}
    ack = await other.rejoin(chat_id, after_id=0)
    assert error_code(ack) in {"forbidden", "not_found"}, ack
    await asyncio.sleep(0.2)
    assert not visitor.events_named("key:update")
    ok(await visitor.send("fortfarande säker"))
    assert (await holder.receive()).text == "fortfarande säker"
    # A counselor who does not hold the chat never sees its traffic.
    await asyncio.sleep(0.2)
    assert not other.events_named("msg:new") and not other.events_named("typing")
