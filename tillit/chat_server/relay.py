"""Who hears what: rooms per chat in each namespace, and one room for all staff."""

from __future__ import annotations

from typing import Any

import socketio

VISITOR_NS, COUNSELOR_NS = "/visitor", "/counselor"
STAFF_ROOM = "staff"


def chat_room(chat_id: str) -> str:
    return f"chat:{chat_id}"


def user_room(username: str) -> str:
    """Every socket of one staff member (several tabs), in `/counselor`."""
    return f"user:{username}"


class Relay:
    def __init__(self, sio: socketio.AsyncServer) -> None:
        self.sio = sio

    async def to_visitor(self, chat_id: str, event: str, data: Any,
                         skip_sid: str | None = None) -> None:
        await self.sio.emit(event, data, room=chat_room(chat_id), namespace=VISITOR_NS,
                            skip_sid=skip_sid)

    async def to_counselor(self, chat_id: str, event: str, data: Any,
                           skip_sid: str | None = None) -> None:
        await self.sio.emit(event, data, room=chat_room(chat_id), namespace=COUNSELOR_NS,
                            skip_sid=skip_sid)

    async def to_both(self, chat_id: str, event: str, data: Any) -> None:
        await self.to_visitor(chat_id, event, data)
        await self.to_counselor(chat_id, event, data)

    async def to_staff(self, event: str, data: Any) -> None:
        await self.sio.emit(event, data, room=STAFF_ROOM, namespace=COUNSELOR_NS)

    async def to_user(self, username: str, event: str, data: Any) -> None:
        await self.sio.emit(event, data, room=user_room(username), namespace=COUNSELOR_NS)

    async def close_counselor_room(self, chat_id: str) -> None:
        """Take every counselor socket out of a chat (returned to the queue, transferred)."""
        await self.sio.close_room(chat_room(chat_id), namespace=COUNSELOR_NS)

    async def to_sid(self, sid: str, namespace: str, event: str, data: Any) -> None:
        await self.sio.emit(event, data, to=sid, namespace=namespace)

    async def enter(self, sid: str, namespace: str, room: str) -> None:
        await self.sio.enter_room(sid, room, namespace=namespace)

    async def leave(self, sid: str, namespace: str, room: str) -> None:
        await self.sio.leave_room(sid, room, namespace=namespace)
