"""A chat as the server knows it: state and public keys, never text or private keys."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any

QUEUED, ACTIVE, ENDED = "queued", "active", "ended"
VISITOR, COUNSELOR = "visitor", "counselor"
DIRECTION = {VISITOR: "v2c", COUNSELOR: "c2v"}
RETRY_MEMORY = 128  # envelopes per chat whose (epoch, dir, seq) a retry is checked against


@dataclass
class Chat:
    chat_id: str
    resume_hash: str
    visitor_pubkey: str
    meta: dict[str, Any]
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
    # In memory only: when the visitor's socket went away, for the resume window.
    visitor_gone_since: float | None = field(default=None, compare=False)
    # In memory only: (epoch, dir, seq) -> id of the latest RETRY_MEMORY envelopes, so
    # that a retried send is not stored twice (see `remember_sent`).
    sent: dict[tuple[int, str, int], int] = field(default_factory=dict, compare=False)

    def to_row(self) -> dict[str, Any]:
        row = asdict(self)
        row.pop("visitor_gone_since")
        row.pop("sent")
        row["meta"] = json.dumps(self.meta, separators=(",", ":"))
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Chat:
        data = dict(row)
        data["meta"] = json.loads(data["meta"])
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
        return bool(self.meta.get("child"))
