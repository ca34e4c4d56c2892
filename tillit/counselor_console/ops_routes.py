"""The admin's live operations panel: `GET /console/ops` and `GET /api/console/ops`
(polled by static/ops.js): counselors online, queue length, longest wait and chats in
progress. Numbers only, nothing about who is chatting or what is said."""

from __future__ import annotations

import time

from aiohttp import web

from tillit.chat_server.app_keys import CHATS, SETTINGS
from tillit.chat_server.model import ACTIVE
from tillit.counselor_console import sessions
from tillit.counselor_console.app_keys import DURABLE_DB, STAFF_ONLINE
from tillit.counselor_console.guards import require_role
from tillit.counselor_console.staff_pages import staff_page

ADMIN_ROLES = ("admin",)


async def operations(request: web.Request, now: float | None = None) -> dict[str, int]:
    """The live figures: how many, how long; never who or what."""
    now = time.time() if now is None else now
    chats = request.app[CHATS]
    queue = await chats.queue()
    online = request.app.get(STAFF_ONLINE)
    return {
        "counselors_online": len(await online()) if online else 0,
        "queue_length": len(queue),
        "longest_wait_s": int(max((now - c.created_at for c in queue), default=0)),
        "chats_in_progress": sum(1 for c in await chats.all_chats() if c.state == ACTIVE),
    }


async def ops_page(request: web.Request) -> web.Response:
    session = await require_role(request, ADMIN_ROLES)
    return staff_page(request, "ops.html", session, ops=await operations(request))


async def ops_api(request: web.Request) -> web.Response:
    """Polled every few seconds: reads the session without renewing its idle time, so a
    panel left open on a screen still logs out after `console.session_idle_s`."""
    settings = request.app[SETTINGS]
    session = await sessions.lookup(
        request.app[DURABLE_DB],
        request.cookies.get(sessions.cookie_name(settings.server.development)),
        settings.console.session_max_age_s, settings.console.session_idle_s,
        touch=False,
    )
    if session is None:
        return web.json_response(
            {"error": {"code": "unauthorized", "message": "log in first"}}, status=401)
    if session.role not in ADMIN_ROLES:
        return web.json_response(
            {"error": {"code": "forbidden", "message": "admins only"}}, status=403)
    return web.json_response(await operations(request))


def setup_ops_routes(app: web.Application) -> None:
    app.router.add_get("/console/ops", ops_page)
    app.router.add_get("/api/console/ops", ops_api)
