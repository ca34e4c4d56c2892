"""Hostile input: junk on every event, floods, oversized frames and too many sockets.

Each hypothesis example throws one arbitrary payload (any JSON, wrong types, huge
strings, deep nesting, binary, payloads shaped like the real ones with junk values,
some aimed at the sender's own chat) at one event of `/visitor` or `/counselor` on
the REAL server, then checks that the answer is a docs/protocol.md ack with a known code,
that the sender is still connected, and that a neighbour chat between another
visitor and another counselor still carries messages both ways. tests/test_acks.py
covers hand-picked bad values; this file covers every event the server has.
"""

from __future__ import annotations

import asyncio
import json
import urllib.request
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
import socketio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from protocol_client import CounselorClient, VisitorClient, error_code, ok, open_chat
from support import (
    TEST_USER_AGENT,
    MakeCounselor,
    ServerProcess,
    connect_visitor,
    server_fixture,
)

from tillit.chat_server.visitor_namespace import VisitorNamespace
from tillit.counselor_console.counselor_namespace import CounselorNamespace

REFUSALS = {"invalid_payload", "too_large", "not_found", "forbidden", "conflict",
            "rate_limited", "busy"}
# Every client-to-server event of docs/protocol.md sections 4 and 5 (and E4).
PROTOCOL_VISITOR_EVENTS = {"chat:start", "chat:resume", "msg:send", "typing", "key:update",
                           "chat:end", "feedback"}
PROTOCOL_COUNSELOR_EVENTS = {"queue:list", "chat:accept", "msg:send", "typing", "key:update",
                             "chat:rejoin", "chat:close", "chat:mine"}
ROOMY = {  # fuzzing checks validation, so the rate limits must not answer first
    "TILLIT_LIMITS_EVENTS_PER_S": "100000", "TILLIT_LIMITS_EVENTS_BURST": "100000",
    "TILLIT_LIMITS_CHAT_MESSAGES_PER_S": "100000",
    "TILLIT_LIMITS_CHAT_MESSAGES_BURST": "100000",
}
ADULT = {"lang": "sv", "age_group": "over_25"}  # no reporting duty to block chat:close


def events_of(namespace: type) -> set[str]:
    """The wire names of every `on_area_action` handler a namespace class has."""
    names = set()
    for attr in dir(namespace):
        if attr.startswith("on_") and attr not in ("on_connect", "on_disconnect"):
            names.add(attr[3:].replace("_", ":", 1))
    return names


VISITOR_EVENTS = sorted(events_of(VisitorNamespace))
COUNSELOR_EVENTS = sorted(events_of(CounselorNamespace))


def test_every_protocol_event_has_a_handler_and_is_fuzzed() -> None:
    assert PROTOCOL_VISITOR_EVENTS <= set(VISITOR_EVENTS)
    assert PROTOCOL_COUNSELOR_EVENTS <= set(COUNSELOR_EVENTS)


# --------------------------------------------------------------------------- strategies

FIELDS = ["chat_id", "pubkey", "epoch", "seq", "nonce", "ct", "on", "after_id", "resume_token",
          "reason", "helped", "score", "form", "lang", "age_group", "gender", "role", "topics",
          "danger_now", "to", "decision", "text", "note", "indicators", "id"]
scalars = (st.none() | st.booleans() | st.integers(-(2**80), 2**80)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=30))
json_values = st.recursive(
    scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=10), inner,
                                                                max_size=5),
    max_leaves=20,
)
# One such string stays under the 64 KiB frame even when every character travels as a
# \\uXXXX escape pair; larger frames are test_too_large_frame_closes_only_its_own_socket.
huge_strings = st.builds(lambda n, ch: ch * n, st.integers(500, 2000),
                         st.sampled_from(["A", "é", "\x00", "💥", "\\", '"', "<script>"]))
deep = st.builds(lambda depth, inner: json.loads("[" * depth + "1" + "]" * depth)
                 if inner else json.loads('{"a":' * depth + "1" + "}" * depth),
                 st.integers(10, 400), st.booleans())
shaped = st.builds(
    lambda d, big: {**d, **big},
    st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=6),
    st.dictionaries(st.sampled_from(FIELDS), huge_strings, max_size=1),
)


def payloads(own_chat: st.SearchStrategy[str]) -> st.SearchStrategy[Any]:
    aimed = st.builds(lambda d, cid: {**d, "chat_id": cid}, shaped, own_chat)
    return st.one_of(json_values, huge_strings, deep, st.binary(max_size=300), shaped, aimed,
                     st.lists(json_values, min_size=2, max_size=3).map(tuple))


# --------------------------------------------------------------------------- fixtures


roomy_server = server_fixture(ROOMY)


def healthz(srv: ServerProcess) -> int:
    req = urllib.request.Request(f"{srv.base_url}/healthz",
                                 headers={"User-Agent": TEST_USER_AGENT})
    with urllib.request.urlopen(req, timeout=5) as resp:
        return resp.status


