"""A whole chat against the real server: queue, accept, end-to-end messages, typing, close."""

from __future__ import annotations

import asyncio
import re
import time

from protocol_client import b64u_decode, error_code, ok, open_chat
from support import MakeCounselor, MakeVisitor

B64U = re.compile(r"^[A-Za-z0-9_-]+$")
ANSWERS = {
    "lang": "sv",
    "age_group": "13_15",
    "role": "self",
    "topics": ["control"],
    "danger_now": False,
}


def queue_entry(ack: dict, chat_id: str) -> dict | None:
    return next((e for e in ack["queue"] if e["chat_id"] == chat_id), None)


async def test_full_chat(make_visitor: MakeVisitor, make_counselor: MakeCounselor) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()

    start = ok(await visitor.start(**ANSWERS), "chat:start")
    chat_id = start["chat_id"]
    assert B64U.match(chat_id) and len(chat_id) == 22, chat_id
    assert B64U.match(start["resume_token"]) and len(b64u_decode(start["resume_token"])) == 32
    assert isinstance(start["position"], int) and start["position"] >= 1
    assert isinstance(start["est_wait_s"], int | float) and start["est_wait_s"] >= 0

    # The counselor sees the chat with the visitor's answers, but nothing identifying.
    queue = ok(await counselor.queue_list(), "queue:list")
    entry = queue_entry(queue, chat_id)
    assert entry is not None, queue
    for key, value in ANSWERS.items():
        assert entry[key] == value, (key, entry)
    assert isinstance(entry["waiting_s"], int | float) and 0 <= entry["waiting_s"] < 30
    assert "pubkey" not in entry and "resume_token" not in entry

    accept = ok(await counselor.accept(chat_id), "chat:accept")
    assert accept["chat_id"] == chat_id
    assert accept["visitor_pubkey"] == visitor.crypto.pubkey
    assert accept["epoch"] == 1
    for key, value in ANSWERS.items():
        assert accept["meta"][key] == value, (key, accept["meta"])

    assigned = await visitor.wait_assigned()
    assert assigned["epoch"] == 1
    assert assigned["pubkey"] == counselor.chats[chat_id].pubkey
    assert isinstance(assigned["counselor_name"], str) and assigned["counselor_name"]
    # Both screens show the same safety code.
    code = visitor.crypto.safety_code()
    assert re.fullmatch(r"\d{6}", code)
    assert code == counselor.chats[chat_id].safety_code()

    # Accepted chats leave the queue.
    assert queue_entry(ok(await counselor.queue_list()), chat_id) is None

    # Visitor → counselor, decrypted exactly.
    sent = ok(await visitor.send("Hej, jag behöver prata"), "msg:send")
    got = await counselor.receive()
    assert (got.chat_id, got.sender, got.text, got.type) == (
        chat_id, "visitor", "Hej, jag behöver prata", "text"
    )
    assert got.id == sent["id"] and isinstance(got.id, int)
    assert abs(got.ts - time.time() * 1000) < 60_000, got.ts  # server time in ms

    # Counselor → visitor.
    reply = ok(await counselor.send(chat_id, "Jag finns här. Vill du berätta mer?"), "msg:send")
    back = await visitor.receive()
    assert (back.sender, back.text, back.id) == (
        "counselor", "Jag finns här. Vill du berätta mer?", reply["id"]
    )
    third = ok(await visitor.send("Ja, det handlar om min familj."))
    assert (await counselor.receive()).text == "Ja, det handlar om min familj."
    assert sent["id"] < reply["id"] < third["id"]


    # Typing indicators are relayed, each way.
    ok(await visitor.typing(True), "typing")
    t = await counselor.wait_for_event("typing", lambda d: d.get("chat_id") == chat_id)
    assert t["on"] is True
    ok(await counselor.typing(chat_id, True), "typing")
    t = await visitor.wait_for_event("typing", lambda d: d.get("chat_id") == chat_id)
    assert t["on"] is True

    # The counselor closes; the visitor is told who ended it.
    ok(await counselor.close(chat_id, {}), "chat:close")
    ended = await visitor.wait_for_event("chat:ended")
    assert ended["chat_id"] == chat_id and ended["by"] == "counselor"
    # An ended chat takes no more messages.
    after = await visitor.send("Hallå?")
    assert error_code(after) is not None, after

    assert visitor.decrypt_errors == [] and counselor.decrypt_errors == []


