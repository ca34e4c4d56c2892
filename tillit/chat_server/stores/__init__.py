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
    """A shared store's append found the message not allowed; `code` says why
    (`not_found`, `forbidden`, `conflict` or `invalid_payload`, docs/protocol.md section 1)."""

    def __init__(self, code: str) -> None:
        super().__init__(code)
        self.code = code


class EphemeralStore(Protocol):
    """Chat rows and ciphertext envelopes; every write is durable when it returns.

    `shared` False (SQLite): one process, whose `ChatService` dict is the chat state and
    writes through to the store. `shared` True (Redis): the store is the chat state and
    several processes read it per request; such a store also offers `load_chat`,
    `all_chats`, `queued_chats`, `queue_size`, `chat_id_for_resume`, `mark_seen`, `seen`,
    `forget_seen`, `mark_visitors_seen`, `visitors_seen`, `try_lock`, `rekey` (key and
    epoch in one step) and `append_checked`, which checks the sender and the chat's
    state in the same atomic step that takes the id (see RedisStore).
    """

    shared: bool

    async def open(self) -> None: ...

    async def close(self) -> None: ...

    async def save_chat(self, chat: Chat) -> None: ...

    async def load_chats(self) -> list[Chat]: ...

    async def add_envelope(self, chat_id: str, envelope: dict[str, Any]) -> None: ...

    async def append_envelope(self, chat: Chat, envelope: dict[str, Any]) -> tuple[int, bool]:
        """The chat's next id for `envelope`, stored; a retry gets its first id and False."""
        ...

    async def claim(self, chat: Chat, expected_state: str) -> bool:
        """Save `chat` only if its stored state is still `expected_state`."""
        ...

    async def mark_visitor_gone(self, chat: Chat, since: float | None) -> None: ...

    async def envelopes_after(self, chat_id: str, after_id: int) -> list[dict[str, Any]]: ...

    async def purge_envelopes(self, chat_id: str) -> None: ...

    async def delete_chat(self, chat_id: str) -> None: ...

    # Optional: `async def healthy(self) -> bool`, read by /healthz (a store without it
    # is taken to be healthy whenever the process runs).
