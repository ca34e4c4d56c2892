"""Console HTTP routes: login, logout and the console page."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web

from tillit.chat_server.app_keys import SETTINGS
from tillit.chat_server.i18n import get_translations
from tillit.chat_server.templating import render, translate
from tillit.counselor_console import accounts, audit, sessions
from tillit.counselor_console.app_keys import DURABLE_DB, LOGIN_THROTTLE
from tillit.counselor_console.console_config import workflow_config
from tillit.counselor_console.totp_crypto import TOTP_SEALER
from tillit.counselor_console.workflow_config import load_workflow

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_LOGIN_BODY = 4096
# Closes the `/counselor` sockets of a session or an account (set by the app at start-up).
SocketCloser = Callable[..., Awaitable[int]]
END_SOCKETS = web.AppKey("end_console_sockets", SocketCloser)


async def end_sockets(request: web.Request, *, token_hash: str | None = None,
                      username: str | None = None) -> None:
    """Logout, disable and reset end the open console sockets too, not only the cookie.

    Sockets on other processes are reached through the Socket.IO manager (shared store);
    each process's periodic session check is the backstop."""
    await request.app[END_SOCKETS](token_hash=token_hash, username=username)


def _lang(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    wanted = request.query.get("lang", "")
    return wanted if wanted in ("sv", "en") else settings.console.lang


def session_cookie_name(request: web.Request) -> str:
    """`__Host-tillit_session`, or `tillit_session` with `server.development` (http)."""
    return sessions.cookie_name(request.app[SETTINGS].server.development)


async def current_session(request: web.Request) -> sessions.Session | None:
    settings = request.app[SETTINGS]
    return await sessions.lookup(
        request.app[DURABLE_DB],
        request.cookies.get(session_cookie_name(request)),
        settings.console.session_max_age_s,
        settings.console.session_idle_s,
    )


def home_for(role: str, chat_roles: list[str]) -> str:
    """The page a role works on, where login lands: admins manage accounts, supervisors
    read statistics, chat-taking roles get the queue."""
    if role == "admin":
        return "/console/admin"
    if role == "supervisor" or role not in chat_roles:
        return "/console/stats"
    return "/console"


def staff_context(request: web.Request, session: sessions.Session) -> dict[str, Any]:
    """What the staff navigation (_staff_nav.html) needs on every staff page."""
    chat_roles = request.app[SETTINGS].counselor.chat_roles
    return {
        "role": session.role,
        "display_name": session.label,
        "csrf_token": session.csrf_token,
        "can_chat": session.role in chat_roles,
        "home": home_for(session.role, chat_roles),
    }


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin.split("://", 1)[-1] == request.host


async def login_page(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session:
        raise web.HTTPFound(home_for(session.role,
                                     request.app[SETTINGS].counselor.chat_roles))
    html = render(TEMPLATES, "login.html", _lang(request), "console",
                  site_title=request.app[SETTINGS].site.title)
    return web.Response(text=html, content_type="text/html")


async def console_page(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/console/login")
    chat_roles = request.app[SETTINGS].counselor.chat_roles
    if session.role not in chat_roles:  # the queue would only show "does not take chats"
        raise web.HTTPFound(home_for(session.role, chat_roles))
    lang = _lang(request)
    html = render(
        TEMPLATES, "console.html", lang, "console",
        site_title=request.app[SETTINGS].site.title,
        username=session.username,
        display_name=session.label,
        role=session.role,
        csrf_token=session.csrf_token,
        is_admin=session.role == "admin",
        client_config=_client_config(request, lang, session),
    )
    return web.Response(text=html, content_type="text/html")


def _client_config(request: web.Request, lang: str, session: sessions.Session) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    try:
        from tillit.counselor_console.console_texts import CLIENT_TEXTS
    except ImportError:  # pragma: no cover - the texts module ships with the console
        CLIENT_TEXTS = {}
    label = get_translations(lang, "visitor").gettext  # vocabulary labels live there
    vocab = {
        name: [{"id": e["id"], "label": label(e["label"])} for e in settings.vocab.get(name, [])]
        for name in ("age_groups", "genders", "roles", "topics", "sectors")
    }
    # First or repeat contact: the console's own wording (`stats_label`), not the visitor's.
    console_label = get_translations(lang, "console").gettext
    vocab["contact"] = [{"id": e["id"], "label": console_label(e.get("stats_label") or e["label"])}
                        for e in settings.vocab.get("contact", [])]
    vocab["languages"] = [{"id": e["id"], "label": e["name"]} for e in settings.vocab["languages"]]
    return {
        "texts": translate(lang, "console", CLIENT_TEXTS),
        "max_text_chars": settings.chat.max_text_chars,
        "vocab": vocab,
        "csrf_token": session.csrf_token,
        "username": session.username,
        "role": session.role,
        "languages": session.languages,
        "can_chat": session.role in settings.counselor.chat_roles,
        "workflow": workflow_config(settings, load_workflow(), lang),
    }


async def read_json(request: web.Request, max_bytes: int) -> tuple[Any, web.Response | None]:
    """A console API's JSON body, or the error to answer: a body over `max_bytes` is
    refused before it is read; one that is not JSON reads as None (the caller's shape
    check then refuses it with its own message)."""
    if (request.content_length or 0) > max_bytes:
        return None, _json_error(413, "too_large", "request too large")
    try:
        return json.loads(await request.text()), None
    except (ValueError, UnicodeDecodeError):
        return None, None


async def login_api(request: web.Request) -> web.Response:
    if not _same_origin(request) or request.content_type != "application/json":
        return _json_error(403, "forbidden", "JSON from this site only")
    data, refused = await read_json(request, MAX_LOGIN_BODY)
    if refused is not None:
        return refused
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and 0 < len(data[k]) <= 256
        for k in ("username", "password", "totp")
    ):
        return _json_error(400, "invalid_payload", "username, password and totp are required")
    username = data["username"].strip()
    throttle = request.app[LOGIN_THROTTLE]
    db = request.app[DURABLE_DB]
    # Reserved before the check, so parallel guesses cannot all reach Argon2; refused
    # attempts are only counted (a periodic `login.summary` audit row), never one row each.
    if not throttle.reserve(username):
        return _json_error(429, "rate_limited", "too many attempts; wait a while")
    # The global slowdown: a bounded number of checks at once, existing accounts first
    # (bounded by the per-account limit, so invented names cannot queue ahead of them).
    known = await accounts.get(db, username)
    async with throttle.checks.slot(first=known is not None):
        account = await accounts.verify_login(
            db, username, data["password"], data["totp"].strip(),
            sealer=request.app[TOTP_SEALER])
    if account is None:
        if known is not None:
            await audit.record(db, "login.failed", actor=known.username)
        else:  # no durable row with a name an attacker chose
            throttle.failed_for_unknown_name()
        return _json_error(401, "unauthorized", "wrong username, password or code")
    throttle.succeeded(username)
    token = await sessions.start(db, account.username)
    await audit.record(db, "login", actor=account.username)
    settings = request.app[SETTINGS]
    development = settings.server.development
    response = web.json_response({
        "username": account.username, "role": account.role,
        "home": home_for(account.role, settings.counselor.chat_roles),
    })
    # A browser-session cookie (no Max-Age): closing the browser forgets it; the server
    # still ends the session after console.session_max_age_s / session_idle_s.
    response.set_cookie(
        sessions.cookie_name(development), token,
        httponly=True, samesite="Strict", path="/", secure=not development,
    )
    return response


async def logout_api(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session is None:
        return _json_error(401, "unauthorized", "not logged in")
    if request.headers.get("X-CSRF-Token") != session.csrf_token or not _same_origin(request):
        return _json_error(403, "forbidden", "missing or wrong CSRF token")
    db = request.app[DURABLE_DB]
    name = session_cookie_name(request)
    await sessions.end(db, request.cookies[name])
    await end_sockets(request, token_hash=session.token_hash)
    await audit.record(db, "logout", actor=session.username)
    response = web.json_response({"ok": True})
    response.del_cookie(name, path="/", secure=name.startswith("__Host-"))
    return response


async def logout_form(request: web.Request) -> web.Response:
    """Log out from the pages without script (statistics, administration): a plain form
    with the CSRF token, then back to the login page."""
    session = await current_session(request)
    if session is None:
        raise web.HTTPSeeOther("/console/login")
    if (request.content_length or 0) > MAX_LOGIN_BODY:
        raise web.HTTPRequestEntityTooLarge(max_size=MAX_LOGIN_BODY,
                                            actual_size=request.content_length or 0)
    form = await request.post()
    token = form.get("csrf_token")
    if token != session.csrf_token or not _same_origin(request):
        raise web.HTTPForbidden(text="missing or wrong CSRF token")
    db = request.app[DURABLE_DB]
    await sessions.end(db, request.cookies[sessions.COOKIE_NAME])
    await audit.record(db, "logout", actor=session.username)
    response = web.HTTPSeeOther("/console/login")
    response.del_cookie(sessions.COOKIE_NAME, path="/")
    raise response


def setup_console_routes(app: web.Application) -> None:
    app.router.add_post("/console/logout", logout_form)
    app.router.add_get("/console/login", login_page)
    app.router.add_get("/console", console_page)
    app.router.add_post("/api/console/login", login_api)
    app.router.add_post("/api/console/logout", logout_api)
