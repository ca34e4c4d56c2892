"""Acknowledgements: retries are idempotent, bad input gets a coded error and hurts no one,
and the console login and `/counselor` namespace let in only a real session."""

from __future__ import annotations

import asyncio
import os
from typing import Any

import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_client import (
    ChatCrypto,
    CounselorClient,
    b64u_encode,
    console_login,
    error_code,
    ok,
    open_chat,
    seal,
)
from support import TEST_USER_AGENT, MakeCounselor, MakeVisitor, ServerProcess, connect_visitor

KNOWN_CODES = {"invalid_payload", "too_large", "not_found", "forbidden", "conflict", "rate_limited"}


def assert_refused(ack: Any, *codes: str, what: Any = "") -> None:
    """`{ok: false, error: {code, message}}` with one of `codes` (any known code if none)."""
    assert isinstance(ack, dict) and ack.get("ok") is False, (what, ack)
    assert error_code(ack) in (codes or KNOWN_CODES), (what, ack)
    message = ack["error"].get("message")
    assert isinstance(message, str) and message, (what, ack)


# --------------------------------------------------------------------------- idempotence


async def test_retry_of_same_envelope_is_stored_and_shown_once(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor)
    first = ok(await visitor.send("Skickas två gånger"))
    env = visitor.sent[-1]
    again = ok(await visitor.send_envelope(dict(env)), "retry")
    assert again["id"] == first["id"]
    # A retry from a new socket after a drop (same seq, re-encrypted) is the same message.
    await visitor.disconnect()
    ok(await visitor.resume(after_id=first["id"]))
    key = visitor.crypto.keys[1].v2c
    re_sealed = seal(key, chat_id, 1, "v2c", env["seq"], b'{"type":"text","text":"x"}')
    assert ok(await visitor.send_envelope(re_sealed), "retry after resume")["id"] == first["id"]

    nxt = ok(await visitor.send("Nästa"))
    assert nxt["id"] > first["id"]
    await counselor.wait_for_event("msg:new", lambda d: d.get("id") == nxt["id"])
    raw = [d for d in counselor.events_named("msg:new") if d.get("chat_id") == chat_id]
    assert [d["id"] for d in raw] == [first["id"], nxt["id"]], raw
    assert [m.text for m in counselor.received_in(chat_id)] == ["Skickas två gånger", "Nästa"]

    # The counselor's retries are idempotent too.
    c_first = ok(await counselor.send(chat_id, "Svar"))
    assert ok(await counselor.send_envelope(dict(counselor.sent[-1])))["id"] == c_first["id"]


# --------------------------------------------------------------------------- bad input


def bad_pubkeys() -> list[Any]:
    good = ChatCrypto("visitor").pubkey
    raw = bytearray(os.urandom(65))
    raw[0] = 4
    return [
        None,
        42,
        "",
        "not base64!",
        good[:-4],  # 62 bytes
        b64u_encode(b"\x02" + os.urandom(32)),  # compressed form
        b64u_encode(b"\x04" + b"\x00" * 64),  # not on the curve
        b64u_encode(bytes(raw)),  # random bytes, not on the curve
        good + "AAAA",
    ]


async def test_bad_chat_start_is_refused(make_visitor: MakeVisitor) -> None:
    visitor = await make_visitor()
    pub = visitor.crypto.pubkey
    cases: list[Any] = [
        None,
        "chat",
        [pub],
        {},
        {"pubkey": pub, "age_group": "grown"},
        {"pubkey": pub, "role": "spy"},
        {"pubkey": pub, "danger_now": "yes"},
        {"pubkey": pub, "topics": "control"},
        {"pubkey": pub, "topics": ["control", 7]},
        {"pubkey": pub, "topics": ["no_such_topic"]},
        {"pubkey": pub, "lang": 5},
        *({"pubkey": bad} for bad in bad_pubkeys()),
    ]
    for payload in cases:
        assert_refused(await visitor.call("chat:start", payload), "invalid_payload", what=payload)
    # Still connected and able to start properly.
    assert visitor.connected
    ok(await visitor.start(lang="sv", topics=["control"]), "valid chat:start after bad ones")


