"""An account's own password change (docs/protocol.md E5, E12.5): a page for every staff
role and its JSON route. A counselor's key record is rewrapped in the browser and stored
with the new password hash in one transaction, so the mailboxes open with the new one."""

from __future__ import annotations

from aiohttp import web

from tillit.chat_server.app_keys import MAILBOXES
from tillit.counselor_console import accounts, audit
from tillit.counselor_console.app_keys import DURABLE_DB, LOGIN_THROTTLE
from tillit.counselor_console.routes import _json_error as json_error
from tillit.counselor_console.routes import _same_origin as same_origin
from tillit.counselor_console.routes import current_session, end_sockets, read_json
from tillit.counselor_console.staff_pages import staff_page
from tillit.safety import mailbox_shapes
from tillit.safety.errors import ProtocolError

MAX_PASSWORD_BODY = 8192  # two passwords and a key record (about 1 KB)


async def password_page(request: web.Request) -> web.Response:
    """Every staff role changes its own password here; a counselor's key record (E12.5)
    goes into the page so that the browser can rewrap it (ciphertext, the account's own)."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/console/login")
    desk = request.app.get(MAILBOXES)
    record = await desk.store.key_record(session.username) if desk is not None else None
    return staff_page(request, "password.html", session, page="password", key_record=record,
                      password_min=accounts.PASSWORD_MIN_CHARS,
                      password_max=accounts.PASSWORD_MAX_CHARS)


async def password_api(request: web.Request) -> web.Response:
    """The account's own password change (docs/protocol.md E5): the old password, counted
    by the login throttle; the policy of new accounts; the new hash and the rewrapped key
    record in one transaction; the account's other sessions end."""
    session = await current_session(request)
    if session is None:
        return json_error(401, "unauthorized", "not logged in")
    if request.headers.get("X-CSRF-Token") != session.csrf_token or not same_origin(request) \
            or request.content_type != "application/json":
        return json_error(403, "forbidden", "JSON from this site with the CSRF token only")
    data, refused = await read_json(request, MAX_PASSWORD_BODY)
    if refused is not None:
        return refused
    if not isinstance(data, dict) or not {"old_password", "new_password"} <= set(data) \
            <= {"old_password", "new_password", "key"} or not all(
                isinstance(data[k], str) and 0 < len(data[k]) <= 1024  # the policy says more
                for k in ("old_password", "new_password")):
        return json_error(400, "invalid_payload",
                           "old_password and new_password are required; key is optional")
    old, new = data["old_password"], data["new_password"]
    try:
        accounts.check_password_policy(new)
    except accounts.AccountError as exc:
        return json_error(400, "invalid_payload", str(exc))
    if new == old:
        return json_error(400, "invalid_payload", "password: the new one must differ")
    record = None
    if data.get("key") is not None:
        try:
            record = mailbox_shapes.key_record("key", data["key"], "counselor-key")
        except ProtocolError as exc:
            return json_error(400, "invalid_payload", exc.message)
    throttle = request.app[LOGIN_THROTTLE]
    db = request.app[DURABLE_DB]
    if not throttle.reserve(session.username):
        return json_error(429, "rate_limited", "too many attempts; wait a while")
    async with throttle.checks.slot(first=True):
        matches = await accounts.password_matches(db, session.username, old)
    if not matches:
        await audit.record(db, "login.failed", actor=session.username, step="password_change")
        return json_error(401, "unauthorized", "wrong password")
    throttle.succeeded(session.username)
    try:
        ended = await accounts.change_password(db, session.username, new, record,
                                               keep_token_hash=session.token_hash)
    except accounts.AccountError as exc:
        return json_error(409, "conflict", str(exc))
    for token_hash in ended:
        await end_sockets(request, token_hash=token_hash)
    await audit.record(db, "account.password_change", actor=session.username,
                       key=record is not None, sessions_ended=len(ended))
    return web.json_response({"ok": True, "key": record is not None,
                              "sessions_ended": len(ended)})


def setup_password_routes(app: web.Application) -> None:
    app.router.add_get("/console/password", password_page)
    app.router.add_post("/api/console/password", password_api)
