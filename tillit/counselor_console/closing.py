"""From a closed chat to its one statistics fact (counselor_console/stats_facts.py).

A fact is built from the chat's meta (the visitor's optional answers), the closing
form (categories only) and the reporting state; it never carries the chat id, the
counselor or a time finer than the day. The visitor's feedback is attached later
through FeedbackBox, which keeps the chat-to-fact link in memory only.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Any

from tillit.chat_server.model import COUNSELOR, ENDED, Chat
from tillit.counselor_console import stats_facts
from tillit.counselor_console.outbox import Outbox, fact_entry
from tillit.counselor_console.reporting import ReportState, state_of

ABANDONED = "abandoned"
Linker = Callable[[str, str], Awaitable[None]]


def default_outcome(chat: Chat) -> str:
    """What an empty form means: how the chat ended, or 'completed'."""
    if chat.state == ENDED and chat.ended_by != COUNSELOR:
        if chat.flags.end_reason == "quick_exit":
            return "quick_exit"
        return "visitor_left"
    return "completed"


def _base(chat: Chat, now: float) -> dict[str, Any]:
    answers = chat.answers
    fact: dict[str, Any] = {"lang": answers.lang, "age_group": answers.age_group,
                            "gender": answers.gender, "role": answers.role,
                            "contact": answers.contact}
    # The sector of a consultation (tillit.chat_server.chats keeps it only for a professional).
    fact["sector"] = answers.sector if answers.role == "professional" else None
    fact["child"] = chat.flags.child
    fact["returning_contact"] = chat.flags.returning  # came back with a return code (E12)
    fact["danger_now"] = answers.danger_now
    if chat.accepted_at is not None:
        wait = chat.accepted_at - chat.created_at
    else:
        wait = waited_unanswered(chat, now)
    fact["wait_s"] = max(0, int(wait))
    fact["wait_bucket"] = stats_facts.wait_bucket(wait)
    return fact


def waited_unanswered(chat: Chat, now: float | None = None) -> float:
    """How long the visitor of a never-answered chat really waited: until they left
    (their socket went away, when it ended by timeout) or until the chat ended."""
    now = time.time() if now is None else now
    end = chat.ended_at or now
    if chat.ended_by == "timeout" and chat.visitor_gone_since is not None:
        end = min(end, chat.visitor_gone_since)
    return max(0.0, end - chat.created_at)


def closed_fact(chat: Chat, form: dict[str, Any], report: ReportState,
                now: float | None = None) -> dict[str, Any]:
    now = time.time() if now is None else now
    fact = _base(chat, now)
    indicators = list(dict.fromkeys([*report.indicators, *form.get("indicators", [])]))
    decision = report.decision or {}
    end = chat.ended_at or now
    fact.update(
        topics=form.get("topics") or list(chat.answers.topics),
        indicators=indicators,
        referrals=form.get("referrals", []),
        outcome=form.get("outcome") or default_outcome(chat),
        decision=decision.get("decision"),
        decision_to=decision.get("to"),
        answered=1,
        dropped=int(chat.ended_by == "timeout" and chat.flags.counselor_wrote),
        duration_bucket=stats_facts.duration_bucket(end - (chat.accepted_at or end)),
    )
    return fact


def abandoned_fact(chat: Chat, now: float | None = None) -> dict[str, Any]:
    """A chat that ended while it waited in the queue."""
    now = time.time() if now is None else now
    fact = _base(chat, now)
    fact.update(topics=list(chat.answers.topics), outcome=ABANDONED, answered=0)
    if chat.accepted_at is not None:  # taken once, returned to the queue, then left
        report = state_of(chat)
        fact.update(answered=1, outcome="visitor_left", indicators=report.indicators,
                    decision=(report.decision or {}).get("decision"),
                    decision_to=(report.decision or {}).get("to"))
    return fact


class FactWriter:
    """Writes facts (through the outbox) and hands the new fact's reference, its random
    outbox key, to the feedback box (in memory only).

    A chat that left the queue unanswered writes a fact only if its visitor waited at
    least `min_wait_s_unanswered` (`[stats]`): a fake chat that a script opens and
    drops must not grow the table or skew the figures (issue "Go-live security").
    """

    def __init__(self, outbox: Outbox, link: Linker,
                 min_wait_s_unanswered: float = 0.0) -> None:
        self.outbox = outbox
        self.link = link
        self.min_wait_s_unanswered = min_wait_s_unanswered

    async def closed(self, chat: Chat, form: dict[str, Any], report: ReportState) -> str:
        ref = await self.outbox.put("fact", fact_entry(closed_fact(chat, form, report)))
        await self.link(chat.chat_id, ref)
        return ref

    async def abandoned(self, chat: Chat) -> str | None:
        """The fact of a chat that ended in the queue (None: too short to count)."""
        if chat.accepted_at is None and waited_unanswered(chat) < self.min_wait_s_unanswered:
            return None
        return await self.outbox.put("fact", fact_entry(abandoned_fact(chat)))
