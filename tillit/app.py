"""The application factory: one aiohttp app carrying both pages and both namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import socketio
from aiohttp import web

from tillit.chat_server.app_keys import CHATS, DURABLE_DB, LOGIN_THROTTLE, SETTINGS, STORE
from tillit.chat_server.chats import ChatService
from tillit.chat_server.compression import compression_middleware
from tillit.chat_server.event_namespace import EventNamespace, SocketGate
from tillit.chat_server.exit_route import setup_exit_endpoint
from tillit.chat_server.opening_hours import OpeningHours
from tillit.chat_server.relay import Relay
from tillit.chat_server.schemas import build_schemas
from tillit.chat_server.settings import STATIC_DIR, Settings, public_origins
from tillit.chat_server.start_guard import StartGuard
from tillit.chat_server.stores import EphemeralStore
from tillit.chat_server.transport.engineio_socket import LeanSocketIOServer
from tillit.chat_server.transport.local_fanout import LocalManager, TextPacket
from tillit.chat_server.visitor_namespace import VisitorNamespace
from tillit.chat_server.visitor_pages import setup_visitor_pages
from tillit.counselor_console import accounts, audit, sessions
from tillit.counselor_console.admin_routes import setup_admin_routes
from tillit.counselor_console.closing import FactWriter
from tillit.counselor_console.console_schemas import build_console_schemas
from tillit.counselor_console.counselor_namespace import CounselorNamespace
from tillit.counselor_console.database import open_durable
from tillit.counselor_console.feedback import FeedbackBox
from tillit.counselor_console.notes import NoteBook
from tillit.counselor_console.notes_crypto import NoteCipher, load_or_create_key
from tillit.counselor_console.purge import run_forever as run_purge_job
from tillit.counselor_console.routes import END_SOCKETS, setup_console_routes
from tillit.counselor_console.stats_routes import STAFF_ONLINE, setup_stats_routes
from tillit.counselor_console.totp_crypto import TOTP_SEALER, open_sealer
from tillit.counselor_console.workflow_config import load_workflow
from tillit.safety.headers import add_no_trace_headers
from tillit.safety.log_scrub import scrub_server_errors
from tillit.safety.login_throttle import LoginThrottle
from tillit.safety.overload import refuse_before_decoding
from tillit.safety.rate_limit import Limits, TrafficGuard

EPHEMERAL_FILE = "ephemeral.sqlite3"
# Room for a 16 KiB ciphertext and its envelope; a larger frame closes only its own socket
# (aiohttp answers it with close code 1009). `limits.max_payload_bytes` overrides it.
MAX_FRAME_BYTES = 64 * 1024
SOCKETIO_PATH = "/socket.io/"


def create_store(settings: Settings) -> EphemeralStore:
    kind = settings.get("server.store")
    if kind == "sqlite":
        from tillit.chat_server.stores.sqlite_store import SqliteStore

        return SqliteStore(settings.data_dir / EPHEMERAL_FILE)
    if kind == "redis":
        from tillit.chat_server.stores.redis_store import RedisStore

        return RedisStore(
            settings.get("server.redis_url"),
            prefix=settings.get("server.redis_prefix", "tillit"),
            ttl_s=settings.get("server.redis_ttl_s", 4 * 3600),
            ciphertext_grace_s=settings.get("retention.ciphertext_grace_s"),
            max_connections=settings.get("server.redis_max_connections", 16),
        )
    raise ValueError(f"unknown store {kind!r}: use 'sqlite' or 'redis'")


def notes_key_path(settings: Settings) -> Path:
    """`notes.key_file`, or <data_dir>/notes.key: outside the database, by design."""
    configured = settings.get("notes.key_file") or ""
    return Path(configured).expanduser() if configured else settings.data_dir / "notes.key"


def create_socketio(settings: Settings | None = None) -> socketio.AsyncServer:
    manager: socketio.AsyncManager = LocalManager()
    max_frame = MAX_FRAME_BYTES
    heartbeat = {"ping_interval": 25.0, "ping_timeout": 20.0}  # engine.io's defaults
    # None: Engine.IO's same-origin check on the request (development on 127.0.0.1).
    # Behind a TLS proxy the request looks like http, so the public origins are trusted.
    origins: list[str] | None = None
    if settings is not None:
        origins = public_origins(settings) or None
        max_frame = int(settings.get("limits.max_payload_bytes", MAX_FRAME_BYTES))
        heartbeat = {
            "ping_interval": float(settings.get("server.ping_interval_s", 25.0)),
            "ping_timeout": float(settings.get("server.ping_timeout_s", 20.0)),
        }
        if settings.get("server.store") == "redis":
            # Fan-out to every process over Redis, on a blocking pool
            # (docs/architecture.md, measured fact 2).
            from tillit.chat_server.transport.redis_fanout import BlockingRedisManager

            manager = BlockingRedisManager(
                settings.get("server.redis_url"),
                channel=f"{settings.get('server.redis_prefix', 'tillit')}-socketio",
                max_connections=settings.get("server.redis_max_connections", 16),
                recheck_s=float(settings.get("server.redis_publish_recheck_s", 1.0)),
            )
    return LeanSocketIOServer(
        async_mode="aiohttp",
        client_manager=manager,
        serializer=TextPacket,
        cookie=None,  # Engine.IO's sticky-session cookie would be a trace on the visitor's device
        cors_allowed_origins=origins,
        # Both pages connect with `transports: ["websocket"]`; HTTP long-polling is not
        # served (docs/architecture.md, measured fact 4).
        transports=["websocket"],
        max_http_buffer_size=max_frame,
        **heartbeat,
        logger=False,
        engineio_logger=False,
    )


def socketio_handler(sio: socketio.AsyncServer):  # noqa: ANN201 - aiohttp handler
    """Serve Engine.IO, refusing permessage-deflate (docs/architecture.md, measured fact 3).

    Only WebSocket is served, so a POST (a long-polling packet) is answered 400 at once,
    before its body is read, and the connection is closed rather than drained.
    """

    async def handle(request: web.Request) -> web.StreamResponse:
        if request.method == "POST":
            refused = web.Response(status=400, text="WebSocket only")
            refused.force_close()
            return refused
        if "Sec-WebSocket-Extensions" in request.headers:
            headers = request.headers.copy()
            del headers["Sec-WebSocket-Extensions"]
            request = request.clone(headers=headers)
        return await sio.handle_request(request)

    return handle


async def healthz(request: web.Request) -> web.Response:
    """`ok`, or 503 `degraded` while the ephemeral store (Redis) cannot be reached."""
    store = request.app.get(STORE)
    check = getattr(store, "healthy", None)
    if check is not None and not await check():
        return web.json_response({"status": "degraded", "store": "unavailable"}, status=503)
    return web.json_response({"status": "ok"})


async def every(interval_s: float, job: Callable[[], Awaitable[None]]) -> None:
    """Run `job` every `interval_s` seconds until cancelled."""
    while True:
        await asyncio.sleep(interval_s)
        try:
            await job()
        except Exception:  # noqa: BLE001 - keep the schedule; the next run tries again
            logging.getLogger("tillit").exception("periodic job failed")


def create_app(settings: Settings) -> web.Application:
    scrub_server_errors()
    app = web.Application(
        client_max_size=64 * 1024, middlewares=[compression_middleware(SOCKETIO_PATH)]
    )
    app[SETTINGS] = settings
    app[LOGIN_THROTTLE] = LoginThrottle(
        per_account=settings.get("console.login_failures_per_account"),
        window_s=settings.get("console.login_window_s"),
        max_concurrent=int(settings.get("console.login_concurrent_checks", 2)),
        max_names=int(settings.get("console.login_max_names", 10_000)),
    )
    sio = create_socketio(settings)
    handler = socketio_handler(sio)
    for method in ("GET", "POST", "OPTIONS"):
        app.router.add_route(method, SOCKETIO_PATH, handler)

    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    setup_visitor_pages(app, settings)
    setup_exit_endpoint(app)
    setup_console_routes(app)
    setup_admin_routes(app)
    setup_stats_routes(app)
    app.on_response_prepare.append(add_no_trace_headers)
    app.cleanup_ctx.append(_services(sio))
    return app


def _services(sio: socketio.AsyncServer):  # noqa: ANN201 - aiohttp cleanup context
    async def services(app: web.Application) -> AsyncIterator[None]:
        settings = app[SETTINGS]
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        durable = await open_durable(settings.data_dir)
        app[DURABLE_DB] = durable
        app[TOTP_SEALER] = await open_sealer(durable, settings)  # seals old clear secrets
        feedback = FeedbackBox(durable)
        facts = FactWriter(durable, feedback.link,
                           float(settings.get("stats.min_wait_s_unanswered", 0)))
        await facts.setup()
        await feedback.setup()
        notes = NoteBook(durable, NoteCipher(load_or_create_key(notes_key_path(settings))),
                         int(settings.get("notes.max_chars", 1000)))
        await notes.setup()
        store = create_store(settings)
        await store.open()
        app[STORE] = store

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
            facts=facts,
            max_parallel=settings.get("counselor.max_parallel_chats"),
            grace_s=settings.get("counselor.grace_s", 120),
            queue_push_interval_s=settings.get("queue.push_interval_s", 0.5),
            topics=settings.vocab.get("topics", []),
            queued_gone_s=settings.get("queue.gone_visitor_s", 120),
        )
        await chats.load()
        app[CHATS] = chats
        schemas = build_schemas(settings)

        async def lookup(token: str | None, touch: bool = True) -> sessions.Session | None:
            return await sessions.lookup(
                durable, token,
                settings.get("console.session_max_age_s"),
                settings.get("console.session_idle_s"),
                touch=touch,
            )

        hours = OpeningHours.from_settings(settings.data.get("hours"))
        start_guard = StartGuard.from_settings(
            settings, chats.queue_length,
            claim_once=getattr(store, "claim_once", None) if store.shared else None,
        )
        sio.register_namespace(VisitorNamespace(chats, schemas, hours, start_guard))
        sio.register_namespace(
            CounselorNamespace(
                chats, schemas, lookup, settings.get("counselor.chat_roles"),
                console=build_console_schemas(settings, load_workflow()),
                workflow=load_workflow(), notes=notes, audit=audit_entry,
                find_account=lambda username: accounts.get(durable, username),
                cookie_name=sessions.cookie_name(bool(settings.get("server.development"))),
                sockets=sessions.SocketRegistry(durable),
            )
        )
        staff_ns = sio.namespace_handlers["/counselor"]
        app[STAFF_ONLINE] = staff_ns.online_usernames
        app[END_SOCKETS] = staff_ns.end_sockets
        guard = TrafficGuard(Limits.from_settings(settings.data.get("limits", {})))
        for name, namespace in sio.namespace_handlers.items():
            if isinstance(namespace, EventNamespace):
                namespace.use_guard(guard, staff=name == "/counselor")

        async def staff_session(environ: dict[str, object]) -> bool:
            cookie = environ.get("HTTP_COOKIE")
            token = sessions.token_from_cookie_header(cookie if isinstance(cookie, str) else None)
            return token is not None and await lookup(token) is not None

        gate = SocketGate(sio.eio, guard, staff_session)
        sio.eio.admit, sio.eio.gone = gate.admit, gate.gone
        ready = getattr(sio.manager, "ready", None)
        if ready is not None:  # Redis fan-out: subscribed and announced before any socket
            await ready()
        guard.load.backlog = lambda: store.backlog
        sio.eio.screen = refuse_before_decoding(guard.load)
        load_clock = asyncio.create_task(guard.load.run(), name="load-monitor")
        sweeper = asyncio.create_task(
            chats.run_sweeper(float(settings.get("chat.sweep_interval_s", 5.0))),
            name="chat-sweeper")
        purger = asyncio.create_task(run_purge_job(durable, settings), name="purge-job")
        session_checks = asyncio.create_task(
            staff_ns.run_session_checks(float(settings.get("console.session_check_s", 5.0))),
            name="session-checks")
        throttle = app[LOGIN_THROTTLE]

        async def write_login_counts() -> None:
            counts = throttle.take_counts()
            if any(counts.values()):
                await audit.record(durable, "login.summary", **counts)

        login_counts = asyncio.create_task(
            every(float(settings.get("console.login_audit_interval_s", 60)), write_login_counts),
            name="login-counts")
        doorman = asyncio.create_task(gate.run(), name="unjoined-sockets")
        yield
        for task in (sweeper, purger, load_clock, login_counts, session_checks, doorman):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await write_login_counts()
        await store.close()
        await durable.close()

    return services