async def test_bad_input_on_every_event_is_refused_and_harms_no_one(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    bad, neighbour = await make_visitor(), await make_visitor()
    bad_chat = await open_chat(bad, counselor, lang="sv")
    other_chat = await open_chat(neighbour, counselor, lang="en")
    good = bad.crypto.seal_text("mall")
    ct_20k = b64u_encode(os.urandom(20 * 1024))

    visitor_cases: list[tuple[str, Any, tuple[str, ...]]] = [
        ("msg:send", None, ("invalid_payload",)),
        ("msg:send", {k: v for k, v in good.items() if k != "ct"}, ("invalid_payload",)),
        ("msg:send", {k: v for k, v in good.items() if k != "nonce"}, ("invalid_payload",)),
        ("msg:send", {**good, "seq": "1"}, ("invalid_payload",)),
        ("msg:send", {**good, "seq": -1}, ("invalid_payload",)),
        ("msg:send", {**good, "seq": 2**60}, ("invalid_payload",)),
        ("msg:send", {**good, "seq": True}, ("invalid_payload",)),
        ("msg:send", {**good, "epoch": 0}, ("invalid_payload",)),
        ("msg:send", {**good, "epoch": 9}, ("invalid_payload", "conflict")),
        ("msg:send", {**good, "nonce": b64u_encode(os.urandom(8))}, ("invalid_payload",)),
        ("msg:send", {**good, "nonce": "***"}, ("invalid_payload",)),
        ("msg:send", {**good, "ct": b64u_encode(os.urandom(8))}, ("invalid_payload",)),
        ("msg:send", {**good, "ct": 12345}, ("invalid_payload",)),
        ("msg:send", {**good, "ct": ct_20k}, ("too_large",)),
        ("msg:send", {**good, "chat_id": other_chat}, ("forbidden", "not_found")),
        ("msg:send", {**good, "chat_id": "A" * 22}, ("forbidden", "not_found")),
        ("typing", {"chat_id": bad_chat, "on": "yes"}, ("invalid_payload",)),
        ("typing", {"chat_id": bad_chat}, ("invalid_payload",)),
        ("typing", {"chat_id": other_chat, "on": True}, ("forbidden", "not_found")),
        ("key:update", {"chat_id": bad_chat, "pubkey": "AAAA"}, ("invalid_payload",)),
        ("key:update", {"chat_id": other_chat, "pubkey": bad.crypto.pubkey},
         ("forbidden", "not_found")),
        ("chat:end", {}, ("invalid_payload",)),
        ("chat:end", {"chat_id": other_chat}, ("forbidden", "not_found")),
        ("chat:end", {"chat_id": bad_chat, "reason": "bored"}, ("invalid_payload",)),
        ("chat:resume", {"after_id": 0}, ("invalid_payload",)),
        ("chat:resume", {"resume_token": bad.resume_token, "after_id": "x"}, ("invalid_payload",)),
        ("chat:resume", {"resume_token": 5, "after_id": 0}, ("invalid_payload", "not_found")),
        ("feedback", {"chat_id": bad_chat, "helped": "maybe", "score": 3}, ("invalid_payload",)),
        ("feedback", {"chat_id": bad_chat, "helped": "yes", "score": 9}, ("invalid_payload",)),
    ]
    for event, payload, codes in visitor_cases:
        assert_refused(await bad.call(event, payload), *codes, what=(event, payload))
    assert bad.connected

    outsider = ChatCrypto("counselor", bad_chat)
    counselor_cases: list[tuple[str, Any, tuple[str, ...]]] = [
        ("queue:list", "x", ("invalid_payload",)),
        ("chat:accept", {"chat_id": bad_chat}, ("invalid_payload",)),
        ("chat:accept", {"chat_id": "A" * 22, "pubkey": outsider.pubkey}, ("not_found",)),
        ("chat:accept", {"chat_id": bad_chat, "pubkey": "AAAA"}, ("invalid_payload",)),
        ("chat:accept", {"chat_id": bad_chat, "pubkey": outsider.pubkey},
         ("conflict", "not_found")),
        ("msg:send", {**good, "chat_id": "A" * 22}, ("forbidden", "not_found")),
        ("msg:send", {**good, "ct": ct_20k}, ("too_large",)),
        ("chat:rejoin", {"chat_id": bad_chat, "pubkey": "AAAA", "after_id": 0},
         ("invalid_payload",)),
        ("chat:rejoin", {"chat_id": bad_chat, "pubkey": outsider.pubkey, "after_id": "x"},
         ("invalid_payload",)),
        ("chat:close", {"chat_id": bad_chat, "form": "done"}, ("invalid_payload",)),
        ("chat:close", {"chat_id": "A" * 22, "form": {}}, ("forbidden", "not_found")),
        ("typing", {"chat_id": bad_chat, "on": 1}, ("invalid_payload",)),
    ]
    for event, payload, codes in counselor_cases:
        assert_refused(await counselor.call(event, payload), *codes, what=(event, payload))
    assert counselor.connected

    # Another counselor cannot close, write into, or re-key a chat it does not hold.
    stranger = await make_counselor()
    s_env = seal(os.urandom(32), bad_chat, 1, "c2v", 0, b"{}")
    assert_refused(await stranger.close(bad_chat, {}), "forbidden", "not_found")
    assert_refused(await stranger.send_envelope(s_env), "forbidden", "not_found")
    assert_refused(
        await stranger.call("key:update", {"chat_id": bad_chat, "pubkey": outsider.pubkey}),
        "forbidden", "not_found",
    )
    assert not bad.events_named("chat:ended") and not bad.events_named("key:update")

    # Nothing of the above reached either visitor, and both chats still work.
    await asyncio.sleep(0.2)
    assert bad.drain_inbox() == [] and neighbour.drain_inbox() == []
    assert counselor.drain_inbox() == []
    ok(await neighbour.send("grannen mår bra"))
    assert (await counselor.receive()).text == "grannen mår bra"
    ok(await counselor.send(other_chat, "bra"))
    assert (await neighbour.receive()).text == "bra"
    ok(await bad.send("och jag också"))
    got = await counselor.receive()
    assert (got.chat_id, got.text) == (bad_chat, "och jag också")
    assert bad.decrypt_errors == [] and neighbour.decrypt_errors == []


async def test_max_size_ct_is_accepted(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    """The limit is a limit, not a lower ceiling: a 2 000-character message fits."""
    counselor = await make_counselor()
    visitor = await make_visitor()
    await open_chat(visitor, counselor)
    text = "å" * 2000
    ack = await visitor.send(text)
    assert len(visitor.sent[-1]["ct"]) < 16 * 1024
    ok(ack, "2 000-character message")
    assert (await counselor.receive()).text == text


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.text(max_size=40)
    | st.floats(allow_nan=False),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=12,
)
envelope_like = st.fixed_dictionaries(
    {},
    optional={
        "chat_id": json_values,
        "epoch": json_values,
        "seq": json_values,
        "nonce": json_values,
        "ct": json_values,
    },
)


@settings(
    max_examples=40,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(payload=st.one_of(json_values, envelope_like))
async def test_fuzzed_msg_send_always_gets_a_coded_refusal(
    server: ServerProcess, payload: Any
) -> None:
    visitor = await connect_visitor(server.base_url)
    try:
        for event in ("msg:send", "chat:start", "chat:resume", "typing"):
            assert_refused(await visitor.call(event, payload), what=(event, payload))
        assert visitor.connected
    finally:
        await visitor.disconnect()


# --------------------------------------------------------------------------- login


async def test_console_login_and_cookie(server: ServerProcess) -> None:
    acct = server.add_user("rådgivare_test")
    url = server.base_url
    name, password = acct.username, acct.password
    status, body, cookie, _ = await console_login(url, name, "fel-lösenord", acct.next_totp())
    assert (status, cookie) == (401, None), body
    assert body["error"]["code"] == "unauthorized"
    status, body, cookie, _ = await console_login(url, name, password, acct.wrong_totp())
    assert (status, cookie) == (401, None), body
    status, body, cookie, _ = await console_login(url, "ingen_sådan", acct.password, "123456")
    assert (status, cookie) == (401, None), body

    code = acct.next_totp()
    status, body, cookie, set_cookies = await console_login(url, name, password, code)
    assert status == 200, body
    assert body["username"] == acct.username and body["role"] == "counselor"
    assert cookie
    header = next(h for h in set_cookies if h.startswith("tillit_session="))
    attrs = {a.strip().split("=")[0].lower(): a.strip() for a in header.split(";")[1:]}
    assert "httponly" in attrs, header
    assert attrs.get("samesite", "").lower() == "samesite=strict", header
    assert attrs.get("path") == "Path=/", header

    # The same TOTP code cannot be used twice.
    status, _, cookie2, _ = await console_login(url, name, password, code)
    assert (status, cookie2) == (401, None)

    # The cookie opens /counselor.
    c = CounselorClient(url, cookie, TEST_USER_AGENT)
    await c.connect()
    ok(await c.queue_list())
    await c.disconnect()


async def test_counselor_namespace_refuses_without_valid_session(server: ServerProcess) -> None:
    forged = "tillit_session=" + b64u_encode(os.urandom(32))
    for cookie_header in (None, "tillit_session=", forged):
        sio = socketio.AsyncClient(reconnection=False)
        headers = {"User-Agent": TEST_USER_AGENT}
        if cookie_header is not None:
            headers["Cookie"] = cookie_header
        with pytest.raises(socketio.exceptions.ConnectionError):
            await sio.connect(
                server.base_url,
                headers=headers,
                transports=["websocket"],
                namespaces=["/counselor"],
                socketio_path="socket.io",
                wait_timeout=5,
            )
        await sio.disconnect()


async def test_repeated_failures_lock_the_account(server: ServerProcess) -> None:
    acct = server.add_user("counselor_lyra_lockout")
    for _ in range(6):
        status, _, _, _ = await console_login(
            server.base_url, acct.username, "fel", acct.wrong_totp()
        )
        assert status in (401, 429)
    status, body, cookie, _ = await console_login(
        server.base_url, acct.username, acct.password, acct.next_totp()
    )
    assert status in (401, 429) and cookie is None, (status, body)
