"""Take next, parallel-chat limit, transfer and the grace period, against the real server."""

from __future__ import annotations

import asyncio
import json
import sqlite3

import pytest
from protocol_client import error_code, ok, open_chat
from support import MakeCounselor, MakeVisitor, ServerProcess, server_fixture

tuned_server = server_fixture(
    scope="function",
    doc="A server of its own with the TILLIT_* settings the test asks for (indirect param).")


def audit_of(srv: ServerProcess, action: str) -> list[dict]:
    with sqlite3.connect(srv.data_dir / "tillit.sqlite3") as conn:
        conn.row_factory = sqlite3.Row
        return [dict(r) for r in conn.execute("SELECT * FROM audit WHERE action = ?", (action,))]


async def test_take_next_gives_danger_then_children_then_wait_in_my_languages(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    arabic = await make_counselor(fresh_server, languages="ar")
    v = {name: await make_visitor(fresh_server) for name in
         ("adult_sv", "adult_ar", "child_sv", "child_ar", "danger_sv")}
    ok(await v["adult_sv"].start(lang="sv", age_group="18_25"))
    await asyncio.sleep(0.02)
    ok(await v["adult_ar"].start(lang="ar", age_group="18_25"))
    await asyncio.sleep(0.02)
    ok(await v["child_sv"].start(lang="sv", age_group="13_15"))
    await asyncio.sleep(0.02)
    ok(await v["child_ar"].start(lang="ar", age_group="16_17"))
    await asyncio.sleep(0.02)
    ok(await v["danger_sv"].start(lang="sv", age_group="18_25", danger_now=True))

    order = []
    for _ in range(4):
        ack = ok(await arabic.take_next())
        order.append(next(k for k, x in v.items() if x.chat_id == ack["chat_id"]))
    # Danger now whatever the language; then a child in Arabic before the child in
    # Swedish who waited longer; the parallel limit (4) stops the fifth.
    assert order == ["danger_sv", "child_ar", "child_sv", "adult_ar"], order
    assert error_code(await arabic.take_next()) == "busy"
    assert error_code(await arabic.accept(v["adult_sv"].chat_id)) == "busy"
    # The chat taken is a real one: keys agree and messages flow.
    await v["danger_sv"].wait_assigned()
    chat_id = v["danger_sv"].chat_id
    assert v["danger_sv"].crypto.safety_code() == arabic.chats[chat_id].safety_code()
    ok(await arabic.send(chat_id, "Ring 112 om du är i fara nu."))
    assert (await v["danger_sv"].receive()).text == "Ring 112 om du är i fara nu."
    ok(await arabic.close(chat_id, {}))
    assert ok(await arabic.take_next())["chat_id"] == v["adult_sv"].chat_id
    assert error_code(await arabic.take_next()) in ("busy", "not_found")
    assert len(audit_of(fresh_server, "chat.accept")) == 5


@pytest.mark.parametrize("tuned_server", [{"TILLIT_COUNSELOR_MAX_PARALLEL_CHATS": "1"}],
                         indirect=True)
async def test_parallel_limit_comes_from_config_and_bounds_transfers(
    tuned_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    one, two = await make_counselor(tuned_server), await make_counselor(tuned_server)
    a, b = await make_visitor(tuned_server), await make_visitor(tuned_server)
    chat_a = await open_chat(a, one, lang="sv")
    ok(await b.start(lang="sv"))
    assert error_code(await one.accept(b.chat_id)) == "busy"
    chat_b = ok(await two.accept(b.chat_id))["chat_id"]
    # `two` is full: a transfer to them is refused and changes nothing.
    assert error_code(await one.transfer(chat_a, two.account.username)) == "busy"
    ok(await one.send(chat_a, "still here"))
    ok(await one.close(chat_a, {}))
    ok(await two.close(chat_b, {}))


async def test_transfer_to_a_colleague_rekeys_with_a_new_epoch(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    first, second = await make_counselor(), await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, first, lang="sv", age_group="16_17")
    ok(await first.indicators(chat_id, ["phone_checked"]))
    ok(await visitor.send("före överlämningen"))
    await first.receive()

    online = ok(await first.staff_online())["staff"]
    assert second.account.username in [s["username"] for s in online]
    assert error_code(await first.transfer(chat_id, "nobody_by_that_name")) == "not_found"
    assert error_code(await first.transfer(chat_id, first.account.username)) == (
        "invalid_payload")
    ok(await first.transfer(chat_id, second.account.username))

    returned = await first.wait_for_event("chat:returned", lambda d: d["chat_id"] == chat_id)
    assert returned["why"] == "transfer"
    handed = await second.wait_for_event("chat:transferred", lambda d: d["chat_id"] == chat_id)
    assert handed["report"]["indicators"] == ["phone_checked"]  # the workflow goes along
    assert error_code(await first.send(chat_id, "not mine any more")) == "forbidden"

    rejoin = ok(await second.rejoin(chat_id, after_id=0))
    assert rejoin["epoch"] == 2
    assigned = await visitor.wait_for_event(
        "chat:assigned", lambda d: d["chat_id"] == chat_id and d["epoch"] == 2)
    assert assigned["counselor_name"] == second.account.display_name
    assert second.account.username not in json.dumps(assigned)  # never the login name
    assert visitor.crypto.safety_code() == second.chats[chat_id].safety_code()
    ok(await visitor.send("efter överlämningen"))
    assert (await second.receive()).text == "efter överlämningen"
    ok(await second.send(chat_id, "Jag tar över härifrån."))
    assert (await visitor.receive()).text == "Jag tar över härifrån."
    assert not [e for e in first.events_named("msg:new") if e.get("epoch") == 2]

    [entry] = [e for e in audit_of(server, "chat.transfer") if e["target"] == chat_id]
    assert entry["actor"] == first.account.username
    assert json.loads(entry["detail"]) == {"to": second.account.username}
    ok(await second.decision(chat_id, "no_report", reason="below_threshold"))
    ok(await second.close(chat_id, {}))


async def test_transfer_back_to_the_queue_goes_to_its_head(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor, colleague = await make_counselor(), await make_counselor()
    waiting, held = await make_visitor(), await make_visitor()
    ok(await waiting.start(lang="sv", age_group="13_15"))  # a child, waiting longer
    await asyncio.sleep(0.02)
    ok(await held.start(lang="sv", age_group="18_25"))
    ok(await counselor.accept(held.chat_id))
    await held.wait_assigned()
    ok(await counselor.transfer(held.chat_id, "queue"))
    requeued = await held.wait_for_event("chat:requeued")
    assert requeued["position"] == 1
    queue = [e["chat_id"] for e in ok(await colleague.queue_list())["queue"]]
    assert queue.index(held.chat_id) < queue.index(waiting.chat_id)
    ack = ok(await colleague.accept(held.chat_id))
    assert ack["epoch"] == 2  # never a reused epoch
    await held.wait_for_event("chat:assigned", lambda d: d["epoch"] == 2)
    assert held.crypto.safety_code() == colleague.chats[held.chat_id].safety_code()
    ok(await colleague.close(held.chat_id, {}))
    ok(await colleague.accept(waiting.chat_id))
    ok(await colleague.close(waiting.chat_id, {}))


@pytest.mark.parametrize("tuned_server", [{"TILLIT_COUNSELOR_GRACE_S": "1"}], indirect=True)
async def test_a_lost_counselors_chats_go_back_to_the_head_of_the_queue(
    tuned_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    lost, colleague = await make_counselor(tuned_server), await make_counselor(tuned_server)
    early, visitor = await make_visitor(tuned_server), await make_visitor(tuned_server)
    ok(await early.start(lang="sv", age_group="16_17"))
    chat_id = await open_chat(visitor, lost, lang="sv", age_group="18_25")
    ok(await visitor.send("hallå?"))
    await lost.disconnect()  # the counselor's only socket is gone

    told = await visitor.wait_for_event("chat:requeued", wait_s=12)
    assert told["chat_id"] == chat_id and told["position"] == 1
    queue = ok(await colleague.queue_list())["queue"]
    assert queue[0]["chat_id"] == chat_id, queue
    ack = ok(await colleague.accept(chat_id))
    assert ack["epoch"] == 2
    await visitor.wait_for_event("chat:assigned", lambda d: d["epoch"] == 2)
    ok(await visitor.send("nu igen"))
    assert (await colleague.receive()).text == "nu igen"
    assert audit_of(tuned_server, "chat.requeue")[0]["actor"] == "grace-period"
    # The lost counselor, back, no longer holds it.
    await lost.connect()
    assert ok(await lost.mine())["chats"] == []
    ok(await colleague.close(chat_id, {}))
