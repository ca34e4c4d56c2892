"""`/visitor`: anonymous, no cookie, nothing about the socket kept beyond its chat."""

from __future__ import annotations

import logging
from typing import Any

from tillit.chat_server.chats import ChatService
from tillit.chat_server.event_namespace import EventNamespace
from tillit.chat_server.mailboxes import MailboxService
from tillit.chat_server.model import ENDED, VISITOR, Chat
from tillit.chat_server.opening_hours import OpeningHours
from tillit.chat_server.relay import VISITOR_NS, chat_room
from tillit.chat_server.schemas import Schemas
from tillit.chat_server.start_guard import StartGuard
from tillit.chat_server.visitor_sockets import VisitorSockets
from tillit.safety.errors import ProtocolError
from tillit.safety.rate_limit import TrafficGuard

log = logging.getLogger(__name__)


class VisitorNamespace(EventNamespace):
    def __init__(
        self,
        chats: ChatService,
        schemas: Schemas,
        hours: OpeningHours,
        start_guard: StartGuard,
        sockets: VisitorSockets,
        guard: TrafficGuard,
        mailboxes: MailboxService | None = None,
    ) -> None:
        super().__init__(VISITOR_NS, guard)
        self.mailboxes = mailboxes  # docs/protocol.md E12; None: no mailbox events
        self.chats = chats
        self.schemas = schemas
        self.hours = hours
        self.start_guard = start_guard  # the proof-of-work on chat:start
        self._chat_of = sockets  # sid -> chat_id, read by the chat service's sweeper too

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        return None

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        if self.mailboxes is not None:
            self.mailboxes.forget(sid)
        chat_id = self._chat_of.pop(sid, None)
        if chat_id:
            try:
                await self.chats.visitor_left(chat_id)
            except Exception:  # a store outage must not break the disconnect
                log.warning("visitor departure not recorded: the store did not answer")

    def _check_own(self, sid: str, chat_id: str) -> str:
        if self._chat_of.get(sid) != chat_id:
            raise ProtocolError("forbidden", "this socket does not belong to that chat")
        return chat_id

    async def _own_chat(self, sid: str, chat_id: str) -> Chat:
        return await self.chats.get(self._check_own(sid, chat_id))

    async def _bind(self, sid: str, chat: Chat) -> None:
        old = self._chat_of.get(sid)
        if old and old != chat.chat_id:
            await self.leave_room(sid, chat_room(old))
        self._chat_of[sid] = chat.chat_id
        await self.enter_room(sid, chat_room(chat.chat_id))
        await self.chats.stamp_visitors([chat.chat_id])

    async def on_pow_challenge(self, sid: str, payload: Any) -> dict[str, Any]:
        """A fresh proof-of-work challenge for the next `chat:start` (docs/protocol.md),
        or with `{"for": "mailbox"}` for the next `mailbox:create`/`mailbox:open` (E12.8)."""
        if isinstance(payload, dict) and set(payload) == {"for"}:
            if payload["for"] != "mailbox":
                raise ProtocolError("invalid_payload", 'for must be "mailbox"')
            return await self._desk().challenge()
        self.schemas.empty(payload)
        return await self.start_guard.challenge()

    async def on_chat_start(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.chat_start(payload)
        solution = data.pop("pow")
        locator = data.pop("mailbox", None)
        mailbox_id = self._desk().own(sid, locator) if locator is not None else None
        current = self._chat_of.get(sid)
        if current:
            try:
                still_open = (await self.chats.get(current)).state != ENDED
            except ProtocolError:
                still_open = False
            if still_open:
                raise ProtocolError("conflict", "this socket already has a chat")
        if not self.hours.is_open():
            raise ProtocolError("closed", "we are closed right now: see the opening hours")
        await self.start_guard.check(solution)
        if mailbox_id is None:
            chat, resume_token = await self.chats.start(data.pop("pubkey"), data)
        else:
            chat, resume_token = await self._desk().start_returning(
                mailbox_id, lambda **flags: self.chats.start(data.pop("pubkey"), data, **flags),
                await self.chats.online_anywhere())
        self.start_guard.started()
        await self._bind(sid, chat)
        place, est = await self.chats.position(chat)
        return {"chat_id": chat.chat_id, "resume_token": resume_token,
                "position": place, "est_wait_s": est}

    async def on_chat_update_meta(self, sid: str, payload: Any) -> dict[str, Any]:
        """The optional questions, answered in the queue (docs/protocol.md extension)."""
        data = self.schemas.chat_update_meta(payload)
        chat = await self._own_chat(sid, data.pop("chat_id"))
        await self.chats.update_meta(chat, data)
        return {}

    async def on_chat_resume(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.chat_resume(payload)
        chat, missed = await self.chats.resume(data["resume_token"], data["after_id"])
        await self._bind(sid, chat)
        place, est = await self.chats.position(chat)
        return {
            "chat_id": chat.chat_id, "state": chat.state, "missed": missed,
            "epoch": chat.epoch, "counselor_pubkey": chat.counselor_pubkey,
            "counselor_name": chat.counselor_name, "position": place, "est_wait_s": est,
        }

    async def on_msg_send(self, sid: str, payload: Any) -> dict[str, Any]:
        envelope = self.schemas.msg_send(payload)
        chat_id = self._check_own(sid, envelope["chat_id"])
        return {"id": await self.chats.send(chat_id, VISITOR, envelope, sid)}

    async def on_typing(self, sid: str, payload: Any) -> None:
        data = self.schemas.typing(payload)
        chat = await self._own_chat(sid, data["chat_id"])
        await self.chats.typing(chat, VISITOR, data["on"], sid)

    async def on_key_update(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.key_update(payload)
        chat = await self._own_chat(sid, data["chat_id"])
        return {"epoch": await self.chats.rekey(chat, VISITOR, data["pubkey"])}

    async def on_chat_end(self, sid: str, payload: Any) -> None:
        data = self.schemas.chat_end(payload)
        chat = await self._own_chat(sid, data["chat_id"])
        await self.chats.end(chat, VISITOR, data["reason"])

    async def on_feedback(self, sid: str, payload: Any) -> None:
        data = self.schemas.feedback(payload)
        chat_id = self._check_own(sid, data["chat_id"])
        await self.chats.feedback.give(chat_id, data["helped"], data["score"])

    # -- mailboxes (docs/protocol.md E12; chat_server/mailboxes.py) ---------------------------

    def _desk(self) -> MailboxService:
        if self.mailboxes is None:
            raise ProtocolError("unavailable", "mailboxes are not offered here")
        return self.mailboxes

    async def on_mailbox_create(self, sid: str, payload: Any) -> dict[str, Any]:
        """Also outside opening hours and with a full queue: a message instead of a no."""
        counselor = None
        chat_id = payload.get("chat_id") if isinstance(payload, dict) else None
        if chat_id is not None:
            chat = await self._own_chat(sid, chat_id if isinstance(chat_id, str) else "")
            counselor = chat.counselor  # also on the end screen of an ended chat
        result = await self._desk().create(sid, payload, counselor, self.enter_room)
        if chat_id is not None and counselor:
            await self.chats.relay.to_counselor(
                chat_id, "chat:mailbox", {"chat_id": chat_id, "mailbox_id": result["mailbox_id"]})
        return result

    async def on_mailbox_open(self, sid: str, payload: Any) -> dict[str, Any]:
        return await self._desk().open(sid, payload, self.enter_room)

    async def on_mailbox_recipients(self, sid: str, payload: Any) -> dict[str, Any]:
        return await self._desk().recipients(sid, payload)

    async def on_mailbox_messages(self, sid: str, payload: Any) -> dict[str, Any]:
        return await self._desk().messages(sid, payload)

    async def on_mailbox_send(self, sid: str, payload: Any) -> dict[str, Any]:
        return await self._desk().send(sid, payload)

    async def on_mailbox_delete(self, sid: str, payload: Any) -> dict[str, Any]:
        return await self._desk().delete(sid, payload)