class Arena:
    """A target chat for the junk (visitor `bad` with counselor `staff`) and a neighbour."""

    def __init__(self, srv: ServerProcess, staff: CounselorClient, other: CounselorClient,
                 neighbour: VisitorClient, neighbour_chat: str) -> None:
        self.srv, self.staff, self.other = srv, staff, other
        self.neighbour, self.neighbour_chat = neighbour, neighbour_chat
        self.bad: VisitorClient | None = None
        self.tick = 0

    async def target(self) -> VisitorClient:
        """The junk sender, in an open chat held by `staff` (a fresh one if junk ended it)."""
        held = ok(await self.staff.mine()).get("chats", [])
        bad = self.bad
        if bad is not None and bad.connected and any(
            c["chat_id"] == bad.chat_id and c["state"] == "active" for c in held
        ):
            return bad
        for c in held:
            await self.staff.close(c["chat_id"], {})
        if bad is not None:
            await bad.disconnect()
        self.bad = await connect_visitor(self.srv.base_url)
        await open_chat(self.bad, self.staff, **ADULT)
        return self.bad

    async def neighbour_still_chats(self) -> None:
        self.tick += 1
        ok(await self.neighbour.send(f"granne {self.tick}"), "neighbour send")
        got = await self.other.receive()
        assert (got.chat_id, got.text) == (self.neighbour_chat, f"granne {self.tick}")
        ok(await self.other.send(self.neighbour_chat, f"svar {self.tick}"), "neighbour reply")
        assert (await self.neighbour.receive()).text == f"svar {self.tick}"


@pytest.fixture
async def arena(
    roomy_server: ServerProcess, make_counselor: MakeCounselor
) -> AsyncIterator[Arena]:
    staff = await make_counselor(roomy_server)
    other = await make_counselor(roomy_server)
    neighbour = await connect_visitor(roomy_server.base_url)
    chat = await open_chat(neighbour, other, **ADULT)
    arena = Arena(roomy_server, staff, other, neighbour, chat)
    yield arena
    for client in (arena.bad, neighbour):
        if client is not None:
            await client.disconnect()


def assert_coded(ack: Any, what: Any) -> None:
    """An ack of docs/protocol.md section 1: ok, or refused with a known code and a message."""
    assert isinstance(ack, dict) and isinstance(ack.get("ok"), bool), (what, ack)
    if ack["ok"] is False:
        assert error_code(ack) in REFUSALS, (what, ack)
        assert isinstance(ack["error"].get("message"), str), (what, ack)


FUZZ = settings(max_examples=50, deadline=None,
                suppress_health_check=[HealthCheck.function_scoped_fixture,
                                       HealthCheck.too_slow, HealthCheck.data_too_large])


async def _throw(client: VisitorClient | CounselorClient, event: str, payload: Any) -> Any:
    assert client.sio is not None
    args = payload if isinstance(payload, tuple) else (payload,)
    return await client.sio.call(event, args if len(args) > 1 else args[0],
                                 namespace=client.namespace, timeout=10)


@pytest.mark.parametrize("namespace", ["visitor", "counselor"])
@FUZZ
@given(data=st.data())
async def test_junk_on_every_event(arena: Arena, namespace: str, data: st.DataObject) -> None:
    bad = await arena.target()
    sender = bad if namespace == "visitor" else arena.staff
    events = VISITOR_EVENTS if namespace == "visitor" else COUNSELOR_EVENTS
    event = data.draw(st.sampled_from(events), label="event")
    payload = data.draw(payloads(st.just(bad.chat_id or "")), label="payload")
    assert_coded(await _throw(sender, event, payload), (event, payload))
    assert sender.connected, "the junk sender was disconnected"
    await arena.neighbour_still_chats()


async def test_unknown_events_and_extra_arguments_are_refused(arena: Arena) -> None:
    bad = await arena.target()
    for event, payload in [("chat:explode", {}), ("CHAT:START", {}), ("x" * 200, {}),
                           ("msg:send", ({}, {}, {}))]:
        ack = await _throw(bad, event, payload)
        assert error_code(ack) in ("not_found", "invalid_payload"), (event, ack)
    await arena.neighbour_still_chats()
    assert healthz(arena.srv) == 200


async def test_too_large_frame_closes_only_its_own_socket(arena: Arena) -> None:
    bad = await arena.target()
    assert bad.sio is not None
    await bad.sio.emit("msg:send", {"chat_id": bad.chat_id, "ct": "A" * 100_000},
                       namespace=bad.namespace)
    for _ in range(50):
        if not bad.connected:
            break
        await asyncio.sleep(0.1)
    assert not bad.connected, "a frame over limits.max_payload_bytes must close its socket"
    await arena.neighbour_still_chats()
    assert healthz(arena.srv) == 200
    # The visitor comes back with the resume token, as after any dropped connection.
    resumed = ok(await bad.resume())
    assert resumed["state"] == "active"
    ok(await bad.send("tillbaka"))
    assert (await arena.staff.receive()).text == "tillbaka"


