"""The one refusal every layer raises: it becomes an error acknowledgement for the sender.

It lives at the bottom layer because validation, the lowest code that refuses input,
raises it; docs/protocol.md section 1 defines the codes.
"""

from __future__ import annotations


class ProtocolError(Exception):
    """A refusal that becomes `{"ok": false, "error": {...}}` for the sender only."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
