"""The WebSocket transport (tillit/chat_server/transport/engineio_socket.py) as people meet
it: a peer who stops reading holds up no one, and a connection that has gone silent is
closed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
import socketio
from protocol_client import CounselorClient, VisitorClient, ok, open_chat
from support import (
    TEST_USER_AGENT,
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    server_fixture,
)

# A message near the largest ciphertext the server takes (chat.max_ct_bytes = 16 384).
LARGE_TEXT = "." * 11_000
# About 9 MB: twice what loopback's socket buffers took in before a sender that waited
# for the reader would have stalled (measured: after 287 such messages).
STALL_MESSAGES = 600


server = server_fixture(
    {
        "TILLIT_LIMITS_EVENTS_PER_S": "1000",
        "TILLIT_LIMITS_EVENTS_BURST": "1000",
        "TILLIT_LIMITS_CHAT_MESSAGES_PER_S": "1000",
        "TILLIT_LIMITS_CHAT_MESSAGES_BURST": "1000",
    },
    doc="Rate limits wide enough for one visitor to send a few MB at once.",
)


async def test_a_counselor_who_stops_reading_holds_up_no_one(
    make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor)
    neighbour_counselor = await make_counselor()
    neighbour = await make_visitor()
    await open_chat(neighbour, neighbour_counselor)

    assert counselor.sio is not None
    reading = counselor.sio.eio.ws._conn.transport  # the counselor's own TCP connection
    reading.pause_reading()  # a laptop that froze: its socket stops taking data
    try:
        ids = []
        for _ in range(STALL_MESSAGES):
            # Each acknowledgement comes although the counselor takes nothing in.
            ack = await asyncio.wait_for(visitor.send(LARGE_TEXT), 5)
            ids.append(ok(ack)["id"])
        # The chat next door goes on as usual, both ways.
        ok(await neighbour.send("Hej, är det någon där?"))
        assert (await neighbour_counselor.receive()).text == "Hej, är det någon där?"
        ok(await neighbour_counselor.send(neighbour.chat_id, "Ja, jag är här."))
        assert (await neighbour.receive()).text == "Ja, jag är här."
        assert len(counselor.received_in(chat_id)) < STALL_MESSAGES
    finally:
        reading.resume_reading()

    # Once it reads again, every message arrives once, in order, and decrypts.
    got = await counselor.receive_n(STALL_MESSAGES, wait_s=15)
    assert [m.id for m in got] == ids
    assert all(m.text == LARGE_TEXT for m in got)
    assert counselor.duplicates == 0 and not counselor.decrypt_errors


quick_heartbeat_server = server_fixture(
    {"TILLIT_SERVER_PING_INTERVAL_S": "1", "TILLIT_SERVER_PING_TIMEOUT_S": "1"},
    scope="function",
)


async def test_a_silent_connection_is_closed_and_a_live_one_is_kept(
    quick_heartbeat_server: ServerProcess, make_visitor: MakeVisitor
) -> None:
    """With a 1 s ping and 1 s to answer, a socket that sends nothing for 2 s is gone
    (a phone that lost its network), while a page that answers the pings stays."""
    live = await make_visitor(quick_heartbeat_server)
    url = quick_heartbeat_server.base_url + "/socket.io/?EIO=4&transport=websocket"
    began = time.monotonic()  # before the server can start any clock of this socket
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        opened = await ws.receive_str(timeout=10)
        assert opened.startswith("0{")
        frames = await _frames_until_closed(ws)  # takes the pings, never answers
        silent_for = time.monotonic() - began
    assert "2" in frames  # it was pinged
    assert LEAST_S <= silent_for <= CLOSED_WITHIN_S, silent_for
    await asyncio.sleep(max(0.0, 3.0 - silent_for))
    assert live.connected
    ok(await live.start(lang="sv"))


async def test_a_chattering_client_that_never_answers_a_ping_is_disconnected(
    quick_heartbeat_server: ServerProcess,
) -> None:
    """Frames that are not pongs do not keep a connection alive: past the ping timeout
    the server hangs up, whatever the client keeps sending."""
    url = quick_heartbeat_server.base_url + "/socket.io/?EIO=4&transport=websocket"
    began = time.monotonic()  # before the server can start any clock of this socket
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert (await ws.receive_str(timeout=10)).startswith("0{")

        async def chatter() -> None:
            while True:
                await ws.send_str("6")  # an Engine.IO no-op, never a pong
                await asyncio.sleep(0.2)

        noise = asyncio.create_task(chatter())
        try:
            frames = await _frames_until_closed(ws)
        finally:
            noise.cancel()
        ended_after = time.monotonic() - began
    assert "2" in frames  # it was pinged
    assert LEAST_S <= ended_after <= CLOSED_WITHIN_S, ended_after


# With a 1 s ping interval and 1 s to answer, the server may hang up 2 s after the
# connection began (measured from before it began, so never earlier, timer slack aside).
# The lower bound says "not at once"; the upper one "not never", with room for a busy
# machine (it once measured 1.9997 s against a bound of 2.0 taken after the handshake).
LEAST_S = 1.5
CLOSED_WITHIN_S = 15.0


async def _frames_until_closed(ws: aiohttp.ClientWebSocketResponse) -> list[str]:
    """Every text frame until the server closes; gives up after twice the upper bound."""
    frames: list[str] = []
    deadline = time.monotonic() + 2 * CLOSED_WITHIN_S
    while time.monotonic() < deadline:
        msg = await ws.receive(timeout=2 * CLOSED_WITHIN_S)
        if msg.type != aiohttp.WSMsgType.TEXT:
            break
        frames.append(msg.data)
    return frames


def test_packet_json_reads_and_writes_like_the_library_and_refuses_huge_integers() -> None:
    from tillit.chat_server.transport.local_fanout import PacketJson

    event = ["msg:new", {"chat_id": "c", "id": 7, "ct": "AbC-_", "text": "hej då"}]
    text = PacketJson.dumps(event, separators=(",", ":"))
    assert text == json.dumps(event, separators=(",", ":"))
    assert PacketJson.loads(text) == event
    assert PacketJson.loads(text.encode()) == event  # Redis hands over bytes
    with pytest.raises(ValueError):
        PacketJson.loads('{"seq": ' + "9" * 101 + "}")


# The pages connect with `transports: ["websocket"]` only; the server serves nothing else.
POLLING_URL = "/socket.io/?EIO=4&transport=polling"
# Long enough to tell "answered" from "never answered" on a busy machine; an answer
# takes milliseconds.
ANSWER_WITHIN_S = 10


@pytest.mark.parametrize("size", [0, 64 * 1024 + 1, 1024 * 1024])
async def test_http_long_polling_is_refused_at_once_whatever_the_body(
    server: ServerProcess, size: int
) -> None:
    """A polling POST just over 64 KiB once got no answer and held its memory."""
    timeout = aiohttp.ClientTimeout(total=ANSWER_WITHIN_S)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        async with http.get(server.base_url + POLLING_URL) as opened:
            assert opened.status == 400, await opened.text()
        for query in (POLLING_URL, POLLING_URL + "&sid=abc", "/socket.io/?EIO=4"):
            async with http.post(server.base_url + query, data=b"4" + b"x" * size) as resp:
                assert resp.status == 400, (query, resp.status)
    # WebSocket, which both pages use, works as before.
    url = server.base_url + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        opened_ws = json.loads((await ws.receive_str(timeout=5))[1:])
        assert opened_ws["upgrades"] == []


def test_both_pages_ask_for_websocket_only() -> None:
    from tillit.chat_server.settings import STATIC_DIR

    calls = 0
    for page in ("visitor", "console"):
        for path in (STATIC_DIR / page).glob("*.js"):
            # Every socket a page opens (the visitor's chat, its decoy mailbox's own
            # connection, the console's, the admin page's recovery) names the WebSocket
            # transport only.
            for call in path.read_text().split("window.io(")[1:]:
                options = call[:call.index("})")]
                assert 'transports: ["websocket"]' in options, path.name
                calls += 1
    assert calls == 4


# --------------------------------------------------------------------------- connection caps

WS_PATH = "/socket.io/?EIO=4&transport=websocket"


crowded_server = server_fixture({"TILLIT_LIMITS_MAX_CONNECTIONS": "20",
                                 "TILLIT_LIMITS_MAX_STAFF_CONNECTIONS": "2",
                                 "TILLIT_LIMITS_NAMESPACE_JOIN_S": "60"},
                                scope="function",
                                doc="Room for 20 anonymous sockets and 2 counselors.")


async def test_a_counselor_connects_while_anonymous_sockets_fill_the_visitor_cap(
    crowded_server: ServerProcess, make_counselor: MakeCounselor
) -> None:
    """Twenty anonymous sockets once locked a counselor with a valid session out."""
    crowd = [VisitorClient(crowded_server.base_url, TEST_USER_AGENT) for _ in range(25)]
    admitted = refused = 0
    for client in crowd:
        try:
            await client.connect()
            admitted += 1
        except socketio.exceptions.ConnectionError:
            refused += 1
    try:
        assert (admitted, refused) == (20, 5)
        # Staff have their own pool: a counselor with a valid session gets in and works.
        counselor = await make_counselor(crowded_server)
        assert counselor.connected
        ok(await counselor.mine())
        second = await make_counselor(crowded_server)
        ok(await second.mine())
        # The staff pool is capped too, and a forged session cookie gets nobody in.
        acct = crowded_server.add_user(role="counselor")
        third = await CounselorClient.login(crowded_server.base_url, acct.username,
                                            acct.password, acct.next_totp(), TEST_USER_AGENT)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await third.connect()
        await second.disconnect()
        forged = CounselorClient(crowded_server.base_url, "A" * 43, TEST_USER_AGENT)
        with pytest.raises(socketio.exceptions.ConnectionError):
            await forged.connect()
        # The freed staff slot is the third counselor's, while the crowd still waits.
        await _eventually(third.connect)
        ok(await third.mine())
        await third.disconnect()
        with pytest.raises(socketio.exceptions.ConnectionError):
            await VisitorClient(crowded_server.base_url, TEST_USER_AGENT).connect()
    finally:
        for client in crowd:
            await client.disconnect()


async def _eventually(attempt: Callable[[], Awaitable[object]], within_s: float = 10) -> None:
    """Try `attempt` until it stops raising: a slot is freed once the server has seen the
    disconnect, which takes a moment on a busy machine."""
    deadline = time.monotonic() + within_s
    while True:
        try:
            await attempt()
            return
        except socketio.exceptions.ConnectionError:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)


quick_join_server = server_fixture({"TILLIT_LIMITS_MAX_CONNECTIONS": "3",
                                    "TILLIT_LIMITS_NAMESPACE_JOIN_S": "2"}, scope="function")


async def test_raw_engineio_sockets_in_no_namespace_count_and_are_closed(
    quick_join_server: ServerProcess,
) -> None:
    """Engine.IO connections that never joined a namespace were not counted at all."""
    url = quick_join_server.base_url + WS_PATH
    async with aiohttp.ClientSession() as http:
        idle = [await http.ws_connect(url) for _ in range(3)]
        for ws in idle:
            assert (await ws.receive_str(timeout=10)).startswith("0{")
        began = time.monotonic()
        # They fill the anonymous pool meanwhile: a visitor is refused.
        with pytest.raises(socketio.exceptions.ConnectionError):
            await VisitorClient(quick_join_server.base_url, TEST_USER_AGENT).connect()
        # ... and past namespace_join_s (2 s) the server closes every one of them.
        for ws in idle:
            msg = await ws.receive(timeout=20)
            if msg.type == aiohttp.WSMsgType.TEXT:
                assert msg.data == "1", msg  # Engine.IO's close packet, then the close
                msg = await ws.receive(timeout=20)
            assert msg.type in (aiohttp.WSMsgType.CLOSE, aiohttp.WSMsgType.CLOSED), msg
        closed_after = time.monotonic() - began
        assert 1.0 <= closed_after <= 20, closed_after  # not at once, and not never
        # Their slots are free again; a socket that joins in time is kept.
        visitor = VisitorClient(quick_join_server.base_url, TEST_USER_AGENT)
        await _eventually(visitor.connect)
        await asyncio.sleep(3)
        assert visitor.connected
        ok(await visitor.start(lang="sv"))
        await visitor.end()
        await visitor.disconnect()


def test_a_connection_that_leaves_every_namespace_is_counted_and_timed_again() -> None:
    from tillit.chat_server.settings import load_settings
    from tillit.safety.rate_limit import Limits, TrafficGuard

    now = [100.0]
    shipped = load_settings(environ={}).section("limits")
    limits = Limits(**shipped | {"max_connections": 2, "max_staff_connections": 1,
                                 "namespace_join_s": 5})
    guard = TrafficGuard(limits, backlog=lambda: 0, clock=lambda: now[0])
    assert guard.open_transport("e1") and guard.open_transport("e2")
    assert not guard.open_transport("e3")  # two waiting fill the anonymous pool
    assert guard.admit("v1", "e1")  # e1's waiting slot becomes its visitor slot
    assert guard.admit("c1", "e2", staff=True)  # e2 moves to the staff pool
    assert guard.open_transport("e3")
    assert not guard.admit("c2", "e3", staff=True)  # staff pool full: e3 still waits
    assert guard.unjoined() == []
    now[0] += 5
    assert guard.unjoined() == ["e3"]
    guard.close_transport("e3")
    guard.release("c1")  # e2 left its only namespace but is still open: it waits again
    assert guard.connections == 2 and guard.staff_connections == 0
    now[0] += 5
    assert guard.unjoined() == ["e2"]
    guard.close_transport("e2")
    guard.release("v1")
    guard.close_transport("e1")
    assert guard.connections == 0 and guard.unjoined() == []
