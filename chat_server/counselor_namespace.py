"""`/counselor`: staff with a console session; every event checks role and ownership."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import socketio

from chat_server.acks import ProtocolError
from chat_server.chats import ChatService
from chat_server.event_namespace import EventNamespace
from chat_server.model import COUNSELOR, ENDED, Chat
from chat_server.relay import COUNSELOR_NS, STAFF_ROOM, chat_room
from chat_server.schemas import Schemas
from counselor_console.sessions import Session, token_from_cookie_header

SessionLookup = Callable[[str | None], Awaitable[Session | None]]
RECHECK_S = 30.0


class CounselorNamespace(EventNamespace):
    def __init__(
        self,
        chats: ChatService,
        schemas: Schemas,
        lookup_session: SessionLookup,
        chat_roles: list[str],
    ) -> None:
        super().__init__(COUNSELOR_NS)
        self.chats = chats
        self.schemas = schemas
        self.lookup_session = lookup_session
        self.chat_roles = frozenset(chat_roles)
        self._staff: dict[str, tuple[str, Session, float]] = {}  # sid -> (token, session, checked)

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not _same_origin(environ):
            raise socketio.exceptions.ConnectionRefusedError("forbidden")
        token = token_from_cookie_header(environ.get("HTTP_COOKIE"))
        session = await self.lookup_session(token)
        if session is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        self._staff[sid] = (token or "", session, time.monotonic())
        await self.enter_room(sid, STAFF_ROOM)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        self._staff.pop(sid, None)

    async def _session(self, sid: str, need_chat_role: bool = True) -> Session:
        """The sender's session, re-read now and then so that logout or disabling bites."""
        token, session, checked = self._staff[sid]
        if time.monotonic() - checked > RECHECK_S:
            fresh = await self.lookup_session(token)
            if fresh is None:
                await self.disconnect(sid)
                raise ProtocolError("forbidden", "the session has ended; log in again")
            session = fresh
            self._staff[sid] = (token, session, time.monotonic())
        if need_chat_role and session.role not in self.chat_roles:
            raise ProtocolError("forbidden", "this account does not take chats")
        return session

    async def _held(self, sid: str, chat_id: str) -> tuple[Session, Chat]:
        session = await self._session(sid)
        return session, self.chats.held_by(chat_id, session.username)

    async def on_queue_list(self, sid: str, payload: Any) -> dict[str, Any]:
        self.schemas.empty(payload)
        await self._session(sid)
        return {"queue": self.chats.queue_entries()}

    async def on_chat_mine(self, sid: str, payload: Any) -> dict[str, Any]:
        self.schemas.empty(payload)
        session = await self._session(sid)
        now = time.time()
        return {"chats": [
            {"chat_id": c.chat_id, "state": c.state, "epoch": c.epoch,
             "meta": _meta(c, now), "last_id": c.last_id}
            for c in self.chats.chats_of(session.username)
        ]}

    async def on_chat_accept(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.chat_accept(payload)
        session = await self._session(sid)
        chat = await self.chats.accept(
            data["chat_id"], session.username, session.display_name, data["pubkey"]
        )
        await self.enter_room(sid, chat_room(chat.chat_id))
        return {"chat_id": chat.chat_id, "visitor_pubkey": chat.visitor_pubkey,
                "epoch": chat.epoch, "meta": _meta(chat, time.time())}

    async def on_chat_rejoin(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.chat_rejoin(payload)
        _, chat = await self._held(sid, data["chat_id"])
        await self.enter_room(sid, chat_room(chat.chat_id))
        if chat.state == ENDED:
            return {"epoch": chat.epoch, "visitor_pubkey": chat.visitor_pubkey, "missed": [],
                    "state": chat.state}
        epoch = await self.chats.rekey(chat, COUNSELOR, data["pubkey"])
        missed = await self.chats.store.envelopes_after(chat.chat_id, data["after_id"])
        return {"epoch": epoch, "visitor_pubkey": chat.visitor_pubkey, "missed": missed,
                "state": chat.state}

    async def on_msg_send(self, sid: str, payload: Any) -> dict[str, Any]:
        envelope = self.schemas.msg_send(payload)
        _, chat = await self._held(sid, envelope["chat_id"])
        return {"id": await self.chats.send(chat, COUNSELOR, envelope, sid)}

    async def on_typing(self, sid: str, payload: Any) -> None:
        data = self.schemas.typing(payload)
        _, chat = await self._held(sid, data["chat_id"])
        await self.chats.typing(chat, COUNSELOR, data["on"], sid)

    async def on_key_update(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.key_update(payload)
        _, chat = await self._held(sid, data["chat_id"])
        return {"epoch": await self.chats.rekey(chat, COUNSELOR, data["pubkey"])}

    async def on_chat_close(self, sid: str, payload: Any) -> None:
        data = self.schemas.chat_close(payload)
        _, chat = await self._held(sid, data["chat_id"])
        await self.chats.close(chat)


def _meta(chat: Chat, now: float) -> dict[str, Any]:
    meta = {k: chat.meta.get(k) for k in ("lang", "age_group", "gender", "role", "topics",
                                          "danger_now")}
    meta["waited_s"] = int((chat.accepted_at or now) - chat.created_at)
    return meta


def _same_origin(environ: dict[str, Any]) -> bool:
    """Refuse a handshake that another site's page started (cross-site WebSocket hijacking)."""
    origin = environ.get("HTTP_ORIGIN")
    if not origin:
        return True  # not a browser: it cannot carry a victim's cookie
    return urlsplit(origin).netloc == environ.get("HTTP_HOST", "")
