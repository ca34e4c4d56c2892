"""`/counselor`: staff with a console session; every event checks role and ownership.

Besides docs/protocol.md section 5 it carries the console's own events (docs/protocol.md
E4–E9): take next, transfer, the mandatory-reporting workflow, notes and the closing
form. The workflow's rules live in tillit.counselor_console.reporting; this module validates,
checks who may do what, calls the rules and audits (categories only, never content).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any
from urllib.parse import urlsplit

import socketio

from tillit.chat_server.chats import ChatService
from tillit.chat_server.event_namespace import EventNamespace
from tillit.chat_server.mailboxes import MailboxService
from tillit.chat_server.model import ACTIVE, COUNSELOR, ENDED, Chat
from tillit.chat_server.relay import COUNSELOR_NS, STAFF_ROOM, chat_room, user_room
from tillit.chat_server.schemas import Schemas
from tillit.counselor_console import reporting
from tillit.counselor_console.accounts import Account
from tillit.counselor_console.closing import default_outcome
from tillit.counselor_console.console_schemas import ConsoleSchemas
from tillit.counselor_console.mailbox_events import MailboxEvents
from tillit.counselor_console.notes import NoteBook
from tillit.counselor_console.sessions import (
    Session,
    SocketRegistry,
    token_from_cookie_header,
)
from tillit.counselor_console.workflow_config import Workflow
from tillit.safety.errors import ProtocolError
from tillit.safety.rate_limit import TrafficGuard

SessionLookup = Callable[..., Awaitable[Session | None]]  # (token, touch=True)
AuditFn = Callable[..., Awaitable[None]]
RECHECK_S = 30.0
log = logging.getLogger("tillit")
QUEUE = "queue"


class CounselorNamespace(MailboxEvents, EventNamespace):
    def __init__(
        self,
        chats: ChatService,
        schemas: Schemas,
        lookup_session: SessionLookup,
        chat_roles: list[str],
        *,
        console: ConsoleSchemas,
        workflow: Workflow,
        notes: NoteBook,
        audit: AuditFn,
        find_account: Callable[[str], Awaitable[Account | None]],
        cookie_name: str,
        sockets: SocketRegistry,
        guard: TrafficGuard,
        mailboxes: MailboxService | None = None,
    ) -> None:
        super().__init__(COUNSELOR_NS, guard, staff=True)
        self.mailboxes = mailboxes  # docs/protocol.md E12 (counselor_console/mailbox_events.py)
        self.chats = chats
        self.schemas = schemas
        self.console = console
        self.workflow = workflow
        self.notes = notes
        self.audit = audit
        self.lookup_session = lookup_session
        self.cookie_name = cookie_name
        # With a shared store (several processes): sids of every process, to end them all.
        self.sockets = sockets if chats.store.shared else None
        # With a shared store: who a colleague seen on another process is (durable DB).
        self.find_account = find_account if chats.store.shared else None
        self.chat_roles = frozenset(chat_roles)
        self._staff: dict[str, tuple[str, Session, float]] = {}  # sid -> (token, session, checked)

    # -- connection --------------------------------------------------------------------------

    async def on_connect(self, sid: str, environ: dict[str, Any], auth: Any = None) -> None:
        if not _same_origin(environ):
            raise socketio.exceptions.ConnectionRefusedError("forbidden")
        token = token_from_cookie_header(environ.get("HTTP_COOKIE"), self.cookie_name)
        session = await self.lookup_session(token)
        if session is None:
            raise socketio.exceptions.ConnectionRefusedError("unauthorized")
        self._staff[sid] = (token or "", session, time.monotonic())
        if session.role in self.chat_roles:
            # Live queue pushes (chat id, age group, danger now, language) only for the
            # roles that may read `queue:list` too.
            await self.enter_room(sid, STAFF_ROOM)
        await self.enter_room(sid, user_room(session.username))
        await self.chats.counselor_online(session.username)
        if self.sockets is not None:
            await self.sockets.add(sid, session.token_hash, session.username)

    async def on_disconnect(self, sid: str, reason: Any = None) -> None:
        entry = self._staff.pop(sid, None)
        if entry is not None:
            await self.chats.counselor_offline(entry[1].username)
            if self.sockets is not None:
                await self.sockets.drop(sid)

    async def end_sockets(self, token_hash: str | None = None,
                          username: str | None = None) -> int:
        """Disconnect the sockets of one session (logout) or of one account (disabled,
        reset) now; their chats go back to the queue after the grace period, as for any
        counselor gone. Sockets on other processes (shared store) are disconnected through
        the Socket.IO manager's queue. Returns how many sockets were closed here."""
        sids = [sid for sid, (_, session, _) in list(self._staff.items())
                if (token_hash is not None and session.token_hash == token_hash)
                or (username is not None and session.username == username)]
        for sid in sids:
            await self.disconnect(sid)
        if self.sockets is not None:
            for sid in await self.sockets.find(token_hash, username):
                if sid not in sids:
                    await self.disconnect(sid)  # not here: published to the other processes
        return len(sids)

    async def check_sessions(self) -> int:
        """Re-read the session of every socket here, without renewing its idle time, and
        disconnect those whose session has ended (expired, idle, logged out or disabled,
        possibly on another process). Returns how many sockets were closed."""
        by_token: dict[str, list[str]] = {}
        for sid, (token, _, _) in list(self._staff.items()):
            by_token.setdefault(token, []).append(sid)
        closed = 0
        for token, sids in by_token.items():
            fresh = await self.lookup_session(token, touch=False)
            for sid in sids:
                entry = self._staff.get(sid)
                if entry is None:
                    continue
                if fresh is None:
                    await self.disconnect(sid)
                    closed += 1
                else:
                    self._staff[sid] = (entry[0], fresh, entry[2])
        return closed

    async def run_session_checks(self, interval_s: float) -> None:
        """`check_sessions` every `interval_s` seconds, until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                await self.check_sessions()
            except Exception:  # noqa: BLE001 - the next round tries again
                log.exception("session check failed")

    async def online_usernames(self) -> set[str]:
        """Read-only, for the admin's operations panel: chat-taking staff online (here
        and, with a shared store, on the other processes)."""
        return set(await self._colleagues_online())

    async def _session(self, sid: str, need_chat_role: bool = True) -> Session:
        """The sender's session, re-read now and then so that logout or disabling bites."""
        if sid not in self._staff:
            raise ProtocolError("forbidden", "not connected with a session")
        token, session, checked = self._staff[sid]
        if time.monotonic() - checked > RECHECK_S:
            try:
                fresh = await self.lookup_session(token)
            except Exception:  # noqa: BLE001 - database unreachable: a chat goes on
                log.warning("session not re-read (durable database unreachable)")
                self._staff[sid] = (token, session, time.monotonic())
                fresh = session
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
        return session, await self.chats.held_by(chat_id, session.username)

    async def _audit(self, action: str, **fields: Any) -> None:
        await self.audit(action, **fields)

    def _wf(self) -> tuple[ConsoleSchemas, Workflow]:
        return self.console, self.workflow

    def _report(self, chat: Chat) -> dict[str, Any] | None:
        return reporting.state_of(chat).summary(self.workflow)

    def _chat_info(self, chat: Chat, now: float) -> dict[str, Any]:
        return {"chat_id": chat.chat_id, "state": chat.state, "epoch": chat.epoch,
                "meta": _meta(chat, now), "last_id": chat.last_id,
                "report": self._report(chat)}

    # -- the queue ---------------------------------------------------------------------------

    async def on_queue_list(self, sid: str, payload: Any) -> dict[str, Any]:
        self.schemas.empty(payload)
        await self._session(sid)
        return {"queue": await self.chats.queue_entries()}

    async def on_chat_mine(self, sid: str, payload: Any) -> dict[str, Any]:
        self.schemas.empty(payload)
        session = await self._session(sid)
        now = time.time()
        chats = []
        for chat in await self.chats.chats_of(session.username):
            info = self._chat_info(chat, now)
            if chat.flags.returning and chat.state != ENDED:
                # After a reload the mailbox's counselor sees their case notes again.
                info["meta"].update(await self.returning_meta(sid, chat))
            chats.append(info)
        return {"chats": chats}

    async def _accepted(self, sid: str, chat: Chat) -> dict[str, Any]:
        await self.enter_room(sid, chat_room(chat.chat_id))
        ack = {"chat_id": chat.chat_id, "visitor_pubkey": chat.visitor_pubkey,
               "epoch": chat.epoch, "meta": _meta(chat, time.time()),
               "report": self._report(chat)}
        if chat.flags.returning:
            ack["meta"].update(await self.returning_meta(sid, chat))
        return ack

    async def on_chat_accept(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.chat_accept(payload)
        session = await self._session(sid)
        chat = await self.chats.accept(
            data["chat_id"], session.username, session.display_name, data["pubkey"]
        )
        return await self._accepted(sid, chat)

    async def on_chat_take_next(self, sid: str, payload: Any) -> dict[str, Any]:
        console, _ = self._wf()
        data = console.take_next(payload)
        session = await self._session(sid)
        chat = await self.chats.take_next(
            session.username, session.display_name, session.languages, data["pubkey"]
        )
        return await self._accepted(sid, chat)

    async def on_staff_online(self, sid: str, payload: Any) -> dict[str, Any]:
        """Colleagues who could take a transfer now (online, with a chat role)."""
        self.schemas.empty(payload)
        me = await self._session(sid)
        colleagues = await self._colleagues_online()
        colleagues.pop(me.username, None)
        return {"staff": [{"username": u, "display_name": n or u}
                          for u, n in sorted(colleagues.items())]}

    async def _colleagues_online(self) -> dict[str, str | None]:
        """Username -> display name (None if the account has none yet) of chat-taking staff
        with a socket here or, with a shared store, on another process (seen there within
        the last seconds)."""
        online = {session.username: session.display_name
                  for _, session, _ in self._staff.values() if session.role in self.chat_roles}
        if self.find_account is not None:
            for username in await self.chats.seen_elsewhere():
                if username in online:
                    continue
                account = await self.find_account(username)
                if account is not None and not account.disabled and (
                        account.role in self.chat_roles):
                    online[username] = account.display_name
        return online

    # -- one chat ------------------------------------------------------------------------------

    async def on_chat_rejoin(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.chat_rejoin(payload)
        _, chat = await self._held(sid, data["chat_id"])
        await self.enter_room(sid, chat_room(chat.chat_id))
        if chat.state == ENDED:
            return {"epoch": chat.epoch, "visitor_pubkey": chat.visitor_pubkey, "missed": [],
                    "state": chat.state, "report": self._report(chat)}
        epoch = await self.chats.rekey(chat, COUNSELOR, data["pubkey"])
        missed = await self.chats.store.envelopes_after(chat.chat_id, data["after_id"])
        return {"epoch": epoch, "visitor_pubkey": chat.visitor_pubkey, "missed": missed,
                "state": chat.state, "report": self._report(chat)}

    async def on_msg_send(self, sid: str, payload: Any) -> dict[str, Any]:
        envelope = self.schemas.msg_send(payload)
        session = await self._session(sid)
        return {"id": await self.chats.send(envelope["chat_id"], COUNSELOR, envelope, sid,
                                            holder=session.username)}

    async def on_typing(self, sid: str, payload: Any) -> None:
        data = self.schemas.typing(payload)
        _, chat = await self._held(sid, data["chat_id"])
        await self.chats.typing(chat, COUNSELOR, data["on"], sid)

    async def on_key_update(self, sid: str, payload: Any) -> dict[str, Any]:
        data = self.schemas.key_update(payload)
        _, chat = await self._held(sid, data["chat_id"])
        return {"epoch": await self.chats.rekey(chat, COUNSELOR, data["pubkey"])}

    async def on_chat_transfer(self, sid: str, payload: Any) -> None:
        console, _ = self._wf()
        data = console.transfer(payload)
        session, chat = await self._held(sid, data["chat_id"])
        if data["to"] == QUEUE:
            await self.chats.requeue(chat, "transfer", actor=session.username)
            return
        colleagues = await self._colleagues_online()
        if data["to"] not in colleagues:
            raise ProtocolError("not_found", "no colleague of that name is online to take it")
        await self.chats.transfer(chat, session.username, data["to"], colleagues[data["to"]])
        # To every socket of theirs, on whichever process (a room per user).
        await self.chats.relay.to_user(data["to"], "chat:transferred", {
            **self._chat_info(chat, time.time()), "from": session.label,
        })

    # -- the mandatory-reporting workflow (counselor_console/reporting.py) ----------------------

    async def _report_changed(self, sid: str, chat: Chat, action: str, actor: str,
                              **detail: Any) -> dict[str, Any]:
        await self.chats.store.save_chat(chat)
        report = self._report(chat)
        await self._audit(action, actor=actor, target=chat.chat_id, **detail)
        await self.chats.relay.to_counselor(chat.chat_id, "report:update",
                                            {"chat_id": chat.chat_id, "report": report},
                                            skip_sid=sid)
        return {"report": report}

    async def _open_held(self, sid: str, chat_id: str) -> tuple[Session, Chat]:
        session, chat = await self._held(sid, chat_id)
        if chat.state not in (ACTIVE, ENDED):
            raise ProtocolError("conflict", "this chat is not open")
        return session, chat

    async def on_chat_child(self, sid: str, payload: Any) -> dict[str, Any]:
        console, _ = self._wf()
        data = console.child(payload)
        session, chat = await self._open_held(sid, data["chat_id"])
        reporting.set_child(chat, data["involved"])
        return await self._report_changed(sid, chat, "report.child", session.username,
                                          involved=data["involved"])

    async def on_chat_informed(self, sid: str, payload: Any) -> dict[str, Any]:
        console, _ = self._wf()
        data = console.informed(payload)
        session, chat = await self._open_held(sid, data["chat_id"])
        reporting.set_informed(chat)
        return await self._report_changed(sid, chat, "report.informed", session.username)

    async def on_chat_indicators(self, sid: str, payload: Any) -> dict[str, Any]:
        console, workflow = self._wf()
        data = console.indicators(payload)
        session, chat = await self._open_held(sid, data["chat_id"])
        state = reporting.set_indicators(chat, data["indicators"], workflow.acute_ids)
        return await self._report_changed(sid, chat, "report.indicators", session.username,
                                          indicators=sorted(state.indicators))

    async def on_report_decision(self, sid: str, payload: Any) -> dict[str, Any]:
        console, workflow = self._wf()
        data = console.decision(payload)
        session, chat = await self._open_held(sid, data["chat_id"])
        state = reporting.record_decision(chat, workflow, data["decision"], data["to"],
                                          data["reason"], data["channel"])
        assert state.decision is not None
        return await self._report_changed(
            sid, chat, "report.decision", session.username,
            decision=data["decision"], to=data["to"], reason=data["reason"],
            channel=data["channel"], child=state.child_involved, informed=state.informed,
        )

    # -- notes (counselor_console/notes.py) ------------------------------------------------------

    async def on_note_add(self, sid: str, payload: Any) -> dict[str, Any]:
        console, _ = self._wf()
        data = console.note_add(payload)
        session, chat = await self._held(sid, data["chat_id"])
        note = await self.notes.add(session.username, chat.chat_id, data["text"].strip())
        await self._audit("note.add", actor=session.username, target=chat.chat_id)
        return {"note": note}

    async def on_note_list(self, sid: str, payload: Any) -> dict[str, Any]:
        console, _ = self._wf()
        data = console.note_list(payload)
        session = await self._session(sid)
        return {"notes": await self.notes.of_author(session.username, data["chat_id"])}

    # -- the end ---------------------------------------------------------------------------------

    async def on_chat_close(self, sid: str, payload: Any) -> None:
        data = self.schemas.chat_close(payload)
        session, chat = await self._held(sid, data["chat_id"])
        form = self.console.close_form(data["form"])
        report = reporting.check_close(chat, form["indicators"])
        form["outcome"] = form["outcome"] or default_outcome(chat)
        await self.chats.close(chat, form, report, session.username)


def _meta(chat: Chat, now: float) -> dict[str, Any]:
    meta = chat.answers.to_dict()
    meta["waited_s"] = int((chat.accepted_at or now) - chat.created_at)
    if chat.flags.returning:
        meta["returning"] = True
    return meta


def _same_origin(environ: dict[str, Any]) -> bool:
    """Refuse a handshake that another site's page started (cross-site WebSocket hijacking)."""
    origin = environ.get("HTTP_ORIGIN")
    if not origin:
        return True  # not a browser: it cannot carry a victim's cookie
    return urlsplit(origin).netloc == environ.get("HTTP_HOST", "")
