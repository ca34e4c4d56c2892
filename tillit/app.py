"""The application factory: one aiohttp app carrying both pages and both namespaces."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Awaitable, Callable

import socketio
from aiohttp import web

from tillit.chat_server.app_keys import CHATS, MAILBOXES, SETTINGS, SOCKETIO, STORE
from tillit.chat_server.chats import ChatService
from tillit.chat_server.compression import compression_middleware
from tillit.chat_server.event_namespace import SocketGate
from tillit.chat_server.exit_route import setup_exit_endpoint
from tillit.chat_server.mailbox_store import MailboxStore
from tillit.chat_server.mailboxes import Counters, MailboxService
from tillit.chat_server.mailboxes import expire_idle as expire_idle_mailboxes
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
from tillit.chat_server.visitor_sockets import VisitorSockets
from tillit.counselor_console import accounts, audit, sessions
from tillit.counselor_console.admin_routes import setup_admin_routes
from tillit.counselor_console.app_keys import DURABLE_DB, LOGIN_THROTTLE, STAFF_ONLINE
from tillit.counselor_console.audit_routes import setup_audit_routes
from tillit.counselor_console.closing import FactWriter
from tillit.counselor_console.console_schemas import build_console_schemas
from tillit.counselor_console.counselor_namespace import CounselorNamespace
from tillit.counselor_console.feedback import FeedbackBox
from tillit.counselor_console.key_files import load_keyring
from tillit.counselor_console.notes import NoteBook
from tillit.counselor_console.notes_crypto import NoteCipher
from tillit.counselor_console.ops_routes import setup_ops_routes
from tillit.counselor_console.outbox import DirectOutbox, RedisOutbox
from tillit.counselor_console.outbox import audit_entry as outbox_audit
from tillit.counselor_console.password_routes import setup_password_routes
from tillit.counselor_console.purge import run_forever as run_purge_job
from tillit.counselor_console.routes import END_SOCKETS, setup_console_routes
from tillit.counselor_console.stats_routes import setup_stats_routes
from tillit.counselor_console.totp_crypto import TOTP_SEALER, open_sealer
from tillit.counselor_console.workflow_config import load_workflow
from tillit.durable.engine import database_url, reachable
from tillit.durable.migrate import open_migrated
from tillit.safety.headers import add_no_trace_headers
from tillit.safety.log_scrub import scrub_server_errors
from tillit.safety.login_throttle import LoginThrottle
from tillit.safety.overload import refuse_before_decoding
from tillit.safety.rate_limit import Limits, TrafficGuard

EPHEMERAL_FILE = "ephemeral.sqlite3"
SOCKETIO_PATH = "/socket.io/"


def create_store(settings: Settings) -> EphemeralStore:
    kind = settings.server.store
    if kind == "sqlite":
        from tillit.chat_server.stores.sqlite_store import SqliteStore

        return SqliteStore(settings.data_dir / EPHEMERAL_FILE)
    if kind == "redis":
        from tillit.chat_server.stores.redis_store import RedisStore

        return RedisStore(
            settings.server.redis_url,
            prefix=settings.server.redis_prefix,
            ttl_s=settings.server.redis_ttl_s,
            ciphertext_grace_s=settings.retention.ciphertext_grace_s,
            max_connections=settings.server.redis_max_connections,
        )
    raise ValueError(f"unknown store {kind!r}: use 'sqlite' or 'redis'")


def load_notes_keys(settings: Settings) -> list[bytes]:
    """The notes' keyring: `notes.key_file`, or <data_dir>/notes.key on one machine
    (outside the database, by design; counselor_console/key_files.py)."""
    return load_keyring(settings.notes.key_file, settings.data_dir / "notes.key",
                        shared=bool(settings.server.database_url.strip()),
                        setting="notes.key_file")


def create_socketio(
    settings: Settings, gate: SocketGate, screen: Callable[[str], str | None]
) -> socketio.AsyncServer:
    """The Socket.IO server, its Engine.IO hooks given at construction: `gate` (the
    connection caps) and `screen` (refuse new work past capacity before decoding)."""
    manager: socketio.AsyncManager = LocalManager()
    # None: Engine.IO's same-origin check on the request (development on 127.0.0.1).
    # Behind a TLS proxy the request looks like http, so the public origins are trusted.
    origins = public_origins(settings) or None
    server = settings.server
    if server.store == "redis":
        # Fan-out to every process over Redis, on a blocking pool
        # (docs/architecture.md, measured fact 2).
        from tillit.chat_server.transport.redis_fanout import BlockingRedisManager

        manager = BlockingRedisManager(
            server.redis_url,
            channel=f"{server.redis_prefix}-socketio",
            max_connections=server.redis_max_connections,
            recheck_s=server.redis_publish_recheck_s,
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
        # Room for a 16 KiB ciphertext and its envelope; a larger frame closes only its
        # own socket (aiohttp answers it with close code 1009).
        max_http_buffer_size=settings.limits.max_payload_bytes,
        ping_interval=server.ping_interval_s,
        ping_timeout=server.ping_timeout_s,
        logger=False,
        engineio_logger=False,
        admit=gate.admit,
        gone=gate.gone,
        screen=screen,
    )


async def socketio_handler(request: web.Request) -> web.StreamResponse:
    """Serve Engine.IO, refusing permessage-deflate (docs/architecture.md, measured fact 3).

    Only WebSocket is served, so a POST (a long-polling packet) is answered 400 at once,
    before its body is read, and the connection is closed rather than drained.
    """
    if request.method == "POST":
        refused = web.Response(status=400, text="WebSocket only")
        refused.force_close()
        return refused
    if "Sec-WebSocket-Extensions" in request.headers:
        headers = request.headers.copy()
        del headers["Sec-WebSocket-Extensions"]
        request = request.clone(headers=headers)
    return await request.app[SOCKETIO].handle_request(request)


async def healthz(request: web.Request) -> web.Response:
    """`ok`, or 503 `degraded` while the ephemeral store (Redis) or the durable database
    (PostgreSQL) cannot be reached; each is asked again at every request."""
    problems: dict[str, str] = {}
    check = getattr(request.app[STORE], "healthy", None)
    if check is not None and not await check():
        problems["store"] = "unavailable"
    if not await reachable(request.app[DURABLE_DB]):
        problems["database"] = "unavailable"
    if problems:
        return web.json_response({"status": "degraded", **problems}, status=503)
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
    public_origins(settings)  # refused now, before start-up, if missing or malformed
    console = settings.console
    app[LOGIN_THROTTLE] = LoginThrottle(
        per_account=console.login_failures_per_account,
        window_s=console.login_window_s,
        max_concurrent=console.login_concurrent_checks,
        max_names=console.login_max_names,
    )
    for method in ("GET", "POST", "OPTIONS"):
        app.router.add_route(method, SOCKETIO_PATH, socketio_handler)

    app.router.add_get("/healthz", healthz)
    app.router.add_static("/static/", STATIC_DIR, append_version=False)
    setup_visitor_pages(app, settings)
    setup_exit_endpoint(app)
    setup_console_routes(app)
    setup_admin_routes(app)
    setup_password_routes(app)
    setup_stats_routes(app)
    setup_audit_routes(app)
    setup_ops_routes(app)
    app.on_response_prepare.append(add_no_trace_headers)
    app.cleanup_ctx.append(services)
    return app


async def services(app: web.Application) -> AsyncIterator[None]:
    """Build every service once, in dependency order, each handed what it uses; on
    shutdown stop the jobs and close the stores, the other way round."""
    settings = app[SETTINGS]
    # 1. The durable database and what lives in it. (Nothing is written to the data
    # folder unless a SQLite file or a one-machine key file lives there.)
    # Migrated to head first (an empty database gets every table; a newer schema is refused).
    durable = await open_migrated(database_url(settings.server.database_url, settings.data_dir))
    app[DURABLE_DB] = durable
    app[TOTP_SEALER] = await open_sealer(durable, settings)  # seals old clear secrets
    outbox: DirectOutbox | RedisOutbox = DirectOutbox(durable)
    if settings.server.store == "redis":
        # Several processes: chat traffic never waits on the durable database.
        outbox = RedisOutbox(durable, settings.server.redis_url,
                             f"{settings.server.redis_prefix}:outbox")
    feedback = FeedbackBox(outbox)
    facts = FactWriter(outbox, feedback.link, settings.stats.min_wait_s_unanswered)
    notes = NoteBook(durable, NoteCipher(load_notes_keys(settings)), settings.notes.max_chars)

    async def audit_entry(action: str, actor: str | None = None, target: str | None = None,
                          **detail: object) -> None:
        await outbox.put("audit", outbox_audit(action, actor, target, detail))

    # 2. The ephemeral store; the limits and sessions that stand before the chat logic.
    store = create_store(settings)
    await store.open()
    app[STORE] = store
    guard = TrafficGuard(Limits(**settings.section("limits")), backlog=lambda: store.backlog)

    async def lookup(token: str | None, touch: bool = True) -> sessions.Session | None:
        return await sessions.lookup(
            durable, token, settings.console.session_max_age_s,
            settings.console.session_idle_s, touch=touch,
        )

    async def staff_session(environ: dict[str, object]) -> bool:
        cookie = environ.get("HTTP_COOKIE")
        token = sessions.token_from_cookie_header(cookie if isinstance(cookie, str) else None)
        return token is not None and await lookup(token) is not None

    # 3. The Socket.IO server with its connection caps, and the chat service on both.
    gate = SocketGate(guard, staff_session)
    sio = create_socketio(settings, gate, refuse_before_decoding(guard.load))
    app[SOCKETIO] = sio
    visitor_sockets = VisitorSockets()
    chats = ChatService(
        store,
        Relay(sio),
        audit_entry,
        child_age_groups=settings.vocab["child_age_groups"],
        resume_window_s=settings.chat.resume_window_s,
        ciphertext_grace_s=settings.retention.ciphertext_grace_s,
        max_queue=settings.queue.max_length,
        default_wait_per_place_s=settings.chat.default_wait_per_place_s,
        feedback=feedback,
        facts=facts,
        max_parallel=settings.counselor.max_parallel_chats,
        grace_s=settings.counselor.grace_s,
        queue_push_interval_s=settings.queue.push_interval_s,
        topics=settings.vocab.get("topics", []),
        queued_gone_s=settings.queue.gone_visitor_s,
        visitors_here=visitor_sockets.chat_ids,
    )
    await chats.load()
    app[CHATS] = chats

    # 4. The two namespaces, each given all it uses.
    start_guard = StartGuard.from_settings(
        settings, chats.queue_length,
        claim_once=getattr(store, "claim_once", None) if store.shared else None,
    )

    continuity = settings.continuity
    mailboxes = MailboxService(
        MailboxStore(durable, settings.counselor.chat_roles), start_guard, sio.emit,
        Counters(getattr(store, "count_hit", None) if store.shared else None),
        idle_days=continuity.idle_days, max_messages=continuity.max_messages,
        pow_bits_base=continuity.pow_bits_base, pow_fail_steps=continuity.pow_fail_steps,
        pow_max_bits=settings.abuse.pow_max_bits, open_per_id=continuity.open_per_id,
        open_window_s=continuity.open_window_s, online=chats.is_online,
    )
    app[MAILBOXES] = mailboxes

    schemas = build_schemas(settings)
    workflow = load_workflow()
    sio.register_namespace(VisitorNamespace(
        chats, schemas, OpeningHours.from_settings(settings.section("hours")),
        start_guard, visitor_sockets, guard, mailboxes,
    ))
    staff_ns = CounselorNamespace(
        chats, schemas, lookup, settings.counselor.chat_roles,
        console=build_console_schemas(settings, workflow),
        workflow=workflow, notes=notes, audit=audit_entry,
        find_account=lambda username: accounts.get(durable, username),
        cookie_name=sessions.cookie_name(settings.server.development),
        sockets=sessions.SocketRegistry(durable),
        guard=guard,
        mailboxes=mailboxes,
    )
    sio.register_namespace(staff_ns)
    app[STAFF_ONLINE] = staff_ns.online_usernames
    app[END_SOCKETS] = staff_ns.end_sockets

    ready = getattr(sio.manager, "ready", None)
    if ready is not None:  # Redis fan-out: subscribed and announced before any socket
        await ready()

    # 5. The periodic jobs.
    throttle = app[LOGIN_THROTTLE]

    async def write_login_counts() -> None:
        counts = throttle.take_counts()
        if any(counts.values()):
            await audit.record(durable, "login.summary", **counts)

    jobs = [
        asyncio.create_task(guard.load.run(), name="load-monitor"),
        *([asyncio.create_task(outbox.run(), name="outbox")]
          if isinstance(outbox, RedisOutbox) else []),
        asyncio.create_task(chats.run_sweeper(settings.chat.sweep_interval_s),
                            name="chat-sweeper"),
        asyncio.create_task(run_purge_job(
            durable, settings, functools.partial(expire_idle_mailboxes, mailboxes)),
            name="purge-job"),
        asyncio.create_task(staff_ns.run_session_checks(settings.console.session_check_s),
                            name="session-checks"),
        asyncio.create_task(every(settings.console.login_audit_interval_s,
                                  write_login_counts), name="login-counts"),
        asyncio.create_task(gate.run(sio.eio.disconnect), name="unjoined-sockets"),
    ]
    yield
    for task in jobs:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    await write_login_counts()
    await store.close()
    if isinstance(outbox, RedisOutbox):
        await outbox.close()
    await durable.dispose()