async def test_a_non_ascii_resume_token_is_invalid_payload(arena: Arena) -> None:
    visitor = await connect_visitor(arena.srv.base_url)
    try:
        for token in ["åäö" * 10, "tök-en_1", "٣" * 20, "\u200b" + "A" * 20]:
            ack = await visitor.call("chat:resume", {"resume_token": token, "after_id": 0})
            assert error_code(ack) == "invalid_payload", (token, ack)
        assert visitor.connected
    finally:
        await visitor.disconnect()
    await arena.neighbour_still_chats()


async def _raw_ack(ws: aiohttp.ClientWebSocketResponse, prefix: str) -> Any:
    """The data of the first frame that starts with `prefix` (an ack), skipping others."""
    while True:
        frame = await ws.receive_str(timeout=10)
        if frame == "2":
            await ws.send_str("3")
        elif frame.startswith(prefix):
            return json.loads(frame[len(prefix):])


@pytest.mark.parametrize("opener", ["[", '{"a":'])
async def test_a_deeply_nested_frame_gets_invalid_payload_and_others_are_served(
    arena: Arena, opener: str
) -> None:
    """Thousands of levels fit in one 64 KiB frame; the JSON decoder gives up at about a
    thousand (RecursionError), which once left the sender without an ack."""
    closer = "]" if opener == "[" else "}"
    depth = 25_000 // len(opener)
    deep = opener * depth + "1" + closer * depth
    url = arena.srv.base_url + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession(headers={"User-Agent": TEST_USER_AGENT}) as http, \
            http.ws_connect(url) as ws:
        assert (await ws.receive_str(timeout=10)).startswith("0{")
        await ws.send_str("40/visitor,")
        assert (await ws.receive_str(timeout=10)).startswith("40/visitor,")
        for ack_id, event in enumerate(("msg:send", "chat:resume", "no:such"), start=70):
            frame = f'42/visitor,{ack_id}["{event}",{deep}]'
            assert len(frame) < 65_536
            await ws.send_str(frame)
            (ack,) = await _raw_ack(ws, f"43/visitor,{ack_id}")
            assert error_code(ack) == "invalid_payload", (event, ack)
        # The same socket is still served.
        await ws.send_str('42/visitor,80["chat:end",{}]')
        (ack,) = await _raw_ack(ws, "43/visitor,80")
        assert error_code(ack) == "invalid_payload", ack
    await arena.neighbour_still_chats()
    assert healthz(arena.srv) == 200


# --------------------------------------------------------------------------- floods


default_server = server_fixture(
    {"TILLIT_LIMITS_MAX_CONNECTIONS": "3"},
    doc="Default limits ([limits] in tillit/config/default.toml), only three sockets allowed.")


async def test_a_300_message_burst_is_rate_limited_and_loses_nothing_acknowledged(
    default_server: ServerProcess, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor(default_server)
    flooder = await connect_visitor(default_server.base_url)
    try:
        chat_id = await open_chat(flooder, counselor, **ADULT)
        acks = await asyncio.gather(*(flooder.send(f"flod {i}") for i in range(300)))
        codes = [error_code(a) for a in acks]
        acked = [(a["id"], i) for i, a in enumerate(acks) if a.get("ok")]
        assert codes.count("rate_limited") > 100, codes
        assert set(codes) <= {None, "rate_limited"}, set(codes)
        assert 50 <= len(acked) < 300
        # Every acknowledged message reaches the counselor once, in id order, intact.
        got = [await counselor.receive() for _ in acked]
        await asyncio.sleep(0.3)
        assert counselor.drain_inbox() == [] and counselor.duplicates == 0
        assert [m.id for m in got] == sorted(i for i, _ in acked)
        assert sorted(m.text for m in got) == sorted(f"flod {i}" for _, i in acked)
        assert counselor.decrypt_errors == []
        # The flooder itself is served again once its buckets refill.
        await asyncio.sleep(1.5)
        ok(await flooder.send("lugn nu"), "after the burst")
        assert (await counselor.receive()).text == "lugn nu"
        ok(await counselor.send(chat_id, "bra"))
        assert (await flooder.receive()).text == "bra"
    finally:
        await flooder.disconnect()


async def test_sockets_past_max_connections_are_refused_then_admitted_again(
    default_server: ServerProcess,
) -> None:
    clients = [VisitorClient(default_server.base_url, TEST_USER_AGENT) for _ in range(3)]
    for c in clients:  # once the previous test's sockets are gone
        await _connect_within(c)
    extra = VisitorClient(default_server.base_url, TEST_USER_AGENT)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await extra.connect()
    # The three already in are served as before.
    assert error_code(await clients[0].call("chat:end", {})) == "invalid_payload"
    await clients[0].disconnect()
    await _connect_within(extra)  # once the server has seen the disconnect
    ok(await extra.start(**ADULT), "a socket admitted after another left")
    await extra.end()
    for c in (*clients[1:], extra):
        await c.disconnect()


async def _connect_within(client: VisitorClient, within_s: float = 10.0) -> None:
    """Connect, trying again while the server is still full: a slot frees only once the
    server has seen a disconnect, which a busy machine may take a while to do."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        try:
            await client.connect()
            return
        except socketio.exceptions.ConnectionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.2)
