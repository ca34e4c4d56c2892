"""The payload of every event, as validators built from config/ vocabularies."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from tillit.chat_server.settings import Settings
from tillit.safety.proof_of_work import MAX_CHALLENGE_CHARS, MAX_NONCE_DIGITS
from tillit.safety.validation import (
    MAX_SAFE_INT,
    Schema,
    any_dict,
    b64u,
    boolean,
    integer,
    invalid,
    list_of,
    one_of,
    pubkey,
    token,
)

CHAT_ID = token(64)


def pow_solution(name: str, value: Any) -> dict[str, Any]:
    """`{"challenge", "nonce"}`, both short strings (checked in full by the StartGuard)."""
    if not isinstance(value, dict) or set(value) != {"challenge", "nonce"}:
        raise invalid(f"{name} must be {{challenge, nonce}}")
    for key, limit in (("challenge", MAX_CHALLENGE_CHARS), ("nonce", MAX_NONCE_DIGITS)):
        if not isinstance(value[key], str) or not 0 < len(value[key]) <= limit:
            raise invalid(f"{name}.{key} must be a string of at most {limit} characters")
    return {"challenge": value["challenge"], "nonce": value["nonce"]}


@dataclass(frozen=True)
class Schemas:
    chat_start: Schema
    chat_update_meta: Schema
    chat_resume: Schema
    msg_send: Schema
    typing: Schema
    key_update: Schema
    chat_end: Schema
    feedback: Schema
    empty: Schema
    chat_only: Schema
    chat_accept: Schema
    chat_rejoin: Schema
    chat_close: Schema


def build_schemas(settings: Settings) -> Schemas:
    max_ct = settings.chat.max_ct_bytes
    topics = settings.vocab_ids("topics")
    # The visitor's optional answers: at chat:start, or later with chat:update_meta while
    # the chat waits (docs/protocol.md). `sector` only counts with role = "professional".
    answers = {
        "lang": (one_of(settings.vocab_ids("languages")), None),
        "age_group": (one_of(settings.vocab_ids("age_groups")), None),
        "gender": (one_of(settings.vocab_ids("genders")), None),
        "role": (one_of(settings.vocab_ids("roles")), None),
        "topics": (list_of(one_of(topics), len(topics)), []),
        "sector": (one_of(settings.vocab_ids("sectors")), None),
        "contact": (one_of(settings.vocab_ids("contact")), None),
    }
    return Schemas(
        chat_start=Schema(
            required={"pubkey": pubkey},
            optional={
                **answers,
                "danger_now": (boolean, False),
                # docs/protocol.md "Proof of work": refused with pow_required without it
                "pow": (pow_solution, None),
                # E12.9: the locator of a mailbox this socket opened (a returning contact)
                "mailbox": (token(43), None),
            },
        ),
        chat_update_meta=Schema(required={"chat_id": CHAT_ID}, optional=answers),
        chat_resume=Schema(
            required={"resume_token": token(64)},
            optional={"after_id": (integer(0, MAX_SAFE_INT), 0)},
        ),
        msg_send=Schema(
            required={
                "chat_id": CHAT_ID,
                "epoch": integer(1, MAX_SAFE_INT),
                "seq": integer(0, MAX_SAFE_INT),
                "nonce": b64u(exact_bytes=12, max_chars=16),
                "ct": b64u(min_bytes=16, max_chars=max_ct),
            },
        ),
        typing=Schema(required={"chat_id": CHAT_ID, "on": boolean}),
        key_update=Schema(required={"chat_id": CHAT_ID, "pubkey": pubkey}),
        chat_end=Schema(
            required={"chat_id": CHAT_ID},
            optional={"reason": (one_of(["quick_exit"]), None)},
        ),
        feedback=Schema(
            required={"chat_id": CHAT_ID},
            optional={
                "helped": (one_of(["yes", "partly", "no"]), None),
                "score": (integer(1, 5), None),
            },
        ),
        empty=Schema(),
        chat_only=Schema(required={"chat_id": CHAT_ID}),
        chat_accept=Schema(required={"chat_id": CHAT_ID, "pubkey": pubkey}),
        chat_rejoin=Schema(
            required={"chat_id": CHAT_ID, "pubkey": pubkey},
            optional={"after_id": (integer(0, MAX_SAFE_INT), 0)},
        ),
        chat_close=Schema(
            required={"chat_id": CHAT_ID},
            optional={"form": (any_dict(32), {})},
        ),
    )
