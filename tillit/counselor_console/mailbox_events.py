"""The counselor's side of the mailboxes (docs/protocol.md E12.9): keys, list, read,
reply, propose a time, transfer, and case notes that live as long as the mailbox.

Mixed into CounselorNamespace, whose `_session`, `_audit` and `notes` it uses; the
mailboxes themselves are chat_server/mailboxes.py's `MailboxService`. A counselor
never sends or sees a locator; audit rows name no mailbox.
"""

from __future__ import annotations

import time
from typing import Any

from tillit.chat_server.mailbox_store import Mailbox, day_plus
from tillit.chat_server.mailboxes import MailboxService
from tillit.chat_server.model import Chat
from tillit.counselor_console.notes import MAX_NOTES_PER_CHAT, NoteBook
from tillit.counselor_console.sessions import Session
from tillit.safety import mailbox_shapes as shapes
from tillit.safety.errors import ProtocolError

ADMIN = "admin"


def _note_ref(mailbox_id: str) -> str:
    """The associated data a case note is sealed with: bound to its mailbox."""
    return f"mailbox:{mailbox_id}"


class MailboxEvents:
    """`on_mailbox_*` handlers; the namespace sets `mailboxes` (None: not offered)."""

    mailboxes: MailboxService | None
    notes: NoteBook

    async def _session(self, sid: str, need_chat_role: bool = True) -> Session:
        raise NotImplementedError  # CounselorNamespace's

    async def _audit(self, action: str, **fields: Any) -> None:
        raise NotImplementedError  # CounselorNamespace's

    def _mb(self) -> MailboxService:
        if self.mailboxes is None:
            raise ProtocolError("unavailable", "mailboxes are not offered here")
        return self.mailboxes

    async def _mb_session(self, sid: str, admin_may: bool) -> Session:
        session = await self._session(sid, need_chat_role=False)
        chat_roles = getattr(self, "chat_roles", frozenset())
        if session.role in chat_roles or (admin_may and session.role == ADMIN):
            return session
        raise ProtocolError("forbidden", "this account does not answer mailboxes")

    async def _readable(self, session: Session, payload: Any, fields: set[str],
                        optional: set[str] = frozenset()  # type: ignore[assignment]
                        ) -> tuple[Mailbox, dict[str, Any]]:
        data = shapes.exact_fields("payload", payload, fields | {"mailbox_id"}, optional)
        mailbox_id = shapes.mailbox_id("mailbox_id", data["mailbox_id"])
        box = await self._mb().store.get(mailbox_id)
        if box is None:
            raise ProtocolError("not_found", "no such mailbox")
        if session.role != ADMIN and box.assigned not in (None, session.username):
            raise ProtocolError("forbidden", "a colleague holds this mailbox")
        return box, data

    async def returning_meta(self, sid: str, chat: Chat) -> dict[str, Any]:
        """A returning contact's chat (E12.9): `returning`, and for the mailbox's own
        counselor its `mailbox_id` and their own case notes from before."""
        session = await self._session(sid)
        mailbox_id = (await self.mailboxes.returning_mailbox(chat, session.username)
                      if self.mailboxes is not None else None)
        meta: dict[str, Any] = {"returning": True, "mailbox_id": mailbox_id}
        if mailbox_id is not None:
            meta["mailbox_notes"] = await self.mailbox_notes(session.username, mailbox_id)
        return meta

    # -- keys -------------------------------------------------------------------------------

    async def on_mailbox_keys(self, sid: str, payload: Any) -> dict[str, Any]:
        session = await self._mb_session(sid, admin_may=False)
        store = self._mb().store
        data = shapes.exact_fields("mailbox:keys", payload, set(), {"set"})
        if "set" in data:
            record = shapes.key_record("set", data["set"], "counselor-key")
            old = await store.key_record(session.username)
            await store.set_key_record(session.username, record)
            if old is None or old["kid"] != record["kid"]:
                await self._audit("mailbox.key", actor=session.username)
            return {"kid": record["kid"]}
        return {"key": await store.key_record(session.username), "team": await store.team()}

    async def on_mailbox_staff(self, sid: str, payload: Any) -> dict[str, Any]:
        await self._mb_session(sid, admin_may=True)
        shapes.exact_fields("mailbox:staff", payload, set())
        return {"staff": [{"username": s.username, "display_name": s.display_name,
                           "kid": s.kid, "pubkey": s.pubkey}
                          for s in await self._mb().store.staff_keys()]}

    # -- list, read, write ------------------------------------------------------------------

    async def on_mailbox_list(self, sid: str, payload: Any) -> dict[str, Any]:
        session = await self._mb_session(sid, admin_may=True)
        shapes.exact_fields("mailbox:list", payload, set())
        desk = self._mb()
        items = await desk.store.listing(session.username, everyone=session.role == ADMIN)
        return {"mailboxes": [desk.presented(i) for i in items]}

    async def on_mailbox_read(self, sid: str, payload: Any) -> dict[str, Any]:
        session = await self._mb_session(sid, admin_may=True)
        box, data = await self._readable(session, payload, set(), {"after_seq"})
        after = data.get("after_seq", 0)
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise ProtocolError("invalid_payload", "after_seq must be a non-negative integer")
        desk = self._mb()
        messages, more = await desk.store.messages(box.mailbox_id, after)
        if messages:
            await desk.store.mark_read(box.mailbox_id, session.username, messages[-1]["seq"])
        try:
            recipients = await desk.recipients_c2v(box, session.username)
        except ProtocolError:
            recipients = []  # no key record (yet), or an admin: may read, cannot answer
        return {
            "mailbox": {"mailbox_id": box.mailbox_id, "pubkey": box.pubkey,
                        "assigned": box.assigned, "created_day": box.created_day,
                        "expires_day": day_plus(box.last_active_day, desk.idle_days)},
            "messages": messages, "more": more, "recipients": recipients,
        }

    async def _write(self, sid: str, payload: Any, kind: str) -> dict[str, Any]:
        session = await self._mb_session(sid, admin_may=False)
        box, data = await self._readable(session, payload, {"message"})
        envelope = shapes.envelope("message", data["message"], "c2v")
        desk = self._mb()
        desk.check_sealed_for(envelope, await desk.recipients_c2v(box, session.username))
        if box.assigned is None:
            if not await desk.store.assign(box.mailbox_id, session.username,
                                           only_if_unassigned=True):
                raise ProtocolError("conflict", "a colleague took this mailbox first")
            box = await desk.store.get(box.mailbox_id) or box
        return await desk._store_message(box, envelope, kind)

    async def on_mailbox_reply(self, sid: str, payload: Any) -> dict[str, Any]:
        return await self._write(sid, payload, "message")

    async def on_mailbox_propose_time(self, sid: str, payload: Any) -> dict[str, Any]:
        return await self._write(sid, payload, "proposal")

    async def on_mailbox_transfer(self, sid: str, payload: Any) -> dict[str, Any]:
        session = await self._mb_session(sid, admin_may=True)
        desk = self._mb()
        box, data = await self._readable(session, payload, {"to", "entries"})
        if session.role != ADMIN and box.assigned != session.username:
            raise ProtocolError("forbidden", "only the holder transfers a mailbox")
        to = data["to"]
        if not isinstance(to, str) or not 0 < len(to) <= 64:
            raise ProtocolError("invalid_payload", "to must be a username")
        if to == session.username:
            raise ProtocolError("invalid_payload", "a mailbox is not transferred to oneself")
        entries = shapes.transfer_entries("entries", data["entries"], desk.max_messages)
        staff = {s.username: s for s in await desk.store.staff_keys()}
        colleague = staff.get(to)
        if colleague is None:
            raise ProtocolError("not_found", "no such colleague with a mailbox key")
        ids = await desk.store.message_ids(box.mailbox_id)
        if any(e["entry"]["kid"] != colleague.kid or e["id"] not in ids for e in entries):
            raise ProtocolError("invalid_payload",
                                "an entry is not for the colleague's key or this mailbox")
        current = {s.kid for s in staff.values()}
        team = await desk.store.team()
        keep = current | {shapes.key_id(box.pubkey)} | ({team["kid"]} if team else set())
        stale = await self._stale_kids(box.mailbox_id, keep)
        await desk.store.add_entries(box.mailbox_id, entries, stale, to)
        action = "mailbox.recover" if session.role == ADMIN else "mailbox.transfer"
        await self._audit(action, actor=session.username, target=to)
        await desk.push_update(box.mailbox_id)
        return {}

    async def _stale_kids(self, mailbox_id: str, keep: set[str]) -> set[str]:
        """Entries for keys of disabled accounts (E12.9: dropped at a transfer). Keys of
        the past that are nobody's any more are kept: the team key's older ones are
        unknown here, so only counselor keys whose account is disabled go."""
        disabled = await self._mb().store.disabled_kids()
        return disabled - keep

    # -- case notes (E12.9, an addition: notes linked to a mailbox) ---------------------------

    async def on_mailbox_note_add(self, sid: str, payload: Any) -> dict[str, Any]:
        session = await self._mb_session(sid, admin_may=False)
        box, data = await self._readable(session, payload, {"text"})
        text = data["text"]
        if not isinstance(text, str) or not text.strip() or len(text) > self.notes.max_chars:
            raise ProtocolError("invalid_payload",
                                f"text must be 1 to {self.notes.max_chars} characters")
        store = self._mb().store
        if await store.count_notes(box.mailbox_id, session.username) >= MAX_NOTES_PER_CHAT:
            raise ProtocolError("conflict", "this mailbox has as many notes as it may have")
        now = time.time()
        text = text.strip()
        nonce, ct = self.notes.cipher.seal(session.username, _note_ref(box.mailbox_id), text)
        note_id = await store.add_note(box.mailbox_id, session.username, nonce, ct, now)
        return {"note": {"id": note_id, "mailbox_id": box.mailbox_id, "at": int(now),
                         "text": text}}

    async def on_mailbox_note_list(self, sid: str, payload: Any) -> dict[str, Any]:
        session = await self._mb_session(sid, admin_may=False)
        data = shapes.exact_fields("payload", payload, {"mailbox_id"})
        mailbox_id = shapes.mailbox_id("mailbox_id", data["mailbox_id"])
        return {"notes": await self.mailbox_notes(session.username, mailbox_id)}

    async def mailbox_notes(self, author: str, mailbox_id: str) -> list[dict[str, Any]]:
        """The author's own case notes of a mailbox, oldest first; never anyone else's."""
        out = []
        for row in await self._mb().store.notes_of(mailbox_id, author):
            try:
                text = self.notes.cipher.open(author, _note_ref(mailbox_id), bytes(row.nonce),
                                              bytes(row.ct))
            except Exception:  # noqa: BLE001 - a wrong key or a tampered row: show nothing
                continue
            out.append({"id": row.id, "mailbox_id": mailbox_id, "at": int(row.created_at),
                        "text": text})
        return out
