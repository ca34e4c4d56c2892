"""A Socket.IO namespace whose every event answers with a PROTOCOL.md ack.

Events are named `area:action` on the wire and handled by `on_area_action`
methods; whatever a handler raises becomes an error ack for that sender alone.
"""

from __future__ import annotations

import logging
from typing import Any

import socketio

from chat_server.acks import ProtocolError, error, ok

log = logging.getLogger(__name__)

_LIFECYCLE = ("connect", "disconnect")


class EventNamespace(socketio.AsyncNamespace):
    async def trigger_event(self, event: str, *args: Any) -> Any:
        if event in _LIFECYCLE:
            return await super().trigger_event(event, *args)
        sid = args[0]
        payload = args[1] if len(args) > 1 else None
        if len(args) > 2:
            return error("invalid_payload", "an event takes one payload")
        handler = None
        if _is_event_name(event):
            handler = getattr(self, "on_" + event.replace(":", "_"), None)
        if handler is None:
            return error("not_found", "unknown event")
        try:
            result = await handler(sid, payload)
        except ProtocolError as exc:
            return error(exc.code, exc.message)
        except Exception as exc:  # a bug must not reach other users or print their data
            log.error("event %s failed: %s", event, type(exc).__name__)
            return error("internal", "something went wrong on the server")
        return ok(**(result or {}))


def _is_event_name(event: str) -> bool:
    return (
        isinstance(event, str)
        and 0 < len(event) <= 32
        and all(ch.islower() or ch in ":_" for ch in event)
        and not event.startswith(("_", ":"))
        and event not in _LIFECYCLE
    )
