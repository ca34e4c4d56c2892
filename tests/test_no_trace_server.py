"""No trace, server side (issue 3): the headers on every visitor response, the exit
endpoint the quick exit's beacon hits, and error paths that name no one.

`tests/test_purge_and_traces.py` already proves that an ordinary chat leaves no text,
address or user agent in the data files and the log; this module covers what goes wrong:
malformed requests, unknown routes, refused and oversized bodies, bad events.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import time
from html import unescape as html_unescape
from urllib.parse import urljoin, urlsplit

import aiohttp
import pytest
from protocol_client import error_code, ok, open_chat
from support import TEST_USER_AGENT, MakeCounselor, MakeVisitor, ServerProcess

EXIT = "/api/visitor/exit"
# A documentation address (RFC 5737) that can only reach the server through our headers.
FORWARDED_IP = "203.0.113.77"
SNEAKY_AGENT = "SnoopAgent/9.9 (Lövskog-telefon)"
VISITOR_PAGE_PATHS = [
    "/", "/?lang=en", "/static/visitor/main.js", "/static/chat-session.js",
    "/static/quick-exit.js", "/static/visitor.css",
    "/static/noscript.css", "/static/e2e.js", "/static/favicon.svg",
    "/static/vendor/socket.io.min.js",
]


def assert_no_trace_headers(headers: aiohttp.typedefs.LooseHeaders, what: str) -> None:
    h = {k.lower(): v for k, v in dict(headers).items()}
    assert h.get("cache-control") == "no-store", (what, h)
    assert h.get("referrer-policy") == "no-referrer", (what, h)
    csp = h.get("content-security-policy", "")
    assert "default-src 'self'" in csp, (what, csp)
    assert "unsafe-inline" not in csp and "unsafe-eval" not in csp, (what, csp)
    assert "set-cookie" not in h, (what, h)


def headers(extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"User-Agent": TEST_USER_AGENT, **(extra or {})}


async def post_exit(
    base_url: str, body: bytes | str, content_type: str = "text/plain;charset=UTF-8",
    extra: dict[str, str] | None = None,
) -> tuple[int, dict, dict[str, str]]:
    async with aiohttp.ClientSession() as session, session.post(
        base_url + EXIT, data=body,
        headers=headers({"Content-Type": content_type, **(extra or {})}),
    ) as resp:
        text = await resp.text()
        return resp.status, (json.loads(text) if text else {}), dict(resp.headers)


def beacon_body(token: str, reason: str | None = "quick_exit") -> str:
    body = {"resume_token": token}
    if reason:
        body["reason"] = reason
    return json.dumps(body)


# ----------------------------------------------------------------------------- headers


async def test_every_visitor_response_carries_the_no_trace_headers(server: ServerProcess) -> None:
    base = server.base_url
    async with aiohttp.ClientSession() as session:
        for path in VISITOR_PAGE_PATHS:
            async with session.get(base + path, headers=headers()) as resp:
                assert resp.status == 200, path
                assert_no_trace_headers(resp.headers, path)
        # Engine.IO's handshake, with its cookie off: long-polling is refused (WebSocket
        # only), with the headers all the same.
        async with session.get(
            base + "/socket.io/?EIO=4&transport=polling", headers=headers()
        ) as resp:
            assert resp.status == 400
            assert_no_trace_headers(resp.headers, "socket.io polling refusal")
        async with session.ws_connect(
            base + "/socket.io/?EIO=4&transport=websocket", headers=headers()
        ) as ws:
            assert_no_trace_headers(ws._response.headers, "socket.io websocket handshake")
            opening = await ws.receive_str()
            assert opening.startswith("0{"), opening
        # Errors too: an unknown path and a refused exit.
        async with session.get(base + "/no-such-page", headers=headers()) as resp:
            assert resp.status == 404
            assert_no_trace_headers(resp.headers, "404")
    status, _, exit_headers = await post_exit(base, "{}")
    assert status == 400
    assert_no_trace_headers(exit_headers, "exit endpoint")
    assert exit_headers.get("Clear-Site-Data") == '"storage"'


async def test_the_page_submits_nothing_and_loads_nothing_from_elsewhere(
    server: ServerProcess,
) -> None:
    async with aiohttp.ClientSession() as session, session.get(
        server.base_url + "/", headers=headers()
    ) as resp:
        html = await resp.text()
    # The message field is never a form field a browser would remember.
    textarea = re.search(r"<textarea[^>]*id=\"message-input\"[^>]*>", html).group(0)
    assert 'autocomplete="off"' in textarea and 'spellcheck="false"' in textarea
    for form in re.findall(r"<form[^>]*>", html):
        assert 'autocomplete="off"' in form, form
    # No inline script (the config is inert JSON), no inline style, no handler attributes.
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", html, re.S)
    for attrs, content in scripts:
        assert 'src="/static/' in attrs or 'type="application/json"' in attrs, attrs
        assert not content.strip() or 'type="application/json"' in attrs
    assert "<style" not in html and " style=" not in html
    assert not re.search(r"\son[a-z]+=", html)
    # Everything the page fetches by itself (scripts, styles, icon) is same-origin; links
    # elsewhere (the exit, referral sites) are only followed when the person chooses to.
    own = urlsplit(server.base_url).netloc
    fetched = re.findall(r"\ssrc=\"([^\"]+)\"", html) + re.findall(
        r"<link[^>]*\shref=\"([^\"]+)\"", html)
    assert len(fetched) >= 5, fetched
    for url in fetched:
        resolved = urlsplit(urljoin(server.base_url + "/", html_unescape(url)))
        assert resolved.netloc == own, url
    # The quick exit is a plain link off the site, first thing after the skip link.
    assert re.search(
        r'<a id="skip-to-exit"[^>]*href="#quick-exit".*?<a id="quick-exit"[^>]*'
        r'rel="nofollow noreferrer"', html, re.S,
    )
    assert "<title>Samtal</title>" in html


# ----------------------------------------------------------------------------- exit endpoint


QUICK_EXIT_HEARD_WITHIN_S = 3.0


async def test_the_exit_beacon_ends_the_chat_and_the_counselor_sees_quick_exit(
    server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    counselor = await make_counselor()
    visitor = await make_visitor()
    chat_id = await open_chat(visitor, counselor, lang="sv", age_group="16_17")
    ok(await visitor.send("Kanelbulle-Zebra-1188: jag måste gå nu"))
    await counselor.receive()

    started = time.perf_counter()
    status, body, resp_headers = await post_exit(server.base_url, beacon_body(visitor.resume_token))
    ended = await counselor.wait_for_event("chat:ended", lambda d: d.get("chat_id") == chat_id)
    elapsed = time.perf_counter() - started

    assert (status, body) == (204, {})
    assert resp_headers.get("Clear-Site-Data") == '"storage"'
    assert ended == {"chat_id": chat_id, "by": "visitor", "reason": "quick_exit"}
    # At once, not when the resume window runs out (chat.resume_window_s): about 0.1 s
    # when measured, with room for a busy machine.
    assert elapsed < QUICK_EXIT_HEARD_WITHIN_S, (
        f"the counselor heard of the quick exit after {elapsed:.3f}s")
    assert (await visitor.wait_for_event("chat:ended"))["reason"] == "quick_exit"
    # A second beacon (the page's pagehide after the exit) changes nothing.
    status, _, _ = await post_exit(server.base_url, beacon_body(visitor.resume_token))
    assert status == 204
    assert len(counselor.events_named("chat:ended")) == 1
    # The token is a bearer secret: never in the log.
    assert visitor.resume_token not in server.log_text()
    assert f"POST {EXIT} 204" in server.log_text()


@pytest.mark.parametrize(
    ("content_type", "encode"),
    [
        ("text/plain;charset=UTF-8", lambda t: beacon_body(t)),
        ("application/json", lambda t: beacon_body(t)),
        ("application/x-www-form-urlencoded", lambda t: f"resume_token={t}&reason=quick_exit"),
    ],
    ids=["beacon-string", "beacon-json-blob", "form"],
)
async def test_the_exit_accepts_what_a_beacon_sends(
    server: ServerProcess, make_visitor: MakeVisitor, content_type: str, encode
) -> None:
    visitor = await make_visitor()
    ok(await visitor.start(lang="sv"))
    status, _, _ = await post_exit(server.base_url, encode(visitor.resume_token), content_type)
    assert status == 204
    ended = await visitor.wait_for_event("chat:ended")
    assert ended["reason"] == "quick_exit"


async def test_the_pagehide_beacon_ends_a_chat_without_calling_it_a_quick_exit(
    server: ServerProcess, make_visitor: MakeVisitor
) -> None:
    visitor = await make_visitor()
    ok(await visitor.start(lang="sv"))
    status, _, _ = await post_exit(server.base_url, beacon_body(visitor.resume_token, None))
    assert status == 204
    ended = await visitor.wait_for_event("chat:ended")
    assert ended["by"] == "visitor" and "reason" not in ended


@pytest.mark.parametrize(
    ("body", "content_type", "extra", "status", "code"),
    [
        ("not json", "text/plain", {}, 400, "invalid_payload"),
        ('["a list"]', "text/plain", {}, 400, "invalid_payload"),
        ('{"resume_token": "short"}', "text/plain", {}, 400, "invalid_payload"),
        ('{"resume_token": "TOKEN", "reason": "bored"}', "text/plain", {}, 400,
         "invalid_payload"),
        (b"\xff\xfe{}", "text/plain", {}, 400, "invalid_payload"),
        ('{"resume_token": "TOKEN"}', "image/png", {}, 415, "invalid_payload"),
        ('{"resume_token": "' + "x" * 600 + '"}', "text/plain", {}, 413, "too_large"),
        ('{"resume_token": "TOKEN"}', "text/plain", {"Sec-Fetch-Site": "cross-site"}, 403,
         "forbidden"),
        ('{"resume_token": "TOKEN"}', "text/plain", {"Origin": "https://evil.example"}, 403,
         "forbidden"),
        ('{"resume_token": "' + "A" * 43 + '"}', "text/plain", {}, 404, "not_found"),
    ],
    ids=["not-json", "not-object", "short-token", "bad-reason", "not-utf8", "wrong-type",
         "too-large", "cross-site", "foreign-origin", "unknown-token"],
)
async def test_a_bad_exit_request_gets_a_clear_error_and_ends_nothing(
    server: ServerProcess, make_visitor: MakeVisitor,
    body, content_type: str, extra: dict[str, str], status: int, code: str,
) -> None:
    visitor = await make_visitor()
    ok(await visitor.start(lang="sv"))
    if isinstance(body, str):
        body = body.replace("TOKEN", visitor.resume_token)
    got_status, got, resp_headers = await post_exit(server.base_url, body, content_type, extra)
    assert (got_status, got["error"]["code"]) == (status, code)
    assert resp_headers.get("Clear-Site-Data") == '"storage"'
    # The visitor's chat is untouched and still theirs.
    await asyncio.sleep(0.1)
    assert visitor.events_named("chat:ended") == []
    resumed = await visitor.resume()
    assert resumed.get("ok") and resumed["state"] == "queued", resumed
    assert visitor.resume_token not in server.log_text()


async def test_a_same_origin_beacon_with_origin_null_is_accepted(
    server: ServerProcess, make_visitor: MakeVisitor
) -> None:
    """Under `Referrer-Policy: no-referrer` a same-origin POST may carry `Origin: null`."""
    visitor = await make_visitor()
    ok(await visitor.start(lang="sv"))
    status, _, _ = await post_exit(
        server.base_url, beacon_body(visitor.resume_token), extra={
            "Origin": "null", "Sec-Fetch-Site": "same-origin",
        },
    )
    assert status == 204


# ----------------------------------------------------------------------------- error paths


def raw_request(port: int, data: bytes) -> bytes:
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        s.sendall(data)
        chunks = []
        try:
            while chunk := s.recv(65536):
                chunks.append(chunk)
        except TimeoutError:
            pass
        return b"".join(chunks)


async def test_error_paths_record_no_address_and_no_user_agent(
    fresh_server: ServerProcess, make_visitor: MakeVisitor
) -> None:
    srv = fresh_server
    agent_line = f"User-Agent: {SNEAKY_AGENT}\r\nX-Forwarded-For: {FORWARDED_IP}\r\n".encode()
    # Malformed requests that aiohttp refuses before any handler runs; their error report
    # would quote the offending bytes and name the peer address.
    bad_requests = [
        b"GET / HTTP/1.1\r\nHost: x\r\n" + agent_line + b"Not A Header\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: x\r\nUser-Agent: " + SNEAKY_AGENT.encode("utf-8")
        + b"\x01 " + FORWARDED_IP.encode() + b"\r\n\r\n",
        b"GET /\x01" + FORWARDED_IP.encode() + b" HTTP/1.1\r\nHost: x\r\n" + agent_line + b"\r\n",
        b"POST " + EXIT.encode() + b" HTTP/1.1\r\nHost: x\r\n" + agent_line
        + b"Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\nabc",
    ]
    for data in bad_requests:
        answer = await asyncio.to_thread(raw_request, srv.port, data)
        assert answer.startswith(b"HTTP/1.") and b" 400 " in answer.split(b"\r\n")[0], answer[:80]

    spy = {"User-Agent": SNEAKY_AGENT, "X-Forwarded-For": FORWARDED_IP,
           "X-Real-IP": FORWARDED_IP, "Forwarded": f"for={FORWARDED_IP}"}
    async with aiohttp.ClientSession() as session:
        for method, path, kw in [
            ("GET", "/no-such-page?ip=" + FORWARDED_IP, {}),
            ("GET", EXIT, {}),  # 405
            ("POST", "/api/console/login", {"data": "{not json"}),
            ("POST", EXIT, {"data": "x" * 100_000}),  # larger than the app's body limit
            ("GET", "/socket.io/?EIO=4&transport=polling&sid=nonexistent", {}),
            ("POST", "/socket.io/?EIO=4&transport=polling&sid=nonexistent", {"data": "4x"}),
        ]:
            async with session.request(method, srv.base_url + path, headers=spy, **kw) as resp:
                assert resp.status >= 400, (method, path, resp.status)

    # Bad Socket.IO events from a visitor: each gets an error ack, nothing more.
    visitor = await make_visitor(srv)
    assert error_code(await visitor.call("chat:start", "not an object")) == "invalid_payload"
    assert error_code(await visitor.call("msg:send", {"chat_id": FORWARDED_IP})) is not None
    assert error_code(await visitor.call("chat:resume", {"resume_token": 7})) is not None

    await visitor.disconnect()
    srv.stop()
    log = srv.log_text()
    assert "Error handling request" in log, "the malformed requests were not reported"
    assert "malformed request" in log
    for needle in (FORWARDED_IP, SNEAKY_AGENT, "SnoopAgent", "Lövskog", TEST_USER_AGENT):
        assert needle not in log, f"{needle!r} in the log:\n{log}"
    listen = f"127.0.0.1:{srv.port}"
    for line in log.splitlines():
        assert "127.0.0.1" not in line.replace(listen, ""), line
    for path in srv.data_files():
        data = path.read_bytes()
        for needle in (FORWARDED_IP, "SnoopAgent", TEST_USER_AGENT, "127.0.0.1"):
            assert needle.encode() not in data, (path.name, needle)
