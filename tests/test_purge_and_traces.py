"""Nothing of a chat stays on the server: after it ends, no byte of its ciphertext, no
plaintext, no resume token, user agent or client address is in the data dir or the log."""

from __future__ import annotations

import asyncio
import base64
import os
import re
from collections.abc import Iterable
from pathlib import Path

import pytest
from protocol_client import CounselorClient, VisitorClient, b64u_decode, ok, open_chat
from support import TEST_USER_AGENT, MakeCounselor, MakeVisitor, ServerProcess

VISITOR_SECRET = "Kanelbulle-Zebra-7319: pappa läser mina sms"
OTHER_AGENTS = re.compile(r"\b(?:Mozilla|python-socketio|aiohttp/\d|Python/3|Python-urllib)")
COUNSELOR_SECRET = "Solros-Ugglan-4402: vi kan prata om en trygg plats"


def needles_for_envelope(env: dict) -> dict[str, bytes]:
    """What would betray an envelope: its base64url text, raw bytes, and slices of both."""
    ct_text = env["ct"]
    raw = b64u_decode(ct_text)
    return {
        f"ct b64u of id {env.get('id')}": ct_text.encode(),
        f"ct b64u middle of id {env.get('id')}": ct_text[8:40].encode(),
        f"ct std b64 of id {env.get('id')}": base64.b64encode(raw).rstrip(b"="),
        f"ct raw of id {env.get('id')}": raw,
        f"ct raw head of id {env.get('id')}": raw[:16],
        f"ct raw tag of id {env.get('id')}": raw[-16:],
    }


def scan(paths: Iterable[Path], needles: dict[str, bytes]) -> list[tuple[str, str]]:
    """(file, needle name) for every needle found in any file."""
    found = []
    for path in paths:
        data = path.read_bytes()
        for name, needle in needles.items():
            if needle and needle in data:
                found.append((path.name, name))
    return found


async def wait_until_clean(
    srv: ServerProcess, needles: dict[str, bytes], within_s: float = 5.0
) -> list[tuple[str, str]]:
    """Poll the data dir until no needle is found (the purge may run just after the ack)."""
    deadline = asyncio.get_running_loop().time() + within_s
    while True:
        found = scan(srv.data_files(), needles)
        if not found or asyncio.get_running_loop().time() > deadline:
            return found
        await asyncio.sleep(0.2)


async def converse(
    visitor: VisitorClient, counselor: CounselorClient, chat_id: str, tag: str
) -> None:
    for i in range(4):
        ok(await visitor.send(f"{VISITOR_SECRET} [{tag}{i}] " + "ö" * (300 * i)))
        await counselor.receive()
        ok(await counselor.send(chat_id, f"{COUNSELOR_SECRET} [{tag}{i}]"))
        await visitor.receive()


def all_envelopes(*clients: VisitorClient | CounselorClient) -> list[dict]:
    envs: dict[str, dict] = {}
    for client in clients:
        for env in client.sent:
            envs[env["ct"]] = env
        for _, data in client.events:
            if isinstance(data, dict) and "ct" in data:
                envs[data["ct"]] = data
    return list(envs.values())


@pytest.mark.skipif(
    os.environ.get("TILLIT_TEST_STORE") == "redis",
    reason="scans the data directory's files; with Redis the ciphertext is never on disk "
    "(tests/test_failover.py and tests/test_stores.py check the Redis keys instead)",
)
async def test_ended_chats_leave_no_trace(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    srv = fresh_server
    counselor = await make_counselor(srv, "counselor_aster_purge")
    by_visitor, by_counselor = await make_visitor(srv), await make_visitor(srv)
    chat_a = await open_chat(
        by_visitor, counselor, lang="sv", age_group="16_17", topics=["control"]
    )
    chat_b = await open_chat(by_counselor, counselor, lang="sv", age_group="18_25")
    await converse(by_visitor, counselor, chat_a, "A")
    await converse(by_counselor, counselor, chat_b, "B")

    envelopes = all_envelopes(by_visitor, by_counselor, counselor)
    assert len(envelopes) == 16
    needles: dict[str, bytes] = {}
    for env in envelopes:
        needles.update(needles_for_envelope(env))
    secrets = {
        "visitor plaintext": VISITOR_SECRET.encode(),
        "counselor plaintext": COUNSELOR_SECRET.encode(),
        "plaintext marker": b"Kanelbulle-Zebra",
        "user agent": TEST_USER_AGENT.encode(),
        "user agent name": b"TillitTestAgent",
    }
    tokens: dict[str, bytes] = {}
    for i, v in enumerate((by_visitor, by_counselor)):
        assert v.resume_token
        tokens[f"resume token {i} text"] = v.resume_token.encode()
        tokens[f"resume token {i} raw"] = b64u_decode(v.resume_token)
    tokens["console session cookie"] = counselor.session_cookie.encode()

    # Positive control: while the chats are open their ciphertext IS on disk (the store
    # is SQLite), so the scanner can see what it looks for.
    stored = scan(srv.data_files(), needles)
    assert stored, f"no ciphertext found on disk while chats are open: {srv.data_files()}"
    # Things that must never be on disk, not even while the chat is open.
    assert scan(srv.data_files(), {**secrets, **tokens}) == []

    ok(await by_visitor.end(), "chat:end")
    ok(await counselor.close(chat_b, {}), "chat:close")
    await by_counselor.wait_for_event("chat:ended")
    await counselor.wait_for_event("chat:ended", lambda d: d.get("chat_id") == chat_a)

    leftovers = await wait_until_clean(srv, needles)
    assert leftovers == [], f"ciphertext of ended chats still on disk: {leftovers[:6]}"
    assert scan(srv.data_files(), {**secrets, **tokens}) == []
    names = {p.name for p in srv.data_files()}
    assert {"tillit.sqlite3", "ephemeral.sqlite3"} <= names, names

    # The log: no message text, no ciphertext, no user agent, no client address.
    log = srv.log_text()
    log_bytes = log.encode()
    hits = [name for name, n in {**needles, **secrets, **tokens}.items() if n in log_bytes]
    assert hits == [], hits
    # The only 127.0.0.1 allowed is the listening address announced at startup.
    listen = f"127.0.0.1:{srv.port}"
    for line in log.splitlines():
        assert "127.0.0.1" not in line.replace(listen, ""), line
        assert not OTHER_AGENTS.search(line), line

    # And after a clean shutdown (WAL and SHM files folded in) still nothing.
    await asyncio.gather(by_visitor.disconnect(), by_counselor.disconnect(), counselor.disconnect())
    srv.stop()
    assert scan(srv.data_files(), {**needles, **secrets, **tokens}) == []
