"""`POST /api/visitor/exit`: the quick exit's beacon ends the chat (issue 3, items 2 and 5).

The visitor page leaves with `location.replace` at once and never waits on the network,
so the chat is ended by a `navigator.sendBeacon` that the browser delivers on its own
after the page is gone. The beacon carries the visitor's resume token, the only proof
of the chat the page holds (in memory). The answer carries `Clear-Site-Data: "storage"`
for any client that gets there, although the page stores nothing.

Why each check:
- a tiny size cap and no logging of the body: the body is a bearer token;
- the content types a beacon sends (`text/plain` for a string, the Blob's type for a
  Blob) and a form body, all holding the same small JSON object;
- a same-origin check (`Sec-Fetch-Site`, `Origin`) so another site cannot fire the
  endpoint from a visitor's browser, although it could not know the token anyway.
"""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

from aiohttp import web

from tillit.chat_server.app_keys import CHATS
from tillit.chat_server.model import VISITOR
from tillit.safety.errors import ProtocolError

EXIT_PATH = "/api/visitor/exit"
MAX_BODY_BYTES = 512
TOKEN_CHARS = 43  # docs/protocol.md E1: 256 bits as base64url
REASONS = {"quick_exit"}
ACCEPTED_TYPES = {"text/plain", "application/json", "application/x-www-form-urlencoded", ""}
SAME_SITE_FETCH = {"same-origin", "none"}
CLEAR_SITE_DATA = '"storage"'
_B64URL = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def _error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _same_origin(request: web.Request) -> bool:
    """False only for a request that says it comes from another site."""
    site = request.headers.get("Sec-Fetch-Site")
    if site is not None and site not in SAME_SITE_FETCH:
        return False
    origin = request.headers.get("Origin")
    # `Origin: null` is what a same-origin POST carries under `Referrer-Policy: no-referrer`.
    if origin and origin != "null":
        return urlsplit(origin).netloc.lower() == request.host.lower()
    return True


def _parse(body: bytes, content_type: str) -> dict[str, Any]:
    """The beacon's `{"resume_token", "reason"?}`, whatever envelope it came in."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise ProtocolError("invalid_payload", "the body is not UTF-8") from None
    if content_type == "application/x-www-form-urlencoded":
        form = parse_qs(text, max_num_fields=4)
        data: Any = {key: values[0] for key, values in form.items()}
    else:
        try:
            data = json.loads(text)
        except ValueError:
            raise ProtocolError("invalid_payload", "the body is not JSON") from None
    if not isinstance(data, dict):
        raise ProtocolError("invalid_payload", "the body must be an object")
    token = data.get("resume_token")
    if not (isinstance(token, str) and len(token) == TOKEN_CHARS and set(token) <= _B64URL):
        raise ProtocolError("invalid_payload", "resume_token must be 43 base64url characters")
    reason = data.get("reason")
    if reason is not None and reason not in REASONS:
        raise ProtocolError("invalid_payload", "reason must be quick_exit or absent")
    return {"resume_token": token, "reason": reason}


async def _read_capped(request: web.Request) -> bytes | None:
    """The body, or None when it is larger than the cap (read no further than that)."""
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        return None
    body = await request.content.read(MAX_BODY_BYTES + 1)
    return None if len(body) > MAX_BODY_BYTES else body


async def exit_chat(request: web.Request) -> web.Response:
    """End the chat the token opens; 204 with `Clear-Site-Data` whatever the outcome."""
    response = await _answer(request)
    response.headers["Clear-Site-Data"] = CLEAR_SITE_DATA
    return response


async def _answer(request: web.Request) -> web.Response:
    if not _same_origin(request):
        return _error(403, "forbidden", "the exit is only for this site's own page")
    if request.content_type not in ACCEPTED_TYPES:
        return _error(415, "invalid_payload", "send text/plain or application/json")
    body = await _read_capped(request)
    if body is None:
        return _error(413, "too_large", f"the body is limited to {MAX_BODY_BYTES} bytes")
    try:
        data = _parse(body, request.content_type)
        chats = request.app[CHATS]
        chat = await chats.by_resume_token(data["resume_token"])
        await chats.end(chat, VISITOR, data["reason"])
    except ProtocolError as err:
        status = 404 if err.code == "not_found" else 400
        return _error(status, err.code, err.message)
    return web.Response(status=204)


def setup_exit_endpoint(app: web.Application) -> None:
    """Registers `POST /api/visitor/exit` (docs/protocol.md E5)."""
    app.router.add_post(EXIT_PATH, exit_chat, name="visitor_exit")
