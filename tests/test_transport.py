"""The WebSocket transport (chat_server/engineio_socket.py) as people meet it: a peer who
stops reading holds up no one, and a connection that has gone silent is closed."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator

import aiohttp
import pytest
from conftest import MakeCounselor, MakeVisitor, ServerProcess, _start_server
from protocol_client import ok, open_chat

# A message near the largest ciphertext the server takes (chat.max_ct_bytes = 16 384).
LARGE_TEXT = "." * 11_000
# About 9 MB: twice what loopback's socket buffers took in before a sender that waited
# for the reader would have stalled (measured: after 287 such messages).
STALL_MESSAGES = 600


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """Rate limits wide enough for one visitor to send a few MB at once."""
    srv = _start_server(
        tmp_path_factory.mktemp("tillit-transport"),
        {
            "TILLIT_LIMITS_EVENTS_PER_S": "1000",
            "TILLIT_LIMITS_EVENTS_BURST": "1000",
            "TILLIT_LIMITS_CHAT_MESSAGES_PER_S": "1000",
            "TILLIT_LIMITS_CHAT_MESSAGES_BURST": "1000",
        },
    )
    yield srv
    srv.stop()


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


@pytest.fixture
def quick_heartbeat_server(tmp_path) -> Iterator[ServerProcess]:
    srv = _start_server(
        tmp_path, {"TILLIT_SERVER_PING_INTERVAL_S": "1", "TILLIT_SERVER_PING_TIMEOUT_S": "1"}
    )
    yield srv
    srv.stop()


async def test_a_silent_connection_is_closed_and_a_live_one_is_kept(
    quick_heartbeat_server: ServerProcess, make_visitor: MakeVisitor
) -> None:
    """With a 1 s ping and 1 s to answer, a socket that sends nothing for 2 s is gone
    (a phone that lost its network), while a page that answers the pings stays."""
    live = await make_visitor(quick_heartbeat_server)
    url = quick_heartbeat_server.base_url + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        opened = await ws.receive_str(timeout=5)
        assert opened.startswith("0{")
        began = time.monotonic()
        frames = []
        while True:  # takes the pings, never answers
            msg = await ws.receive(timeout=10)
            if msg.type != aiohttp.WSMsgType.TEXT:
                break
            frames.append(msg.data)
        silent_for = time.monotonic() - began
    assert "2" in frames  # it was pinged
    assert 1.5 <= silent_for <= 5.0, silent_for
    await asyncio.sleep(max(0.0, 3.0 - silent_for))
    assert live.connected
    ok(await live.start(lang="sv"))


async def test_a_chattering_client_that_never_answers_a_ping_is_disconnected(
    quick_heartbeat_server: ServerProcess,
) -> None:
    """Frames that are not pongs do not keep a connection alive: past the ping timeout
    the server hangs up, whatever the client keeps sending."""
    url = quick_heartbeat_server.base_url + "/socket.io/?EIO=4&transport=websocket"
    async with aiohttp.ClientSession() as http, http.ws_connect(url) as ws:
        assert (await ws.receive_str(timeout=5)).startswith("0{")
        began = time.monotonic()
        frames = []

        async def chatter() -> None:
            while True:
                await ws.send_str("6")  # an Engine.IO no-op, never a pong
                await asyncio.sleep(0.2)

        noise = asyncio.create_task(chatter())
        try:
            while True:
                msg = await ws.receive(timeout=10)
                if msg.type != aiohttp.WSMsgType.TEXT:
                    break
                frames.append(msg.data)
        finally:
            noise.cancel()
        ended_after = time.monotonic() - began
    assert "2" in frames  # it was pinged
    assert 2.0 <= ended_after <= 6.0, ended_after


def test_packet_json_reads_and_writes_like_the_library_and_refuses_huge_integers() -> None:
    from chat_server.local_fanout import PacketJson

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
    from chat_server.settings import STATIC_DIR

    for page in ("visitor.js", "console.js"):
        source = (STATIC_DIR / page).read_text()
        assert source.count("window.io(") == 1, page
        assert 'transports: ["websocket"]' in source, page