async def test_msg_new_goes_to_the_other_side_not_back_to_the_sender(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    """docs/protocol.md E2: the other side gets `msg:new`; the sending socket has its ack."""
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor)
    first = ok(await visitor.send("Ett"))
    reply = ok(await counselor.send(chat_id, "Två"))
    third = ok(await visitor.send("Tre"))
    await visitor.wait_for_event("msg:new", lambda d: d.get("id") == reply["id"])
    await counselor.wait_for_event("msg:new", lambda d: d.get("id") == third["id"])
    assert first["id"] < reply["id"] < third["id"]
    assert [m.text for m in counselor.received_in(chat_id)] == ["Ett", "Tre"]
    assert [m.text for m in visitor.received_in(chat_id)] == ["Två"]
    await asyncio.sleep(0.2)  # an echo, if any, would have come by now
    assert [d["id"] for d in visitor.events_named("msg:new")] == [reply["id"]]
    assert [d["id"] for d in counselor.events_named("msg:new")] == [first["id"], third["id"]]


async def test_two_chats_do_not_cross(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    one, two = await make_visitor(), await make_visitor()
    chat_one = await open_chat(one, counselor, lang="sv", age_group="16_17")
    chat_two = await open_chat(two, counselor, lang="en", age_group="18_25")
    assert chat_one != chat_two
    # Different keys per chat, so different codes are overwhelmingly likely and the
    # counselor holds one key per chat.
    assert counselor.chats[chat_one].pubkey != counselor.chats[chat_two].pubkey

    await asyncio.gather(one.send("från ett"), two.send("från två"))
    got = {m.chat_id: m.text for m in await counselor.receive_n(2)}
    assert got == {chat_one: "från ett", chat_two: "från två"}

    ok(await counselor.send(chat_one, "till ett"))
    ok(await counselor.send(chat_two, "till två"))
    assert (await one.receive()).text == "till ett"
    assert (await two.receive()).text == "till två"
    ok(await counselor.typing(chat_two, True))
    await two.wait_for_event("typing")

    await asyncio.sleep(0.3)  # anything misrouted would have arrived by now
    assert one.drain_inbox() == [] and two.drain_inbox() == []
    for visitor, own, other in ((one, chat_one, chat_two), (two, chat_two, chat_one)):
        for event, data in visitor.events:
            assert other not in repr(data), (event, data)
        assert {m.chat_id for m in visitor.messages.values()} == {own}
    assert not one.events_named("typing")
    assert one.decrypt_errors == [] and two.decrypt_errors == []

    # Closing one leaves the other open.
    ok(await counselor.close(chat_one, {}))
    await one.wait_for_event("chat:ended")
    ok(await two.send("fortfarande här"))
    assert (await counselor.receive()).text == "fortfarande här"
    assert not two.events_named("chat:ended")


async def test_visitor_ends_chat(make_visitor: MakeVisitor, make_counselor: MakeCounselor) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor, lang="sv")
    ok(await visitor.end(), "chat:end")
    ended = await counselor.wait_for_event("chat:ended", lambda d: d.get("chat_id") == chat_id)
    assert ended["by"] == "visitor" and "reason" not in ended
    # The counselor can still file the closing form; sending is refused.
    assert error_code(await counselor.send(chat_id, "Är du kvar?")) is not None


async def test_quick_exit_reason_reaches_counselor(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor)
    ok(await visitor.end(reason="quick_exit"), "chat:end quick_exit")
    ended = await counselor.wait_for_event("chat:ended", lambda d: d.get("chat_id") == chat_id)
    assert ended["by"] == "visitor" and ended.get("reason") == "quick_exit"


async def test_queue_order_danger_first_then_children(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    adult, child, danger = await make_visitor(), await make_visitor(), await make_visitor()
    ok(await adult.start(lang="sv", age_group="over_25", role="worried", danger_now=False))
    await asyncio.sleep(0.05)
    ok(await child.start(lang="sv", age_group="16_17", role="self", danger_now=False))
    await asyncio.sleep(0.05)
    start = ok(await danger.start(lang="sv", age_group="18_25", role="self", danger_now=True))
    assert start["position"] == 1, start

    ids = [e["chat_id"] for e in ok(await counselor.queue_list())["queue"]]
    mine = [i for i in ids if i in {adult.chat_id, child.chat_id, danger.chat_id}]
    assert mine == [danger.chat_id, child.chat_id, adult.chat_id], ids
    assert ids[0] == danger.chat_id, ids

    # The counselor console got the same order pushed, and the adult was told it moved back.
    pushed = await counselor.wait_for_event(
        "queue:update",
        lambda d: danger.chat_id in [e["chat_id"] for e in d.get("queue", [])],
    )
    assert pushed["queue"][0]["chat_id"] == danger.chat_id
    moved = await adult.wait_for_event(
        "queue:update", lambda d: d.get("chat_id") == adult.chat_id and d.get("position") == 3
    )
    assert moved["est_wait_s"] >= 0

    # When the danger chat is taken, everyone moves up.
    await counselor.accept(danger.chat_id)
    await adult.wait_for_event(
        "queue:update", lambda d: d.get("chat_id") == adult.chat_id and d.get("position") == 2
    )
