"""The mandatory-reporting workflow and the closing form, against the real server.

DOMAIN.md: a child plus a concern indicator makes a reporting decision required; the
close is refused until it exists; the decision reaches the audit log and the statistics
as categories, and nothing identifying does.
"""

from __future__ import annotations

import json

from protocol_client import error_code, ok, open_chat
from support import TEST_USER_AGENT, MakeCounselor, MakeVisitor, ServerProcess, server_database

SECRET_TEXT = "Zebra-Kanel-5521: pappa läser mina sms och vi åker på sommarlovet"


def facts(srv: ServerProcess) -> list[dict]:
    with server_database(srv) as conn:
        return [dict(r) for r in conn.execute("SELECT * FROM stats_facts ORDER BY id")]


def audit_rows(srv: ServerProcess, action: str, target: str | None = None) -> list[dict]:
    sql, args = "SELECT * FROM audit WHERE action = ?", [action]
    if target:
        sql += " AND target = ?"
        args.append(target)
    with server_database(srv) as conn:
        return [dict(r) for r in conn.execute(sql, args)]


async def test_child_with_concern_cannot_close_until_a_decision_then_can(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor, visitor = await make_counselor(), await make_visitor()
    before = len(facts(server))
    ok(await visitor.start(lang="sv", age_group="13_15", gender="girl", role="self"))
    accept = ok(await counselor.accept(visitor.chat_id))
    chat_id = visitor.chat_id
    assert accept["report"]["child"] and accept["report"]["child_auto"]
    assert not accept["report"]["decision_required"]
    await visitor.wait_assigned()
    ok(await visitor.send(SECRET_TEXT))
    assert (await counselor.receive()).text == SECRET_TEXT

    assert ok(await counselor.informed(chat_id))["report"]["informed"] is True
    report = ok(await counselor.indicators(chat_id, ["phone_checked", "trip_to_origin"]))["report"]
    assert report["decision_required"] and not report["acute"]

    refused = await counselor.close(chat_id, {"outcome": "completed"})
    assert error_code(refused) == "conflict", refused
    # Refused means refused: the chat goes on.
    ok(await visitor.send("Är du kvar?"))
    await counselor.receive()
    assert not visitor.events_named("chat:ended")

    # The decision's kind decides what it needs.
    for bad in (
        {"decision": "report_made"},  # no receiver
        {"decision": "report_made", "to": "police", "reason": "below_threshold"},
        {"decision": "no_report", "to": "police", "reason": "below_threshold"},
        {"decision": "no_report"},  # no reason
        {"decision": "maybe"},
        {"decision": "no_report", "reason": "free text about the family"},
    ):
        ack = await counselor.decision(chat_id, **bad)
        assert error_code(ack) == "invalid_payload", (bad, ack)
    assert error_code(await counselor.close(chat_id, {})) == "conflict"

    decided = ok(await counselor.decision(chat_id, "report_made", to="social_services",
                                          channel="oral"))["report"]
    assert decided["decision"]["decision"] == "report_made"
    form = {"outcome": "completed", "topics": ["control", "travel"],
            "indicators": ["phone_checked"], "referrals": ["bris", "ratt_att_valja"]}
    ok(await counselor.close(chat_id, form))
    ended = await visitor.wait_for_event("chat:ended")
    assert ended["by"] == "counselor"

    # The audit log has the decision (categories) and the refused-then-allowed close.
    [entry] = audit_rows(server, "report.decision", chat_id)
    detail = json.loads(entry["detail"])
    assert detail == {"channel": "oral", "child": True, "decision": "report_made",
                      "informed": True, "reason": None, "to": "social_services"}
    assert entry["actor"] == counselor.account.username
    assert audit_rows(server, "chat.close", chat_id)

    # Exactly one statistics fact, with the decision and nothing identifying.
    new = facts(server)[before:]
    assert len(new) == 1, new
    fact = new[0]
    assert fact["decision"] == "report_made" and fact["decision_to"] == "social_services"
    assert (fact["lang"], fact["age_group"], fact["gender"], fact["role"]) == (
        "sv", "13_15", "girl", "self")
    assert fact["child"] == 1 and fact["answered"] == 1 and fact["outcome"] == "completed"
    assert json.loads(fact["indicators"]) == ["phone_checked", "trip_to_origin"]
    assert json.loads(fact["referrals"]) == ["bris", "ratt_att_valja"]
    assert json.loads(fact["topics"]) == ["control", "travel"]
    assert len(fact["day"]) == 10  # the day, no time of day
    with server_database(server) as conn:
        columns = {r[1] for r in conn.execute("PRAGMA table_info(stats_facts)")}
    assert not columns & {"chat_id", "counselor", "actor", "username", "ts", "created_at"}
    identifying = [chat_id, counselor.account.username, TEST_USER_AGENT, SECRET_TEXT[:20]]
    for value in fact.values():
        assert not any(needle in str(value) for needle in identifying), fact
    raw = b"".join(p.read_bytes() for p in server.data_files()
                   if p.name.startswith("tillit.sqlite3"))
    assert SECRET_TEXT[:20].encode() not in raw and TEST_USER_AGENT.encode() not in raw


async def test_empty_form_closes_unless_a_decision_is_due(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    adult, child, worried = await make_visitor(), await make_visitor(), await make_visitor()
    before = len(facts(server))
    adult_chat = await open_chat(adult, counselor, lang="en", age_group="18_25")
    child_chat = await open_chat(child, counselor, lang="sv", age_group="16_17")
    worried_chat = await open_chat(worried, counselor, lang="sv", age_group="over_25",
                                   role="worried")

    # An adult with a concern marked: no duty, the empty form closes as "completed".
    ok(await counselor.indicators(adult_chat, ["marriage_plans"]))
    ok(await counselor.close(adult_chat, {}))
    # A child with no indicator closes too.
    ok(await counselor.close(child_chat, {}))
    # A worried adult talking about a child: the counselor marks the child; then an
    # indicator named only in the closing form is enough to require the decision.
    assert ok(await counselor.mark_child(worried_chat))["report"]["child"] is True
    assert error_code(await counselor.close(worried_chat, {"indicators": ["fgm"]})) == "conflict"
    ok(await counselor.decision(worried_chat, "consulted_anonymously",
                                reason="no_identifying_info"))
    ok(await counselor.close(worried_chat, {"indicators": ["fgm"], "outcome": "completed"}))

    new = facts(server)[before:]
    assert [(f["lang"], f["outcome"], f["decision"]) for f in new] == [
        ("en", "completed", None), ("sv", "completed", None),
        ("sv", "completed", "consulted_anonymously"),
    ]
    assert json.loads(new[0]["indicators"]) == ["marriage_plans"]


async def test_an_automatic_child_cannot_be_unmarked(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    unknown_age, adult = await make_visitor(), await make_visitor()
    unknown_chat = await open_chat(unknown_age, counselor, lang="sv")  # age not stated
    adult_chat = await open_chat(adult, counselor, lang="sv", age_group="18_25")
    assert error_code(await counselor.mark_child(unknown_chat, False)) == "conflict"
    ok(await counselor.mark_child(adult_chat, True))
    report = ok(await counselor.mark_child(adult_chat, False))["report"]
    assert report["child"] is False
    # The adult the unknown age turned out to be: "no_report" with that reason.
    ok(await counselor.indicators(unknown_chat, ["watched_by_relatives"]))
    ok(await counselor.decision(unknown_chat, "no_report", reason="visitor_is_adult"))
    ok(await counselor.close(unknown_chat, {}))
    ok(await counselor.close(adult_chat, {}))


async def test_acute_indicator_is_flagged_and_bad_forms_are_refused(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="18_25")
    report = ok(await counselor.indicators(chat_id, ["threat_to_kill"]))["report"]
    assert report["acute"] is True
    for form in (
        {"outcome": "great"},
        {"topics": ["not_a_topic"]},
        {"indicators": ["made_up"]},
        {"referrals": ["nowhere"]},
        {"notes": "free text has no place in the form"},
        {"outcome": "completed", "comment": "x"},
        {"topics": "control"},
    ):
        assert error_code(await counselor.close(chat_id, form)) == "invalid_payload", form
    for payload in (
        {"chat_id": chat_id, "indicators": "threat_to_kill"},
        {"chat_id": chat_id, "indicators": ["threat_to_kill", 5]},
        {"chat_id": chat_id},
    ):
        assert error_code(await counselor.call("chat:indicators", payload)) == "invalid_payload"
    assert error_code(await counselor.call("chat:child", {"chat_id": chat_id})) == (
        "invalid_payload")
    ok(await counselor.close(chat_id, {"outcome": "quick_exit"}))


async def test_only_the_holder_and_only_a_counselor_may_use_the_workflow(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    holder, stranger = await make_counselor(), await make_counselor()
    supervisor = await make_counselor(role="supervisor")
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, holder, lang="sv", age_group="13_15")
    for client in (stranger, supervisor):
        for ack in (
            await client.mark_child(chat_id),
            await client.informed(chat_id),
            await client.indicators(chat_id, ["fgm"]),
            await client.decision(chat_id, "no_report", reason="below_threshold"),
            await client.close(chat_id, {}),
            await client.note_add(chat_id, "not mine"),
            await client.transfer(chat_id, "queue"),
        ):
            assert error_code(ack) == "forbidden", ack
    assert error_code(await supervisor.queue_list()) == "forbidden"
    assert error_code(await supervisor.take_next()) == "forbidden"
    ok(await holder.close(chat_id, {}))


async def test_feedback_reaches_the_fact_before_or_after_the_close(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    first, second = await make_visitor(), await make_visitor()
    before = len(facts(server))
    chat_one = await open_chat(first, counselor, lang="sv", age_group="18_25")
    chat_two = await open_chat(second, counselor, lang="en", age_group="18_25")

    # 1: the visitor leaves and answers before the counselor closes.
    ok(await first.end())
    ok(await first.feedback("yes", 5))
    ok(await counselor.close(chat_one, {}))
    # 2: the counselor closes first; the answer comes after.
    ok(await counselor.close(chat_two, {"outcome": "completed"}))
    await second.wait_for_event("chat:ended")
    ok(await second.feedback("partly", 3))
    assert error_code(await second.feedback("no", 1)) == "conflict"  # once only

    new = facts(server)[before:]
    assert [(f["lang"], f["outcome"], f["helped"], f["score"]) for f in new] == [
        ("sv", "visitor_left", "yes", 5), ("en", "completed", "partly", 3)]
    with server_database(server) as conn:
        tables = {r[0] for r in conn.execute("SELECT name FROM sqlite_master WHERE type='table'")}
    assert "feedback" not in tables


async def test_a_chat_that_leaves_the_queue_unanswered_is_one_fact(
    server: ServerProcess, make_visitor: MakeVisitor
) -> None:
    visitor = await make_visitor()
    before = len(facts(server))
    ok(await visitor.start(lang="ar", age_group="16_17", danger_now=True))
    ok(await visitor.end())
    await visitor.wait_for_event("chat:ended")
    new = facts(server)[before:]
    assert len(new) == 1
    fact = new[0]
    assert (fact["answered"], fact["outcome"], fact["lang"], fact["danger_now"]) == (
        0, "abandoned", "ar", 1)
    assert fact["wait_s"] is not None and fact["wait_s"] >= 0
