"""Acknowledgements as docs/protocol.md section 1 defines them."""

from __future__ import annotations

from typing import Any


class ProtocolError(Exception):
    """A refusal that becomes `{"ok": false, "error": {...}}` for the sender only."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}
