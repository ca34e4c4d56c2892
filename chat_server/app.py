"""The application factory: one aiohttp app carrying both pages and both namespaces."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import socketio
from aiohttp import web

from chat_server.app_keys import CHATS, DURABLE_DB, LOGIN_THROTTLE, SETTINGS
from chat_server.chats import ChatService
from chat_server.counselor_namespace import CounselorNamespace
from chat_server.feedback import FeedbackBox
from chat_server.relay import Relay
from chat_server.schemas import build_schemas
from chat_server.settings import STATIC_DIR, Settings
from chat_server.stores import EphemeralStore
from chat_server.visitor_namespace import VisitorNamespace
from chat_server.visitor_pages import setup_visitor_pages
from counselor_console import audit, sessions
from counselor_console.database import open_durable
from counselor_console.routes import setup_console_routes
from safety.headers import add_no_trace_headers
from safety.login_throttle import LoginThrottle

EPHEMERAL_FILE = "ephemeral.sqlite3"
# Room for a 16 KiB ciphertext and its envelope; a larger frame closes only its own socket.
MAX_FRAME_BYTES = 64 * 1024
SOCKETIO_PATH = "/socket.io/"


def create_store(settings: Settings) -> EphemeralStore:
    kind = settings.get("server.store")
    if kind == "sqlite":
        from chat_server.stores.sqlite_store import SqliteStore

        return SqliteStore(settings.data_dir / EPHEMERAL_FILE)
    raise ValueError(f"unknown store {kind!r}: use 'sqlite'")


def create_socketio() -> socketio.AsyncServer:
    return socketio.AsyncServer(
        async_mode="aiohttp",
        cookie=None,  # Engine.IO's sticky-session cookie would be a trace on the visitor's device
        max_http_buffer_size=MAX_FRAME_BYTES,
        logger=False,
        engineio_logger=False,
    )


def socketio_handler(sio: socketio.AsyncServer):  # noqa: ANN201 - aiohttp handler
    """Serve Engine.IO, refusing permessage-deflate (PERFORMANCE.md finding 3)."""

    async def handle(request: web.Request) -> web.StreamResponse:
        if "Sec-WebSocket-Extensions" in request.headers:
            headers = request.headers.copy()
            del headers["Sec-WebSocket-Extensions"]
            request = request.clone(headers=headers)
        return await sio.handle_request(request)

    return handle


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def create_app(settings: Settings) -> web.Application:
    app = web.Application(client_max_size=64 * 1024)
    app[SETTINGS] = settings
    app[LOGIN_THROTTLE] = LoginThrottle(
        per_account=settings.get("console.login_failures_per_account"),
        global_limit=settings.get("console.login_failures_global"),
        window_s=settings.get("console.login_window_s"),
    )
    sio = create_socketio()
    handler = socketio_handler(sio)
    for method in ("GET", "POST", "OPTIONS"):
        app.router.add_route(method, SOCKETIO_PATH, handler)

    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    setup_visitor_pages(app, settings)
    setup_console_routes(app)
    app.on_response_prepare.append(add_no_trace_headers)
    app.cleanup_ctx.append(_services(sio))
    return app


def _services(sio: socketio.AsyncServer):  # noqa: ANN201 - aiohttp cleanup context
    async def services(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        durable = await open_durable(settings.data_dir)
        app[DURABLE_DB] = durable
        feedback = FeedbackBox(durable)
        await feedback.setup()
        store = create_store(settings)
        await store.open()

        async def audit_entry(action: str, **fields: object) -> None:
            await audit.record(durable, action, **fields)  # type: ignore[arg-type]

        chats = ChatService(
            store,
            Relay(sio),
            audit_entry,
            child_age_groups=settings.vocab["child_age_groups"],
            resume_window_s=settings.get("chat.resume_window_s"),
            ciphertext_grace_s=settings.get("retention.ciphertext_grace_s"),
            max_queue=settings.get("queue.max_length"),
            default_wait_per_place_s=settings.get("chat.default_wait_per_place_s"),
            feedback=feedback,
        )
        await chats.load()
        app[CHATS] = chats
        schemas = build_schemas(settings)

        async def lookup(token: str | None) -> sessions.Session | None:
            return await sessions.lookup(
                durable, token,
                settings.get("console.session_max_age_s"),
                settings.get("console.session_idle_s"),
            )

        sio.register_namespace(VisitorNamespace(chats, schemas))
        sio.register_namespace(
            CounselorNamespace(chats, schemas, lookup, settings.get("counselor.chat_roles"))
        )
        sweeper = asyncio.create_task(chats.run_sweeper(), name="chat-sweeper")
        yield
        sweeper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await sweeper
        await store.close()
        await durable.close()

    return services
