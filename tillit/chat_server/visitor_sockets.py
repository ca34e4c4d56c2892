"""Which chat each visitor socket of this process is in.

Built once at start-up and handed to both its users: the visitor namespace writes it
(a socket starts, resumes or leaves a chat) and the chat service's sweeper reads it
(a chat with a socket here has a visitor, whatever the store says).
"""

from __future__ import annotations

from collections.abc import Iterable


class VisitorSockets(dict[str, str]):
    """Socket.IO sid -> chat id, for the visitor sockets of this process only."""

    def chat_ids(self) -> Iterable[str]:
        return self.values()
