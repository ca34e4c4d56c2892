"""The chat lifecycle: queue, accept, relay of envelopes, re-keying, resume and end.

This module knows chats and envelopes, not sockets: the namespaces translate events
into these calls, and `Relay` carries what others must hear.

The chat state lives in the store, behind one interface (stores.EphemeralStore): the
SQLite store holds it in a dict written through to its file, the Redis store in Redis
for several processes (docs/architecture.md, "Where the chat state lives"). The service
never asks which: the checks that must be atomic (the send rule, the queue cap, the
epoch, accepting) are the store's. Presence and the queue push are modules of their
own (presence.py, queue_push.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

from tillit.chat_server.model import (
    ACTIVE,
    COUNSELOR,
    DIRECTION,
    ENDED,
    QUEUED,
    VISITOR,
    Chat,
    VisitorAnswers,
)
from tillit.chat_server.presence import Presence
from tillit.chat_server.queue_order import WaitEstimator, pick_next, urgency_key
from tillit.chat_server.queue_push import QueuePush
from tillit.chat_server.relay import Relay
from tillit.chat_server.send_rule import REFUSALS
from tillit.chat_server.stores import EphemeralStore, SendRefused
from tillit.safety.errors import ProtocolError

log = logging.getLogger(__name__)

AuditFn = Callable[..., Awaitable[None]]


class Facts(Protocol):
    """Where a chat's one statistics fact goes (counselor_console/closing.FactWriter)."""

    async def closed(self, chat: Chat, form: dict[str, Any], report: Any) -> str: ...

    async def abandoned(self, chat: Chat) -> str | None: ...


class Feedback(Protocol):
    """Where the visitor's feedback goes (counselor_console/feedback.FeedbackBox)."""

    def expect(self, chat_id: str) -> None: ...

    async def give(self, chat_id: str, helped: str | None, score: int | None) -> None: ...


PROFESSIONAL = "professional"
# Accepts within this long of a `chat:accepted` push share the next one (docs/protocol.md
# E4): every push goes to every staff socket, and an evening's burst of accepts must not
# each cost one (1 000 accepts to one account's 250 sockets were a quarter million frames).
ACCEPTED_PUSH_INTERVAL_S = 0.05


def _queue_line(chat: Chat, now: float) -> dict[str, Any]:
    """A waiting chat as staff see it in `queue:update` and `queue:list`."""
    line = {"chat_id": chat.chat_id, "waiting_s": int(now - chat.created_at),
            **chat.answers.to_dict()}
    if chat.flags.returning:  # docs/protocol.md E12.9: a returning contact
        line["returning"] = True
    return line


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("ascii")).hexdigest()


def now_ms() -> int:
    return int(time.time() * 1000)


