"""Where ephemeral chat state and ciphertext live: SQLite (default) or Redis."""

from __future__ import annotations

from typing import Any, Protocol

from tillit.chat_server.model import Chat


class StoreUnavailable(Exception):
    """The store cannot be reached (a Redis outage): the sender gets `unavailable`.

    Raised instead of a backend's own errors, so that callers need not know which
    backend runs and a restarted Redis never becomes an `internal` error or a crash.
    """


class SendRefused(Exception):
    """A store's append found the message not allowed; `code` says why
    (`not_found`, `forbidden`, `conflict` or `invalid_payload`, docs/protocol.md section 1)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class EphemeralStore(Protocol):
    """The chat state and ciphertext, as `ChatService` uses them; every write is durable
    when it returns. The one interface of both stores, so the service never asks which
    store runs (docs/architecture.md, "Where the chat state lives"):

    - SQLite (`SqliteStore`, one process): the store keeps the chats in a dict, which is
      the state, and writes every change through to its file.
    - Redis (`RedisStore`, several processes): Redis is the state; each call reads it,
      and a `Chat` returned is a copy that `save_chat` writes back field by field.

    Each store enforces the send rule (chat_server/send_rule.py) atomically in
    `append_checked`, takes epochs in `rekey` and queue places in `admit_to_queue` in
    one step.
    """

    # Several processes share this store. Read only by the composition root (which then
    # adds a cross-process socket registry); the chat service never reads it.
    shared: bool

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def recover(self, now: float) -> None:
        """Take back what the process held when it stopped (SQLite: its chats, every
        visitor gone since `now`); nothing to do where the state outlives the process."""
        ...

    # -- chats ---------------------------------------------------------------------------

    async def load_chat(self, chat_id: str) -> Chat | None: ...

    async def all_chats(self) -> list[Chat]: ...

    async def chats_held_by(self, username: str) -> list[Chat]:
        """The chats whose counselor is `username` (any state), without reading every chat."""
        ...

    async def active_count(self, username: str) -> int:
        """How many active chats `username` holds (the limit on parallel chats), without
        reading the chats themselves."""
        ...

    async def queued_chats(self) -> list[Chat]:
        """The queued chats, in no particular order."""
        ...

    async def queue_size(self) -> int: ...

    async def queue_place(self, chat: Chat) -> int | None:
        """`chat`'s 1-based place in the urgency order (queue_order.urgency_key), 0 if it
        is not queued, without handing every queued chat to the caller (asked at every
        `chat:start`); None when the store cannot tell (the caller sorts the queue)."""
        ...

    async def chat_id_for_resume(self, resume_hash: str) -> str | None: ...

    async def admit_to_queue(self, chat: Chat, cap: int) -> bool:
        """Hold a place for a new chat if fewer than `cap` wait (count and add in one step)."""
        ...

    async def save_chat(self, chat: Chat) -> None: ...

    async def claim(self, chat: Chat, expected_state: str) -> bool:
        """Save `chat` only if its stored state is still `expected_state`."""
        ...

    async def rekey(self, chat: Chat, side: str, pubkey: str) -> bool:
        """`side`'s new key and the next epoch in one step; False if the chat is not active."""
        ...

    async def mark_visitor_gone(self, chat: Chat, since: float | None) -> None: ...

    async def delete_chat(self, chat_id: str) -> None: ...

    async def load_chats(self) -> list[Chat]:
        """Every chat as stored, read afresh (start-up, tests)."""
        ...

    # -- envelopes -----------------------------------------------------------------------

    async def append_checked(
        self, chat_id: str, envelope: dict[str, Any], holder: str | None
    ) -> tuple[int, bool]:
        """The chat's next id for `envelope`, stored, if the send rule allows it (checked
        in the same atomic step); a retried (epoch, dir, seq) gets its first id and False.
        Raises `SendRefused` with the rule's code."""
        ...

    async def append_envelope(self, chat: Chat, envelope: dict[str, Any]) -> tuple[int, bool]:
        """`append_checked` without the rule (the visitor's side of `chat`)."""
        ...

    async def add_envelope(self, chat_id: str, envelope: dict[str, Any]) -> None: ...

    async def envelopes_after(self, chat_id: str, after_id: int) -> list[dict[str, Any]]: ...

    async def purge_envelopes(self, chat_id: str) -> None: ...

    # -- presence stamps (chat_server/presence.py) ----------------------------------------

    async def mark_seen(self, usernames: list[str], now: float) -> None: ...

    async def seen(self) -> dict[str, float]: ...

    async def forget_seen(self, username: str) -> None: ...

    async def mark_visitors_seen(self, chat_ids: list[str], now: float) -> None: ...

    async def visitors_seen(self) -> dict[str, float]: ...

    async def try_lock(self, name: str, ttl_s: float) -> bool:
        """True for the one process that holds `name` for the next `ttl_s` seconds."""
        ...

    # Optional: `async def healthy(self) -> bool`, read by /healthz (a store without it
    # is taken to be healthy whenever the process runs).
