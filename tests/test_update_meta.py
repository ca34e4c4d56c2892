"""`chat:update_meta` (docs/protocol.md E3): the optional questions answered in the queue."""

from __future__ import annotations

from protocol_client import error_code, ok
from support import MakeCounselor, MakeVisitor


def entry_of(queue: dict, chat_id: str) -> dict:
    return next(e for e in queue["queue"] if e["chat_id"] == chat_id)


async def test_answers_given_in_the_queue_reach_the_counselors_queue(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    ok(await visitor.start(lang="sv", danger_now=True))
    chat_id = visitor.chat_id
    before = len(counselor.events)
    ok(await visitor.call("chat:update_meta", {
        "chat_id": chat_id, "age_group": "13_15", "gender": "girl", "role": "professional",
        "sector": "school", "contact": "repeat", "topics": ["travel", "marriage"],
    }), "chat:update_meta")
    # Pushed to staff as a queue update, without asking.
    pushed = await counselor.wait_for_event(
        "queue:update",
        lambda d: any(e["chat_id"] == chat_id and e.get("sector") == "school"
                      for e in d["queue"]),
        wait_s=10, start=before,
    )
    entry = entry_of(pushed, chat_id)
    assert entry["age_group"] == "13_15" and entry["contact"] == "repeat"
    assert entry["topics"] == ["travel", "marriage"]
    assert entry["danger_now"] is True and entry["lang"] is None  # lang was not re-sent

    # A role other than professional takes no sector.
    ok(await visitor.call("chat:update_meta", {
        "chat_id": chat_id, "role": "self", "sector": "police", "contact": "first"}))
    entry = entry_of(ok(await counselor.queue_list()), chat_id)
    assert entry["role"] == "self" and entry["sector"] is None and entry["contact"] == "first"

    accept = ok(await counselor.accept(chat_id))
    assert accept["meta"]["contact"] == "first"


async def test_answers_after_the_counselor_joined_go_to_the_holder(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    ok(await visitor.start())
    chat_id = visitor.chat_id
    ok(await counselor.accept(chat_id))
    await visitor.wait_assigned()
    ok(await visitor.call("chat:update_meta", {
        "chat_id": chat_id, "age_group": "over_25", "role": "professional",
        "sector": "health_care"}))
    got = await counselor.wait_for_event("chat:meta", lambda d: d["chat_id"] == chat_id)
    assert got["meta"]["sector"] == "health_care"
    assert got["meta"]["child"] is False
    mine = ok(await counselor.mine())
    meta = next(c["meta"] for c in mine["chats"] if c["chat_id"] == chat_id)
    assert meta["sector"] == "health_care" and meta["age_group"] == "over_25"


async def test_update_meta_refuses_bad_values_other_chats_and_ended_chats(
    make_visitor: MakeVisitor,
) -> None:
    visitor = await make_visitor()
    other = await make_visitor()
    ok(await visitor.start())
    ok(await other.start())
    chat_id = visitor.chat_id
    for bad in ({"sector": "army"}, {"contact": "often"}, {"topics": ["nope"]},
                {"danger_now": False}, {"age_group": 15}):
        ack = await visitor.call("chat:update_meta", {"chat_id": chat_id, **bad})
        assert error_code(ack) == "invalid_payload", (bad, ack)
    ack = await visitor.call("chat:update_meta", {"chat_id": other.chat_id, "role": "self"})
    assert error_code(ack) == "forbidden", ack
    ok(await visitor.end())
    ack = await visitor.call("chat:update_meta", {"chat_id": chat_id, "role": "self"})
    assert error_code(ack) in ("conflict", "not_found", "forbidden"), ack
    ok(await other.end())
