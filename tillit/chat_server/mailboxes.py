"""Mailboxes for visitors (docs/protocol.md E12): create, open, read, write and delete
with the locator alone; the throttles and proof of work that make guessing codes dear;
the recipient lists both sides seal for; the pushes to open sockets.

A locator is turned into its mailbox id at once and goes no further than the handler
that received it: no table, no Redis key, no log line and no error message holds one.
The counselor side (`mailbox:list`, `read`, `reply` ...) is
counselor_console/mailbox_events.py, on the same `MailboxService`.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from tillit.chat_server.mailbox_store import Mailbox, MailboxStore, day_of, day_plus
from tillit.chat_server.model import Chat
from tillit.chat_server.relay import COUNSELOR_NS, STAFF_ROOM, VISITOR_NS, user_room
from tillit.chat_server.start_guard import StartGuard, parse_steps
from tillit.safety import mailbox_shapes as shapes
from tillit.safety.errors import ProtocolError

NOT_FOUND = ProtocolError("not_found", "no mailbox for this code")
MAX_OPEN_PER_SOCKET = 2
FAIL_WINDOW_S = 60.0
Emit = Callable[..., Awaitable[None]]  # sio.emit(event, data, room=, namespace=)


def mailbox_room(mailbox_id: str) -> str:
    """The visitor sockets that opened this mailbox (in memory only)."""
    return f"mailbox:{mailbox_id}"


class Counters:
    """Expiring counters: Redis's (`count_hit`, shared by every process) or this process's."""

    def __init__(self, shared: Callable[..., Awaitable[int]] | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.shared = shared
        self.clock = clock
        self._local: dict[str, tuple[float, int]] = {}

    async def hit(self, name: str, window_s: float, add: int = 1) -> int:
        if self.shared is not None:
            return await self.shared(name, window_s, add)
        now = self.clock()
        if len(self._local) > 100_000:
            self._local = {k: v for k, v in self._local.items() if v[0] > now}
        expires, count = self._local.get(name, (0.0, 0))
        if expires <= now:
            expires, count = now + window_s, 0
        count += add
        if add:
            self._local[name] = (expires, count)
        return count


def _entry(kid: str, pubkey: str, role: str) -> dict[str, str]:
    return {"kid": kid, "pubkey": pubkey, "role": role}


class MailboxService:
    def __init__(
        self,
        store: MailboxStore,
        pow_guard: StartGuard,
        emit: Emit,
        counters: Counters,
        *,
        idle_days: int,
        max_messages: int,
        pow_bits_base: int,
        pow_fail_steps: list[str],
        pow_max_bits: int,
        open_per_id: int,
        open_window_s: float,
        online: Callable[[str], bool] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.store = store
        self.pow_guard = pow_guard
        self.emit = emit
        self.counters = counters
        self.idle_days = idle_days
        self.max_messages = max_messages
        self.pow_bits_base = pow_bits_base
        self.fail_steps = parse_steps(pow_fail_steps, "continuity.pow_fail_steps")
        self.pow_max_bits = pow_max_bits
        self.open_per_id = open_per_id
        self.open_window_s = open_window_s
        self.online = online or (lambda _username: False)
        self.clock = clock
        self._opened: dict[str, list[str]] = {}  # visitor sid -> mailbox ids it opened

    # -- proof of work and throttles (E12.8) ------------------------------------------------

    def _fail_key(self) -> str:
        return f"mbfail:{int(self.clock() // FAIL_WINDOW_S)}"

    async def pow_bits(self) -> int:
        failed = await self.counters.hit(self._fail_key(), FAIL_WINDOW_S * 2, add=0)
        bits = self.pow_bits_base
        for threshold, step_bits in self.fail_steps:
            if failed >= threshold:
                bits = max(bits, step_bits)
        return max(0, min(bits, self.pow_max_bits))

    async def challenge(self) -> dict[str, Any]:
        return await self.pow_guard.challenge(await self.pow_bits())

    async def _guard(self, pow_field: Any, mailbox_id: str) -> None:
        """The work first (E11's refusals), then the per-id throttle, for any id."""
        await self.pow_guard.check(pow_field, await self.pow_bits())
        window = int(self.clock() // self.open_window_s)
        count = await self.counters.hit(f"mbopen:{mailbox_id}:{window}", self.open_window_s)
        if count > self.open_per_id:
            raise ProtocolError("rate_limited", "too many tries for this code; wait a while")

    # -- sockets ----------------------------------------------------------------------------

    def opened_by(self, sid: str) -> list[str]:
        return list(self._opened.get(sid, ()))

    async def _remember(self, sid: str, mailbox_id: str,
                        enter: Callable[[str, str], Awaitable[None]]) -> None:
        ids = [m for m in self._opened.get(sid, []) if m != mailbox_id] + [mailbox_id]
        self._opened[sid] = ids[-MAX_OPEN_PER_SOCKET:]
        await enter(sid, mailbox_room(mailbox_id))

    def forget(self, sid: str) -> None:
        self._opened.pop(sid, None)

    def own(self, sid: str, locator: Any) -> str:
        """The mailbox id of a locator this socket opened; `not_found` without a lookup."""
        mailbox_id = shapes.locator_to_id("locator", locator)
        if mailbox_id not in self._opened.get(sid, ()):
            raise NOT_FOUND
        return mailbox_id

    # -- recipients (E12.6) -----------------------------------------------------------------

    async def _team(self) -> dict[str, str]:
        team = await self.store.team()
        if team is None:
            raise ProtocolError("unavailable", "mailboxes are not set up yet")
        return team

    async def recipients_v2c(self, box: Mailbox) -> list[dict[str, str]]:
        team = await self._team()
        out = [_entry(shapes.key_id(box.pubkey), box.pubkey, "mailbox"),
               _entry(team["kid"], team["pubkey"], "team")]
        staff = await self.store.staff_keys([box.assigned]) if box.assigned else []
        if not staff:  # unassigned: every counselor key, those online first (E12.6)
            everyone = await self.store.staff_keys()
            staff = sorted(everyone, key=lambda s: not self.online(s.username))[:62]
        return _unique(out + [_entry(s.kid, s.pubkey, "counselor") for s in staff])

    async def recipients_c2v(self, box: Mailbox, writer: str) -> list[dict[str, str]]:
        team = await self._team()
        names = [writer] + ([box.assigned] if box.assigned and box.assigned != writer else [])
        staff = await self.store.staff_keys(names)
        if writer not in {s.username for s in staff}:
            raise ProtocolError("conflict", "set your mailbox key first")
        return _unique([_entry(shapes.key_id(box.pubkey), box.pubkey, "mailbox"),
                        _entry(team["kid"], team["pubkey"], "team")]
                       + [_entry(s.kid, s.pubkey, "counselor") for s in staff])

    @staticmethod
    def check_sealed_for(envelope: dict[str, Any], recipients: list[dict[str, str]]) -> None:
        if {e["kid"] for e in envelope["keys"]} != {r["kid"] for r in recipients}:
            raise ProtocolError("conflict", "the recipients changed: fetch them and seal again")

    # -- visitor events ---------------------------------------------------------------------

    async def create(self, sid: str, payload: Any, chat_counselor: str | None,
                     enter: Callable[[str, str], Awaitable[None]]) -> dict[str, Any]:
        data = shapes.exact_fields("mailbox:create", payload,
                                   {"locator", "pubkey", "wrapped_key", "pow"}, {"chat_id"})
        mailbox_id = shapes.locator_to_id("locator", data["locator"])
        pubkey = shapes.public_key("pubkey", data["pubkey"])
        wrapped = shapes.wrapped_key("wrapped_key", data["wrapped_key"])
        await self._guard(data["pow"], mailbox_id)
        await self._team()  # unavailable before an admin set the team key
        assigned = None
        if chat_counselor and await self.store.staff_keys([chat_counselor]):
            assigned = chat_counselor
        if not await self.store.create(mailbox_id, pubkey, wrapped, assigned, self.clock()):
            raise ProtocolError("conflict", "this mailbox exists already")
        await self._remember(sid, mailbox_id, enter)
        box = await self.store.get(mailbox_id)
        assert box is not None
        return {"mailbox_id": mailbox_id, "recipients": await self.recipients_v2c(box),
                "idle_days": self.idle_days}

    async def open(self, sid: str, payload: Any,
                   enter: Callable[[str, str], Awaitable[None]]) -> dict[str, Any]:
        data = shapes.exact_fields("mailbox:open", payload, {"locator", "pow"})
        mailbox_id = shapes.locator_to_id("locator", data["locator"])
        await self._guard(data["pow"], mailbox_id)
        box = await self.store.get(mailbox_id)
        if box is None:
            await self.counters.hit(self._fail_key(), FAIL_WINDOW_S * 2)
            raise NOT_FOUND
        await self.store.touch(mailbox_id, self.clock())
        await self._remember(sid, mailbox_id, enter)
        messages, more = await self.store.messages(mailbox_id)
        return {
            "mailbox": {"mailbox_id": mailbox_id, "pubkey": box.pubkey,
                        "wrapped_key": box.wrapped_key,
                        "counselor_name": await self.store.display_name(box.assigned),
                        "idle_days": self.idle_days},
            "messages": messages, "more": more,
            "recipients": await self.recipients_v2c(box),
        }

    async def _owned_box(self, sid: str, payload: Any, fields: set[str]) -> tuple[Mailbox,
                                                                                  dict[str, Any]]:
        data = shapes.exact_fields("payload", payload, fields)
        box = await self.store.get(self.own(sid, data["locator"]))
        if box is None:
            raise NOT_FOUND
        return box, data

    async def recipients(self, sid: str, payload: Any) -> dict[str, Any]:
        box, _ = await self._owned_box(sid, payload, {"locator"})
        return {"recipients": await self.recipients_v2c(box)}

    async def messages(self, sid: str, payload: Any) -> dict[str, Any]:
        if isinstance(payload, dict) and "after_seq" not in payload:
            payload = {**payload, "after_seq": 0}
        box, data = await self._owned_box(sid, payload, {"locator", "after_seq"})
        after = _after_seq(data["after_seq"])
        messages, more = await self.store.messages(box.mailbox_id, after)
        return {"messages": messages, "more": more}

    async def send(self, sid: str, payload: Any) -> dict[str, Any]:
        box, data = await self._owned_box(sid, payload, {"locator", "message"})
        envelope = shapes.envelope("message", data["message"], "v2c")
        self.check_sealed_for(envelope, await self.recipients_v2c(box))
        return await self._store_message(box, envelope, "message")

    async def delete(self, sid: str, payload: Any) -> dict[str, Any]:
        box, _ = await self._owned_box(sid, payload, {"locator"})
        await self.remove([box.mailbox_id], {box.mailbox_id: box.assigned})
        return {}

    async def start_returning(
        self, mailbox_id: str, start: Callable[..., Awaitable[Any]],
        online: Callable[[str], bool],
    ) -> Any:
        """`chat:start` with a mailbox: offered first to the mailbox's counselor while
        online (on any process: `online`), else to the queue as a returning contact.
        Which chat came from which mailbox is kept with the chat's ephemeral state
        (`ServerFlags.mailbox_id`), so that the accept may reach any process; only for
        a mailbox a counselor holds."""
        box = await self.store.get(mailbox_id)
        if box is None:
            raise NOT_FOUND
        prefer = box.assigned if box.assigned and online(box.assigned) else None
        chat, resume_token = await start(returning=True, prefer=prefer,
                                         mailbox_id=mailbox_id if box.assigned else None)
        await self.store.touch(mailbox_id, self.clock())
        return chat, resume_token

    async def returning_mailbox(self, chat: Chat, username: str) -> str | None:
        """The mailbox id of a returning chat, for the mailbox's own counselor only: the
        one who holds the mailbox now (a transfer meanwhile counts; a deleted mailbox
        gives no one anything)."""
        mailbox_id = chat.flags.mailbox_id
        if mailbox_id is None:
            return None
        box = await self.store.get(mailbox_id)
        return mailbox_id if box is not None and box.assigned == username else None

    # -- shared by both sides ---------------------------------------------------------------

    async def _store_message(self, box: Mailbox, envelope: dict[str, Any],
                             kind: str) -> dict[str, Any]:
        stored = await self.store.add_message(box.mailbox_id, envelope, kind,
                                              self.max_messages, self.clock())
        if stored is None:
            raise ProtocolError("too_large", "this mailbox holds as many messages as it may")
        seq, ts, new = stored
        if new:
            message = await self.store.message(box.mailbox_id, seq)
            if envelope["dir"] == "c2v":
                await self.emit("mailbox:message",
                                {"mailbox_id": box.mailbox_id, "message": message},
                                room=mailbox_room(box.mailbox_id), namespace=VISITOR_NS)
            await self.push_update(box.mailbox_id)
        return {"seq": seq, "ts": ts}

    async def list_item(self, mailbox_id: str, username: str) -> dict[str, Any] | None:
        for item in await self.store.listing(username, everyone=True):
            if item["mailbox_id"] == mailbox_id:
                return self.presented(item)
        return None

    def presented(self, item: dict[str, Any]) -> dict[str, Any]:
        """A listing row as E12.9's list item (the expiry day instead of the last one)."""
        item = dict(item)
        item["expires_day"] = day_plus(item.pop("last_active_day"), self.idle_days)
        return item

    async def push_update(self, mailbox_id: str) -> None:
        """`mailbox:update` to the assigned counselor's sockets, or every chat-role socket
        when nobody holds the mailbox; each item as that counselor would list it."""
        box = await self.store.get(mailbox_id)
        if box is None or box.messages == 0:
            return
        item = await self.list_item(mailbox_id, box.assigned or "")
        if item is None:
            return
        room = user_room(box.assigned) if box.assigned else STAFF_ROOM
        await self.emit("mailbox:update", {"mailbox": item}, room=room, namespace=COUNSELOR_NS)

    async def remove(self, mailbox_ids: list[str], assigned: dict[str, str | None]) -> int:
        """Delete (with the code) or expire: every row in one transaction, then
        `mailbox:gone` to the sockets that opened them and to the staff."""
        count = await self.store.delete(mailbox_ids)
        for mailbox_id in mailbox_ids:
            await self.emit("mailbox:gone", {"mailbox_id": mailbox_id},
                            room=mailbox_room(mailbox_id), namespace=VISITOR_NS)
            holder = assigned.get(mailbox_id)
            await self.emit("mailbox:gone", {"mailbox_id": mailbox_id},
                            room=user_room(holder) if holder else STAFF_ROOM,
                            namespace=COUNSELOR_NS)
        return count


async def expire_idle(service: MailboxService, now: float) -> int:
    """The purge job's expiry (counselor_console/purge.py) with `mailbox:gone` pushes."""
    store = service.store
    ids = await store.idle_since(day_plus(day_of(now), -service.idle_days))
    holders = {}
    for mailbox_id in ids:
        box = await store.get(mailbox_id)
        holders[mailbox_id] = box.assigned if box is not None else None
    return await service.remove(ids, holders)


def _after_seq(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 2**31:
        raise ProtocolError("invalid_payload", "after_seq must be a non-negative integer")
    return value


def _unique(entries: list[dict[str, str]]) -> list[dict[str, str]]:
    seen: set[str] = set()
    out = []
    for e in entries:
        if e["kid"] not in seen:
            seen.add(e["kid"])
            out.append(e)
    return out
