"""Acknowledgements as docs/protocol.md section 1 defines them (refusals: safety/errors.py)."""

from __future__ import annotations

from typing import Any


def ok(**fields: Any) -> dict[str, Any]:
    return {"ok": True, **fields}


def error(code: str, message: str) -> dict[str, Any]:
    return {"ok": False, "error": {"code": code, "message": message}}
