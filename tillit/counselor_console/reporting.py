"""The mandatory-reporting workflow of one chat, as a state machine the server enforces.

DOMAIN.md, "The duty to report": a child is involved when the age group is under 18 or
unknown, or when the counselor says so; a child plus any concern indicator makes a
reporting decision required, and the chat cannot be closed until one is recorded.

The state lives in the chat's `meta["report"]` (categories only), so it is kept by the
ephemeral store with the chat and forgotten with it. Every transition is checked here
and nowhere else; the namespace only validates payloads and audits.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from tillit.chat_server.model import Chat
from tillit.counselor_console.workflow_config import Workflow
from tillit.safety.errors import ProtocolError


@dataclass
class ReportState:
    child_auto: bool
    child_marked: bool = False
    informed: bool = False
    indicators: list[str] = field(default_factory=list)
    decision: dict[str, Any] | None = None

    @property
    def child_involved(self) -> bool:
        return self.child_auto or self.child_marked

    def decision_required(self, extra_indicators: list[str] | None = None) -> bool:
        return self.child_involved and bool(self.indicators or extra_indicators)

    def summary(self, workflow: Workflow) -> dict[str, Any]:
        """What the console shows (after a reload too)."""
        return {
            "child": self.child_involved,
            "child_auto": self.child_auto,
            "informed": self.informed,
            "indicators": list(self.indicators),
            "acute": any(i in workflow.acute_ids for i in self.indicators),
            "decision": dict(self.decision) if self.decision else None,
            "decision_required": self.decision_required(),
        }


def state_of(chat: Chat) -> ReportState:
    raw = chat.flags.report
    if isinstance(raw, dict):
        return ReportState(**raw)
    # A topic the visitor chose may mark an indicator from the start (self-harm).
    return ReportState(child_auto=chat.flags.child,
                       indicators=list(chat.flags.topic_indicators))


def save(chat: Chat, state: ReportState) -> None:
    chat.flags.report = asdict(state)


def set_child(chat: Chat, involved: bool) -> ReportState:
    state = state_of(chat)
    if not involved and state.child_auto:
        raise ProtocolError(
            "conflict", "the visitor's age group makes this a child's chat; "
            "record the decision 'no_report' with reason 'visitor_is_adult' if they are not",
        )
    state.child_marked = involved
    save(chat, state)
    return state


def set_informed(chat: Chat) -> ReportState:
    state = state_of(chat)
    state.informed = True
    save(chat, state)
    return state


def set_indicators(
    chat: Chat, indicators: list[str], acute_ids: frozenset[str] = frozenset()
) -> ReportState:
    """Mark the indicators; an acute one gives the chat the queue priority of danger now
    (`chat.flags.acute`, read by chat_server/queue_order.py) should it go back to the queue."""
    state = state_of(chat)
    state.indicators = list(dict.fromkeys(indicators))
    save(chat, state)
    chat.flags.acute = any(i in acute_ids for i in state.indicators)
    return state


def record_decision(
    chat: Chat,
    workflow: Workflow,
    decision: str,
    to: str | None,
    reason: str | None,
    channel: str | None = None,
) -> ReportState:
    """Record (or correct) the decision; its kind decides which of `to`/`reason` it needs."""
    rule = workflow.decision(decision)
    _check_part("to", to, rule.get("to", "optional"))
    _check_part("reason", reason, rule.get("reason", "optional"))
    if channel is not None and decision != "report_made":
        raise ProtocolError("invalid_payload", "channel goes only with report_made")
    state = state_of(chat)
    state.decision = {"decision": decision, "to": to, "reason": reason, "channel": channel,
                      "informed": state.informed}
    save(chat, state)
    return state


def _check_part(name: str, value: str | None, rule: str) -> None:
    if rule == "required" and value is None:
        raise ProtocolError("invalid_payload", f"this decision needs {name}")
    if rule == "none" and value is not None:
        raise ProtocolError("invalid_payload", f"this decision takes no {name}")


def check_close(chat: Chat, form_indicators: list[str]) -> ReportState:
    """Refuse the close while a child is involved, an indicator is marked and no decision."""
    state = state_of(chat)
    if state.decision_required(form_indicators) and state.decision is None:
        raise ProtocolError(
            "conflict", "a child is involved and a concern is marked: "
            "record a reporting decision before closing",
        )
    return state