class ChatService:
    def __init__(
        self,
        store: EphemeralStore,
        relay: Relay,
        audit: AuditFn,
        *,
        child_age_groups: list[str],
        resume_window_s: float,
        ciphertext_grace_s: float,
        max_queue: int,
        default_wait_per_place_s: float,
        feedback: Feedback,
        facts: Facts,
        max_parallel: int,
        grace_s: float,
        queue_push_interval_s: float,
        topics: list[dict[str, Any]],
        queued_gone_s: float,
        visitors_here: Callable[[], Iterable[str]],
    ) -> None:
        self.feedback = feedback
        self.facts = facts
        self.max_parallel = max_parallel
        self.store = store
        self.relay = relay
        self.audit = audit
        self.child_age_groups = frozenset(child_age_groups)
        # Topics a visitor may choose that mark an indicator or are acute (vocabularies.toml).
        self.topic_indicators = {t["id"]: t["indicator"] for t in topics
                                 if t.get("indicator")}
        self.acute_topics = frozenset(t["id"] for t in topics if t.get("acute"))
        self.resume_window_s = resume_window_s
        # A chat still in the queue whose visitor's socket is gone (and does not resume)
        # leaves the queue after this long, also after a restart: fakes must not hold
        # places for the whole resume window.
        self.queued_gone_s = queued_gone_s
        self.ciphertext_grace_s = ciphertext_grace_s
        self.max_queue = max_queue
        self.waits = WaitEstimator(default_wait_per_place_s)
        self.presence = Presence(store, grace_s)
        self.queue_push = QueuePush(self.queue, _queue_line, relay, self.waits,
                                    queue_push_interval_s)
        self._background: set[asyncio.Task[Any]] = set()
        # Chat ids with a visitor socket in this process (the visitor namespace's sockets).
        self.visitors_here = visitors_here
        # Per chat, the future the next message's relay waits for.
        self._relay_turns: dict[str, asyncio.Future[None]] = {}
        # Accepted chats not yet told to staff (chat id -> by), and the task telling them.
        self._accepted: dict[str, str] = {}
        self._accepted_task: asyncio.Task[None] | None = None

    # -- start-up ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Take back the chats that were open when the process stopped (the store's part)."""
        await self.store.recover(time.time())

    async def get(self, chat_id: str) -> Chat:
        """The chat as it is now."""
        chat = await self.store.load_chat(chat_id)
        if chat is None:
            raise ProtocolError("not_found", "there is no such chat")
        return chat

    async def all_chats(self) -> list[Chat]:
        return await self.store.all_chats()

    # -- the queue ---------------------------------------------------------------------------

    async def queue(self) -> list[Chat]:
        return sorted(await self.store.queued_chats(), key=urgency_key)

    async def queue_entries(self, now: float | None = None) -> list[dict[str, Any]]:
        now = time.time() if now is None else now
        return [{**_queue_line(c, now), "acute": c.flags.acute}
                for c in await self.queue()]

    async def position(self, chat: Chat) -> tuple[int, int]:
        """1-based place in the queue and the estimated wait in seconds."""
        if chat.state != QUEUED:
            return 0, 0
        # Counted by the store (every `chat:start` asks; reading and decoding the whole
        # queue each time was a sixth of the server's set-up time, bench/README.md).
        place = await self.store.queue_place(chat)
        if place is None:
            queue = await self.queue()
            place = next((i for i, c in enumerate(queue, 1) if c.chat_id == chat.chat_id), 1)
        place = place or 1  # not (or no longer) in the queue: as before, "first"
        return place, self.waits.estimate(chat, place)

    def queue_changed(self) -> None:
        """Push the queue soon (queue_push.py: changes close together share a push)."""
        self.queue_push.changed()

    # -- visitor side --------------------------------------------------------------------------

    async def queue_length(self) -> int:
        """How many chats wait in the queue now."""
        return int(await self.store.queue_size())

    async def start(self, pubkey: str, answers: dict[str, Any], *, returning: bool = False,
                    prefer: str | None = None, mailbox_id: str | None = None
                    ) -> tuple[Chat, str]:
        """A new chat at the back of its urgency group; `busy` past `queue.max_length`.

        The cap is atomic: the store counts and adds in one step (no await between them
        in the SQLite store, one script in Redis).
        So a burst of starts can never push the queue past the cap (each waited for its
        store write before any was counted, before 2026-12).
        """
        resume_token = secrets.token_urlsafe(32)
        chat = Chat(
            chat_id=secrets.token_urlsafe(16),
            resume_hash=hash_token(resume_token),
            visitor_pubkey=pubkey,
            answers=VisitorAnswers.from_payload(answers),
            created_at=time.time(),
        )
        self._derive_flags(chat)
        chat.flags.returning, chat.flags.prefer = returning, prefer
        chat.flags.mailbox_id = mailbox_id
        if not await self.store.admit_to_queue(chat, self.max_queue):
            raise ProtocolError("busy", "the queue is full right now")
        try:
            await self.store.save_chat(chat)
        except Exception:
            with contextlib.suppress(Exception):  # the place is given back
                await self.store.delete_chat(chat.chat_id)
            raise
        self.queue_changed()
        return chat, resume_token

    def _derive_flags(self, chat: Chat) -> None:
        """What follows from the answers: a sector only for a professional; the child flag."""
        answers, flags = chat.answers, chat.flags
        if answers.role != PROFESSIONAL:
            answers.sector = None
        flags.child = (answers.age_group or "unknown") in self.child_age_groups
        # A self-harm topic: acute at once (queue priority), its indicator marked for the
        # counselor (counselor_console/reporting.py seeds the report with it).
        topic_acute = any(t in self.acute_topics for t in answers.topics)
        flags.topic_indicators = [self.topic_indicators[t] for t in answers.topics
                                  if t in self.topic_indicators]
        if flags.report is not None:  # tillit.counselor_console.reporting's state
            flags.report["child_auto"] = flags.child
            # Once a counselor keeps the report, its marked indicators rule `acute` too.
            flags.acute = flags.acute or topic_acute
        else:
            flags.acute = topic_acute

    async def update_meta(self, chat: Chat, answers: dict[str, Any]) -> dict[str, Any]:
        """The visitor answered the optional questions while waiting (or just after the
        counselor joined): the answers replace the earlier ones; staff hear it as a queue
        update, and the counselor who holds the chat gets `chat:meta`.

        Only while the chat is queued or active: an ended chat's meta feeds its one
        statistics fact and must not change under the closing form.
        """
        if chat.state == ENDED:
            raise ProtocolError("conflict", "the chat has ended")
        chat.answers.update(answers)
        self._derive_flags(chat)
        await self.store.save_chat(chat)
        meta = {**chat.answers.to_dict(), "child": chat.flags.child}
        if chat.state == QUEUED:
            self.queue_changed()
        else:
            await self.relay.to_counselor(chat.chat_id, "chat:meta",
                                          {"chat_id": chat.chat_id, "meta": meta})
        return meta

    async def by_resume_token(self, resume_token: str) -> Chat:
        """The chat a visitor's resume token opens (the token is its only proof)."""
        token_hash = hash_token(resume_token)
        chat_id = await self.store.chat_id_for_resume(token_hash)
        try:
            chat = await self.get(chat_id) if chat_id else None
        except ProtocolError:
            chat = None
        if chat is None or chat.resume_hash != token_hash:
            raise ProtocolError("not_found", "this chat cannot be resumed")
        return chat

    async def resume(self, resume_token: str, after_id: int) -> tuple[Chat, list[dict[str, Any]]]:
        chat = await self.by_resume_token(resume_token)
        chat_id = chat.chat_id
        await self.store.mark_visitor_gone(chat, None)
        missed = [] if chat.state == ENDED else await self.store.envelopes_after(chat_id, after_id)
        return chat, missed

    async def stamp_visitors(self, chat_ids: list[str]) -> None:
        """"A socket of this chat's visitor is here" (presence.py)."""
        await self.presence.stamp_visitors(chat_ids)

    async def visitor_left(self, chat_id: str) -> None:
        """The visitor's socket closed; the resume window starts."""
        try:
            chat = await self.get(chat_id)
        except ProtocolError:
            return
        if chat.state != ENDED:
            await self.store.mark_visitor_gone(chat, time.time())

    # -- counselor side -----------------------------------------------------------------------

    async def active_count(self, username: str) -> int:
        # A count from the store: one account may hold many chats (the bench's 1 000),
        # and reading them all at each accept made setting them up quadratic.
        return await self.store.active_count(username)

    async def _check_capacity(self, username: str) -> None:
        if await self.active_count(username) >= self.max_parallel:
            raise ProtocolError(
                "busy", f"at most {self.max_parallel} chats at once; close one first"
            )

    async def accept(
        self, chat_id: str, username: str, display_name: str | None, pubkey: str
    ) -> Chat:
        """Give a queued chat to a counselor. The visitor learns only `display_name`
        (None for an account without one: the visitor page then says "your counselor"),
        never the login name."""
        chat = await self.get(chat_id)
        if chat.state != QUEUED:
            raise ProtocolError("conflict", "this chat is no longer in the queue")
        await self._check_capacity(username)
        if chat.state != QUEUED:  # taken by a colleague meanwhile (this process)
            raise ProtocolError("conflict", "this chat is no longer in the queue")
        now = time.time()
        # A chat returned to the queue keeps counting: an epoch number is never reused.
        chat.state, chat.epoch = ACTIVE, chat.epoch + 1
        chat.counselor, chat.counselor_name, chat.counselor_pubkey = username, display_name, pubkey
        if chat.accepted_at is None:
            chat.accepted_at = now
            self.waits.record(chat.answers.lang, now - chat.created_at)
        chat.flags.returned = False
        chat.flags.prefer = None
        if not await self.store.claim(chat, QUEUED):  # another process was first
            raise ProtocolError("conflict", "this chat is no longer in the queue")
        await self.audit("chat.accept", actor=username, target=chat_id, epoch=chat.epoch)
        self.queue_changed()
        self._tell_accepted(chat_id, display_name or username)
        await self.relay.to_visitor(chat_id, "chat:assigned", {
            "chat_id": chat_id, "counselor_name": display_name, "pubkey": pubkey,
            "epoch": chat.epoch,
        })
        return chat

    def _tell_accepted(self, chat_id: str, by: str) -> None:
        """Tell staff soon that the chat left the queue: the first accept of a burst at
        once, those that follow within ACCEPTED_PUSH_INTERVAL_S in one push after it."""
        self._accepted[chat_id] = by
        if self._accepted_task is None or self._accepted_task.done():
            self._accepted_task = asyncio.get_running_loop().create_task(self._push_accepted())

    async def _push_accepted(self) -> None:
        while self._accepted:
            await asyncio.sleep(0)  # the accepts of this tick go together
            told, self._accepted = list(self._accepted.items()), {}
            data: dict[str, Any] = {"chat_id": told[0][0], "by": told[0][1]}
            if len(told) > 1:  # docs/protocol.md E4: `accepted` lists every one
                data["accepted"] = [{"chat_id": c, "by": b} for c, b in told]
            try:
                await self.relay.to_staff("chat:accepted", data)
            except Exception:  # noqa: BLE001 - the next queue:update removes them anyway
                log.warning("chat:accepted not pushed")
            await asyncio.sleep(ACCEPTED_PUSH_INTERVAL_S)

    async def take_next(
        self, username: str, display_name: str | None, languages: list[str], pubkey: str
    ) -> Chat:
        """The most urgent chat for this counselor (queue_order.pick_next), accepted."""
        await self._check_capacity(username)
        queue = await self.queue()
        # A reserved returning contact: is its counselor online on any process?
        online = (await self.presence.online_anywhere() if any(c.flags.prefer for c in queue)
                  else self.is_online)
        chat = pick_next(queue, languages, username, online)
        if chat is None:
            raise ProtocolError("not_found", "no one is waiting")
        return await self.accept(chat.chat_id, username, display_name, pubkey)

    async def requeue(self, chat: Chat, why: str, actor: str | None = None) -> None:
        """Put an active chat back at the head of the queue; its counselor lets go of it."""
        if chat.state != ACTIVE:
            raise ProtocolError("conflict", "only an active chat can go back to the queue")
        previous = chat.counselor
        self._accepted.pop(chat.chat_id, None)  # back in the queue: not "accepted" any more
        await self.relay.to_counselor(chat.chat_id, "chat:returned",
                                      {"chat_id": chat.chat_id, "why": why})
        await self.relay.close_counselor_room(chat.chat_id)
        chat.state = QUEUED
        chat.counselor = chat.counselor_name = chat.counselor_pubkey = None
        chat.flags.returned = True
        await self.store.save_chat(chat)
        await self.audit("chat.requeue", actor=actor or previous, target=chat.chat_id, why=why)
        self.queue_changed()
        place, est = await self.position(chat)
        await self.relay.to_visitor(chat.chat_id, "chat:requeued", {
            "chat_id": chat.chat_id, "position": place, "est_wait_s": est,
        })

    async def transfer(
        self, chat: Chat, from_user: str, to_user: str, to_name: str | None
    ) -> None:
        """Hand an active chat to a colleague, who re-keys it with `chat:rejoin`."""
        if chat.state != ACTIVE:
            raise ProtocolError("conflict", "only an active chat can be transferred")
        if to_user == from_user:
            raise ProtocolError("invalid_payload", "this chat is yours already")
        await self._check_capacity(to_user)
        await self.relay.to_counselor(chat.chat_id, "chat:returned",
                                      {"chat_id": chat.chat_id, "why": "transfer"})
        await self.relay.close_counselor_room(chat.chat_id)
        chat.counselor, chat.counselor_name = to_user, to_name
        chat.flags.transferred = True
        await self.store.save_chat(chat)
        await self.audit("chat.transfer", actor=from_user, target=chat.chat_id, to=to_user)

    # -- counselor presence (for the grace period; presence.py) ---------------------------------

    async def counselor_online(self, username: str) -> None:
        await self.presence.counselor_online(username)

    async def counselor_offline(self, username: str, now: float | None = None) -> None:
        await self.presence.counselor_offline(username, now)

    async def seen_elsewhere(self, now: float | None = None) -> list[str]:
        """Counselors with no socket here whom another process stamped lately."""
        return await self.presence.seen_elsewhere(now)

    def is_online(self, username: str) -> bool:
        return self.presence.is_online(username)

    async def online_anywhere(self) -> Callable[[str], bool]:
        """"Has a socket on some process": this process's sockets, and with a shared
        store the presence stamps of the others (presence.py)."""
        return await self.presence.online_anywhere()

    async def held_by(self, chat_id: str, username: str) -> Chat:
        chat = await self.get(chat_id)
        if chat.counselor != username:
            raise ProtocolError("forbidden", "this chat is held by someone else")
        return chat

    async def chats_of(self, username: str) -> list[Chat]:
        return await self.store.chats_held_by(username)

    async def rekey(self, chat: Chat, side: str, pubkey: str) -> int:
        """A side replaced its key pair: a new epoch, announced to the other side."""
        if chat.state != ACTIVE:
            raise ProtocolError("conflict", "keys change only in an active chat")
        transferred = side == COUNSELOR and chat.flags.transferred
        if transferred:
            chat.flags.transferred = False
        # Both sides may re-key at once (on two processes): the store counts the epoch
        # up atomically, so each gets its own epoch and neither is lost.
        if not await self.store.rekey(chat, side, pubkey):
            raise ProtocolError("conflict", "keys change only in an active chat")
        if transferred:
            await self.store.save_chat(chat)
        event = {"chat_id": chat.chat_id, "pubkey": pubkey, "epoch": chat.epoch, "from": side}
        if side == VISITOR:
            await self.relay.to_counselor(chat.chat_id, "key:update", event)
        else:
            await self.relay.to_visitor(chat.chat_id, "key:update", event)
        if transferred:  # the visitor learns who took over (same epoch and key)
            await self.relay.to_visitor(chat.chat_id, "chat:assigned", {
                "chat_id": chat.chat_id, "counselor_name": chat.counselor_name,
                "pubkey": pubkey, "epoch": chat.epoch,
            })
        return chat.epoch

    # -- messages --------------------------------------------------------------------------------

    async def send(
        self, chat_id: str, side: str, envelope: dict[str, Any], sender_sid: str,
        holder: str | None = None,
    ) -> int:
        """Store an envelope, then relay it; a retried (epoch, dir, seq) gets its first id.

        `holder`: the counselor who sends, who must hold the chat (None for the visitor).

        No read of the chat: the store's append checks the send rule in the same atomic
        step that takes the id, so a message costs one store step. Appends are queued in
        call order and each store's one writer keeps that order, so ids follow it; only
        the relay waits for the message before it, because relays (publishes over several
        pooled connections with Redis) could overtake each other.
        """
        before = self._relay_turns.get(chat_id)
        mine: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._relay_turns[chat_id] = mine
        try:
            return await self._store_and_relay(
                chat_id, side, envelope, sender_sid, holder, after=before)
        finally:
            # Our turn ends once we relayed (or failed) and the one before us ended.
            def end_turn(_: object = None) -> None:
                mine.set_result(None)
                if self._relay_turns.get(chat_id) is mine:
                    del self._relay_turns[chat_id]

            if before is None or before.done():
                end_turn()
            else:
                before.add_done_callback(end_turn)

    async def _store_and_relay(
        self, chat_id: str, side: str, envelope: dict[str, Any], sender_sid: str,
        holder: str | None, after: asyncio.Future[None] | None,
    ) -> int:
        stored = {
            "chat_id": chat_id, "epoch": envelope["epoch"], "seq": envelope["seq"],
            "nonce": envelope["nonce"], "ct": envelope["ct"], "id": 0,
            "from": side, "ts": now_ms(), "dir": DIRECTION[side],
        }
        # The store takes the id and stores the envelope in one step; a retried
        # (epoch, dir, seq) gets the id it got first and is not relayed again.
        try:
            stored["id"], new = await self.store.append_checked(chat_id, stored, holder)
        except SendRefused as exc:
            raise ProtocolError(exc.code, REFUSALS[exc.code]) from None
        except Exception:
            raise ProtocolError("unavailable", "not stored; send it again") from None
        if after is not None and not after.done():
            await after  # the previous message of this chat is relayed first
        if not new:
            return stored["id"]
        del stored["dir"]
        if side == VISITOR:
            await self.relay.to_counselor(chat_id, "msg:new", stored)
        else:
            await self.relay.to_visitor(chat_id, "msg:new", stored)
            await self.relay.to_counselor(chat_id, "msg:new", stored, skip_sid=sender_sid)
        return stored["id"]

    async def typing(self, chat: Chat, side: str, on: bool, sender_sid: str) -> None:
        if chat.state != ACTIVE:
            return
        event = {"chat_id": chat.chat_id, "on": on}
        if side == VISITOR:
            await self.relay.to_counselor(chat.chat_id, "typing", event)
        else:
            await self.relay.to_visitor(chat.chat_id, "typing", event)

    # -- the end ---------------------------------------------------------------------------------

    async def end(
        self, chat: Chat, by: str, reason: str | None = None, _keep: bool = False
    ) -> None:
        """End a chat: both sides hear it, and its ciphertext is deleted (docs/protocol.md 6)."""
        if chat.state == ENDED:
            return
        was_queued = chat.state == QUEUED
        chat.state, chat.ended_at, chat.ended_by = ENDED, time.time(), by
        # No accept can follow: the mailbox link goes now, even where the chat is kept
        # (without content) for the closing form (docs/protocol.md E12.9).
        chat.flags.mailbox_id = chat.flags.prefer = None
        if reason:
            chat.flags.end_reason = reason
        if not was_queued:
            self.feedback.expect(chat.chat_id)
        event: dict[str, Any] = {"chat_id": chat.chat_id, "by": by}
        if reason:
            event["reason"] = reason
        await self.relay.to_both(chat.chat_id, "chat:ended", event)
        if was_queued and self.facts is not None:
            try:
                await self.facts.abandoned(chat)
            except Exception:
                log.exception("statistics fact not written")
        if _keep:
            await self._purge_ciphertext(chat.chat_id)
        elif was_queued or by == COUNSELOR:
            await self.forget(chat)
        else:
            await self.store.save_chat(chat)  # kept, without content, for the closing form
            await self._purge_ciphertext(chat.chat_id)
        if was_queued:
            self.queue_changed()
        await self.audit("chat.end", actor=chat.counselor if by == COUNSELOR else None,
                         target=chat.chat_id, by=by, reason=reason)

    async def close(self, chat: Chat, form: dict[str, Any], report: Any, actor: str) -> None:
        """The counselor's close with the closing form: one fact, then the chat is forgotten.

        The caller has checked the reporting workflow (tillit.counselor_console.reporting).
        """
        if chat.flags.closing:
            raise ProtocolError("conflict", "this chat is being closed already")
        chat.flags.closing = True
        if chat.state != ENDED:
            await self.end(chat, COUNSELOR, _keep=True)
        if self.facts is not None:
            try:
                await self.facts.closed(chat, form, report)
            except Exception:  # a full disk must not keep the chat open
                log.exception("statistics fact not written")
        await self.audit("chat.close", actor=actor, target=chat.chat_id,
                         outcome=form.get("outcome"))
        await self.forget(chat)

    async def forget(self, chat: Chat) -> None:
        await self.store.delete_chat(chat.chat_id)
        await self.audit("chat.purge", target=chat.chat_id)

    async def _purge_ciphertext(self, chat_id: str) -> None:
        if self.ciphertext_grace_s <= 0:
            await self.store.purge_envelopes(chat_id)
            return

        async def later() -> None:
            await asyncio.sleep(self.ciphertext_grace_s)
            await self.store.purge_envelopes(chat_id)

        task = asyncio.get_running_loop().create_task(later())
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    async def sweep(self, now: float | None = None) -> None:
        """End chats whose visitor is gone past the resume window; give back the chats
        of counselors gone past the grace period."""
        now = time.time() if now is None else now
        here = set(self.visitors_here())
        await self.presence.stamp_here(list(here))
        # One process sweeps per interval; the lock expires before the next one.
        if not await self.store.try_lock("sweeper", self.presence.sweep_every_s * 0.8):
            return
        stamps = await self.store.visitors_seen()
        for chat in await self.all_chats():
            gone = chat.visitor_gone_since
            stamp = stamps.get(chat.chat_id)
            if (gone is None and stamp is not None and chat.chat_id not in here
                    and now - stamp > self.presence.fresh_s):
                # No process has stamped this visitor lately: the process that held
                # the socket died without a word. Gone since its last stamp.
                gone = stamp
            if chat.state == ENDED or gone is None:
                continue
            window = self.queued_gone_s if chat.state == QUEUED else self.resume_window_s
            if now - gone > min(window, self.resume_window_s):
                await self.end(chat, "timeout")
        for username in await self.presence.gone_counselors(now):
            for chat in await self.chats_of(username):
                if chat.state == ACTIVE:
                    await self.requeue(chat, "counselor_gone", actor="grace-period")

    async def run_sweeper(self, every_s: float) -> None:
        self.presence.sweep_every_s = every_s
        while True:
            await asyncio.sleep(every_s)
            try:
                await self.sweep()
            except Exception:
                log.exception("sweep failed")
