"""A Socket.IO namespace whose every event answers with a docs/protocol.md ack.

Events are named `area:action` on the wire and handled by `on_area_action`
methods; whatever a handler raises becomes an error ack for that sender alone.

Before any handler runs, the app's `TrafficGuard` (safety/rate_limit.py) gets its
say, here and only here, so that both namespaces and every event, present and
future, are covered: a socket past its pool's cap (`limits.max_connections` for
visitors, `limits.max_staff_connections` for staff) is refused at connect, a socket
or chat that floods gets `rate_limited` without reaching the chat logic, and
past the process's capacity new messages get `busy` (safety/overload.py).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import socketio

from tillit.chat_server.acks import error, ok
from tillit.chat_server.relay import chat_room
from tillit.chat_server.stores import StoreUnavailable
from tillit.chat_server.transport.local_fanout import TOO_DEEP
from tillit.safety.errors import ProtocolError
from tillit.safety.overload import BUSY_MESSAGE
from tillit.safety.rate_limit import TrafficGuard

log = logging.getLogger(__name__)

_LIFECYCLE = ("connect", "disconnect")
_MESSAGE_HANDLER = "on_msg_send"


class EventNamespace(socketio.AsyncNamespace):
    def __init__(self, namespace: str, guard: TrafficGuard, *, staff: bool = False) -> None:
        super().__init__(namespace)
        self.guard = guard  # the app's one TrafficGuard, shared by both namespaces
        self.staff = staff  # counted in the staff pool rather than the anonymous one
        # Handlers by wire name, filled as names are first seen (see `_handler`).
        self._handlers: dict[str, Any] = {}

    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event == "connect":
            return await self._connect(*args)
        if event == "disconnect":
            try:
                return await super().trigger_event(event, *args)
            finally:
                self.guard.release(args[0])
        sid = args[0]
        payload = args[1] if len(args) > 1 else None
        handler = self._handler(event)
        refusal = self._over_limit(event, handler, sid, payload)
        if refusal is not None:
            return refusal
        if len(args) > 2:
            return error("invalid_payload", "an event takes one payload")
        if payload is TOO_DEEP:
            return error("invalid_payload", "the payload is nested too deeply")
        if handler is None:
            return error("not_found", "unknown event")
        try:
            result = await handler(sid, payload)
        except ProtocolError as exc:
            return error(exc.code, exc.message)
        except StoreUnavailable:
            return error("unavailable", "the server cannot store this right now; try again")
        except Exception as exc:  # a bug must not reach other users or print their data
            log.error("event %s failed: %s", event, type(exc).__name__)
            return error("internal", "something went wrong on the server")
        return ok(**(result or {}))

    async def _connect(self, sid: str, *rest: Any) -> Any:
        guard = self.guard
        if not guard.admit(
            sid, self.server.manager.eio_sid_from_sid(sid, self.namespace), self.staff
        ):
            raise socketio.exceptions.ConnectionRefusedError(
                "busy", {"code": "busy", "message": "the server is full right now"}
            )
        try:
            result = await super().trigger_event("connect", sid, *rest)
        except BaseException:
            guard.release(sid)
            raise
        if result is False:
            guard.release(sid)
        return result

    def _handler(self, event: Any) -> Any:
        # Remembered per known event name: the name check runs once, not per message.
        # Only names that have a handler are kept, so strangers cannot grow the dict.
        handlers = self._handlers
        handler = handlers.get(event) if isinstance(event, str) else None
        if handler is None and _is_event_name(event):
            handler = getattr(self, _handler_name(event), None)
            if handler is not None:
                handlers[event] = handler
        return handler

    def _over_limit(
        self, event: Any, handler: Any, sid: str, payload: Any
    ) -> dict[str, Any] | None:
        guard = self.guard
        if not guard.allow_event(sid):
            return error("rate_limited", "too many events from this connection; slow down")
        if isinstance(event, str) and guard.overloaded(event):
            return error("busy", BUSY_MESSAGE)
        if (
            handler is not None
            and handler.__name__ == _MESSAGE_HANDLER  # whatever name reached it
            and isinstance(payload, dict)
        ):
            chat_id = payload.get("chat_id")
            # Only the sender's own chat is charged: a stranger naming someone else's
            # chat_id must not use up that chat's allowance.
            if (
                isinstance(chat_id, str)
                and self._in_room(sid, chat_room(chat_id))
                and not guard.allow_message(chat_id)
            ):
                return error("rate_limited", "too many messages in this chat; slow down")
        return None

    def _in_room(self, sid: str, room: str) -> bool:
        rooms = self.server.manager.rooms.get(self.namespace, {})
        members = rooms.get(room)
        return members is not None and sid in members


class SocketGate:
    """The connection caps where a connection begins: at Engine.IO, before any namespace.

    Every Engine.IO connection is counted from its first frame, in the anonymous pool;
    when that pool is full only a connection carrying a valid staff session is taken in
    (in the staff pool), so that anonymous sockets cannot lock counselors out. One that
    joins no namespace within `limits.namespace_join_s` is closed (`run`).
    """

    def __init__(
        self,
        guard: TrafficGuard,
        staff_session: Callable[[dict[str, Any]], Awaitable[bool]],
    ) -> None:
        self.guard = guard
        self.staff_session = staff_session

    async def admit(self, eio_sid: str, environ: dict[str, Any]) -> bool:
        if self.guard.open_transport(eio_sid):
            return True
        return await self.staff_session(environ) and self.guard.open_transport(
            eio_sid, staff=True
        )

    def gone(self, eio_sid: str) -> None:
        self.guard.close_transport(eio_sid)

    async def run(self, disconnect: Callable[[str], Awaitable[None]]) -> None:
        """Close, now and then, the connections that have joined no namespace in time
        (`disconnect`: the Engine.IO server's, which is built with this gate's hooks)."""
        every = min(1.0, self.guard.limits.namespace_join_s / 4)
        while True:
            await asyncio.sleep(every)
            for eio_sid in self.guard.unjoined():
                self.guard.close_transport(eio_sid)  # counted out even if closing fails
                try:
                    await disconnect(eio_sid)
                except Exception as exc:  # already gone
                    log.debug("closing an idle connection: %s", type(exc).__name__)


def _handler_name(event: str) -> str:
    return "on_" + event.replace(":", "_")


def _is_event_name(event: str) -> bool:
    return (
        isinstance(event, str)
        and 0 < len(event) <= 32
        and all(ch.islower() or ch in ":_" for ch in event)
        and not event.startswith(("_", ":"))
        and event not in _LIFECYCLE
    )
