"""Payloads of the console's own events (docs/protocol.md E6–E9), built from config/.

Kept apart from chat_server/schemas.py (the docs/protocol.md events) so that the workflow's
vocabularies have one home: counselor_console/workflow_config.py.
"""

from __future__ import annotations

from dataclasses import dataclass

from tillit.chat_server.schemas import CHAT_ID
from tillit.chat_server.settings import Settings
from tillit.counselor_console.workflow_config import Workflow
from tillit.safety.validation import (
    Check,
    Schema,
    boolean,
    invalid,
    list_of,
    nullable,
    one_of,
    pubkey,
    text,
)

USERNAME_OR_QUEUE = 64


def _username(name: str, value: object) -> str:
    if not isinstance(value, str) or not 0 < len(value) <= USERNAME_OR_QUEUE:
        raise invalid(f"{name} must be a username or 'queue'")
    return value


@dataclass(frozen=True)
class ConsoleSchemas:
    take_next: Schema
    transfer: Schema
    child: Schema
    informed: Schema
    indicators: Schema
    decision: Schema
    close_form: Schema
    note_add: Schema
    note_list: Schema


def build_console_schemas(settings: Settings, workflow: Workflow) -> ConsoleSchemas:
    indicator_ids = workflow.ids("indicators")
    topics = settings.vocab_ids("topics")
    resources = workflow.ids("resources")
    indicators: Check = list_of(one_of(indicator_ids), len(indicator_ids))
    max_note = settings.notes.max_chars
    return ConsoleSchemas(
        take_next=Schema(required={"pubkey": pubkey}),
        transfer=Schema(required={"chat_id": CHAT_ID, "to": _username}),
        child=Schema(required={"chat_id": CHAT_ID, "involved": boolean}),
        informed=Schema(required={"chat_id": CHAT_ID}),
        indicators=Schema(required={"chat_id": CHAT_ID, "indicators": indicators}),
        decision=Schema(
            required={"chat_id": CHAT_ID, "decision": one_of(workflow.ids("decisions"))},
            optional={
                "to": (nullable(one_of(workflow.ids("receivers"))), None),
                "reason": (nullable(one_of(workflow.ids("reasons"))), None),
                "channel": (nullable(one_of(workflow.ids("channels"))), None),
            },
        ),
        close_form=Schema(
            optional={
                "outcome": (one_of(workflow.ids("outcomes")), None),
                "topics": (list_of(one_of(topics), len(topics)), []),
                "indicators": (indicators, []),
                "referrals": (list_of(one_of(resources), len(resources)), []),
            },
        ),
        note_add=Schema(required={"chat_id": CHAT_ID, "text": text(max_note)}),
        note_list=Schema(optional={"chat_id": (CHAT_ID, None)}),
    )
