"""Console HTTP routes: login, logout and the console page."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from aiohttp import web

from chat_server.app_keys import DURABLE_DB, LOGIN_THROTTLE, SETTINGS
from chat_server.i18n import get_translations
from chat_server.templating import render, translate
from counselor_console import accounts, audit, sessions
from counselor_console.console_config import workflow_config
from counselor_console.workflow_config import load_workflow

TEMPLATES = Path(__file__).resolve().parent / "templates"
MAX_LOGIN_BODY = 4096


def _lang(request: web.Request) -> str:
    settings = request.app[SETTINGS]
    wanted = request.query.get("lang", "")
    return wanted if wanted in ("sv", "en") else settings.get("console.lang", "sv")


async def current_session(request: web.Request) -> sessions.Session | None:
    settings = request.app[SETTINGS]
    return await sessions.lookup(
        request.app[DURABLE_DB],
        request.cookies.get(sessions.COOKIE_NAME),
        settings.get("console.session_max_age_s"),
        settings.get("console.session_idle_s"),
    )


def _json_error(status: int, code: str, message: str) -> web.Response:
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


def _same_origin(request: web.Request) -> bool:
    origin = request.headers.get("Origin")
    return origin is None or origin.split("://", 1)[-1] == request.host


async def login_page(request: web.Request) -> web.Response:
    if await current_session(request):
        raise web.HTTPFound("/console")
    html = render(TEMPLATES, "login.html", _lang(request), "console",
                  site_title=request.app[SETTINGS].get("site.title"))
    return web.Response(text=html, content_type="text/html")


async def console_page(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/console/login")
    lang = _lang(request)
    html = render(
        TEMPLATES, "console.html", lang, "console",
        site_title=request.app[SETTINGS].get("site.title"),
        username=session.username,
        display_name=session.display_name,
        role=session.role,
        csrf_token=session.csrf_token,
        is_admin=session.role == "admin",
        client_config=_client_config(request, lang, session),
    )
    return web.Response(text=html, content_type="text/html")


def _client_config(request: web.Request, lang: str, session: sessions.Session) -> dict[str, Any]:
    settings = request.app[SETTINGS]
    try:
        from counselor_console.console_texts import CLIENT_TEXTS
    except ImportError:  # pragma: no cover - the texts module ships with the console
        CLIENT_TEXTS = {}
    label = get_translations(lang, "visitor").gettext  # vocabulary labels live there
    vocab = {
        name: [{"id": e["id"], "label": label(e["label"])} for e in settings.vocab.get(name, [])]
        for name in ("age_groups", "genders", "roles", "topics")
    }
    vocab["languages"] = [{"id": e["id"], "label": e["name"]} for e in settings.vocab["languages"]]
    return {
        "texts": translate(lang, "console", CLIENT_TEXTS),
        "vocab": vocab,
        "csrf_token": session.csrf_token,
        "username": session.username,
        "role": session.role,
        "languages": session.languages,
        "can_chat": session.role in settings.get("counselor.chat_roles"),
        "workflow": workflow_config(settings, load_workflow(), lang),
    }


async def login_api(request: web.Request) -> web.Response:
    if not _same_origin(request) or request.content_type != "application/json":
        return _json_error(403, "forbidden", "JSON from this site only")
    if (request.content_length or 0) > MAX_LOGIN_BODY:
        return _json_error(413, "too_large", "request too large")
    try:
        data = json.loads(await request.text())
    except (ValueError, UnicodeDecodeError):
        data = None
    if not isinstance(data, dict) or not all(
        isinstance(data.get(k), str) and 0 < len(data[k]) <= 256
        for k in ("username", "password", "totp")
    ):
        return _json_error(400, "invalid_payload", "username, password and totp are required")
    username = data["username"].strip()
    throttle = request.app[LOGIN_THROTTLE]
    db = request.app[DURABLE_DB]
    if throttle.blocked(username):
        if throttle.first_refusal(username):  # once per block, not per attempt
            await audit.record(db, "login.throttled", actor=username[:64])
        return _json_error(429, "rate_limited", "too many attempts; wait a while")
    account = await accounts.verify_login(db, username, data["password"], data["totp"].strip())
    if account is None:
        throttle.failed(username)
        await audit.record(db, "login.failed", actor=username[:64])
        return _json_error(401, "unauthorized", "wrong username, password or code")
    throttle.succeeded(username)
    token = await sessions.start(db, account.username)
    await audit.record(db, "login", actor=account.username)
    settings = request.app[SETTINGS]
    response = web.json_response({"username": account.username, "role": account.role})
    response.set_cookie(
        sessions.COOKIE_NAME, token,
        httponly=True, samesite="Strict", path="/",
        secure=bool(settings.get("server.secure_cookies")),
        max_age=int(settings.get("console.session_max_age_s")),
    )
    return response


async def logout_api(request: web.Request) -> web.Response:
    session = await current_session(request)
    if session is None:
        return _json_error(401, "unauthorized", "not logged in")
    if request.headers.get("X-CSRF-Token") != session.csrf_token or not _same_origin(request):
        return _json_error(403, "forbidden", "missing or wrong CSRF token")
    db = request.app[DURABLE_DB]
    await sessions.end(db, request.cookies[sessions.COOKIE_NAME])
    await audit.record(db, "logout", actor=session.username)
    response = web.json_response({"ok": True})
    response.del_cookie(sessions.COOKIE_NAME, path="/")
    return response


def setup_console_routes(app: web.Application) -> None:
    app.router.add_get("/console/login", login_page)
    app.router.add_get("/console", console_page)
    app.router.add_post("/api/console/login", login_api)
    app.router.add_post("/api/console/logout", logout_api)
