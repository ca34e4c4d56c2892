"""A chat as the server knows it: state and public keys, never text or private keys."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from typing import Any, ClassVar

QUEUED, ACTIVE, ENDED = "queued", "active", "ended"
VISITOR, COUNSELOR = "visitor", "counselor"
DIRECTION = {VISITOR: "v2c", COUNSELOR: "c2v"}
RETRY_MEMORY = 128  # envelopes per chat whose (epoch, dir, seq) a retry is checked against


@dataclass
class VisitorAnswers:
    """What the visitor answered on the start form, or later with `chat:update_meta`
    (docs/protocol.md): all optional. Staff see exactly these in the queue."""

    lang: str | None = None
    age_group: str | None = None
    gender: str | None = None
    role: str | None = None
    topics: list[str] = field(default_factory=list)
    danger_now: bool = False
    sector: str | None = None  # only for role "professional" (chats.py clears it otherwise)
    contact: str | None = None

    # Every answer may change while the chat waits, except "danger now" (start only).
    UPDATABLE: ClassVar[tuple[str, ...]] = (
        "lang", "age_group", "gender", "role", "topics", "sector", "contact")

    @classmethod
    def from_payload(cls, data: dict[str, Any]) -> VisitorAnswers:
        """From a checked payload (chat_server/schemas.py); a missing answer is None."""
        answers = cls(**{f.name: data.get(f.name) for f in fields(cls)})
        answers.topics = list(answers.topics or [])
        answers.danger_now = bool(answers.danger_now)
        return answers

    def update(self, data: dict[str, Any]) -> None:
        """The visitor's new answers replace the earlier ones (`chat:update_meta`)."""
        for name in self.UPDATABLE:
            setattr(self, name, data.get(name))
        self.topics = list(self.topics or [])

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class ServerFlags:
    """What the server derived or recorded about a chat; never set by the visitor."""

    child: bool = False  # the age group is a child's (settings: child_age_groups)
    acute: bool = False  # danger-now priority: an acute topic or reporting indicator
    topic_indicators: list[str] = field(default_factory=list)  # seeded from the topics
    # counselor_console/reporting.py's ReportState as a dict, once a counselor keeps one.
    report: dict[str, Any] | None = None
    returned: bool = False  # put back in the queue: goes ahead of others (queue_order.py)
    transferred: bool = False  # handed to a colleague who has not re-keyed yet
    counselor_wrote: bool = False  # for "dropped" in the statistics
    closing: bool = False  # the closing form is being saved
    end_reason: str | None = None  # the visitor's reason, e.g. "quick_exit"
    # A returning contact (chat:start with a mailbox, docs/protocol.md E12.9), and the
    # counselor it is offered to first while they are online.
    returning: bool = False
    prefer: str | None = None
    # The mailbox it came from (an assigned mailbox only), so that whichever process the
    # accept reaches gives the id and notes to that mailbox's counselor and no one else.
    # Lives with the chat's ephemeral state only: cleared when the chat ends, gone with
    # the chat's purge; never in a statistics fact, the audit log or a staff event.
    mailbox_id: str | None = None


_ANSWER_NAMES = frozenset(f.name for f in fields(VisitorAnswers))
_FLAG_NAMES = frozenset(f.name for f in fields(ServerFlags))
# Every key of the flat form (answers and flags never share a name).
META_KEYS = _ANSWER_NAMES | _FLAG_NAMES


def meta_fields(answers: VisitorAnswers, flags: ServerFlags) -> dict[str, Any]:
    """The one stored form of answers and flags, for both stores: one flat mapping, as
    the untyped `meta` dict was before 2026-12 (SQLite: one JSON column; Redis: one hash
    field each, so that a change writes only what changed)."""
    return {**asdict(answers), **asdict(flags)}


def meta_from_fields(data: dict[str, Any]) -> tuple[VisitorAnswers, ServerFlags]:
    """The inverse of `meta_fields`; keys it does not know are dropped."""
    answers = VisitorAnswers(**{k: v for k, v in data.items() if k in _ANSWER_NAMES})
    answers.topics = list(answers.topics or [])
    flags = ServerFlags(**{k: v for k, v in data.items() if k in _FLAG_NAMES})
    flags.topic_indicators = list(flags.topic_indicators or [])
    return answers, flags


def meta_to_json(answers: VisitorAnswers, flags: ServerFlags) -> str:
    return json.dumps(meta_fields(answers, flags), separators=(",", ":"))


def meta_from_json(text: str) -> tuple[VisitorAnswers, ServerFlags]:
    return meta_from_fields(json.loads(text))


@dataclass
class Chat:
    chat_id: str
    resume_hash: str
    visitor_pubkey: str
    answers: VisitorAnswers
    created_at: float
    state: str = QUEUED
    epoch: int = 0
    last_id: int = 0
    counselor: str | None = None
    counselor_name: str | None = None
    counselor_pubkey: str | None = None
    accepted_at: float | None = None
    ended_at: float | None = None
    ended_by: str | None = None
    flags: ServerFlags = field(default_factory=ServerFlags)
    # In memory only: when the visitor's socket went away, for the resume window.
    visitor_gone_since: float | None = field(default=None, compare=False)
    # In memory only: (epoch, dir, seq) -> id of the latest RETRY_MEMORY envelopes, so
    # that a retried send is not stored twice (see `remember_sent`).
    sent: dict[tuple[int, str, int], int] = field(default_factory=dict, compare=False)

    def columns(self) -> dict[str, Any]:
        """The stored fields other than answers and flags."""
        return {f.name: getattr(self, f.name) for f in fields(self)
                if f.name not in ("answers", "flags", "visitor_gone_since", "sent")}

    def to_row(self) -> dict[str, Any]:
        """The SQLite row: answers and flags together in `meta` (`meta_to_json`)."""
        return {**self.columns(), "meta": meta_to_json(self.answers, self.flags)}

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Chat:
        data = dict(row)
        data["answers"], data["flags"] = meta_from_json(data.pop("meta"))
        return cls(**data)

    def remember_sent(self, key: tuple[int, str, int], envelope_id: int) -> None:
        """Only recent envelopes are retried (a client resends what it has no ack for,
        a handful at most), and receivers drop a repeat anyway (docs/protocol.md section 2):
        the oldest entries are forgotten, so a long chat does not grow the process."""
        self.sent[key] = envelope_id
        while len(self.sent) > RETRY_MEMORY:
            del self.sent[next(iter(self.sent))]

    @property
    def is_child(self) -> bool:
        return self.flags.child
