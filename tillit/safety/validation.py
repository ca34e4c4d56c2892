"""Payload validation for every Socket.IO event: types, sizes and vocabularies.

A validator takes the raw payload and returns a clean dict or raises
`ProtocolError("invalid_payload" | "too_large", ...)`, so a bad client gets a
clear code and nothing reaches the chat logic that was not checked.
"""

from __future__ import annotations

import base64
import re
from collections.abc import Callable, Iterable
from typing import Any

from cryptography.hazmat.primitives.asymmetric import ec

from tillit.safety.errors import ProtocolError

Check = Callable[[str, Any], Any]
_B64U = re.compile(r"[A-Za-z0-9_-]*")
MAX_SAFE_INT = 2**53 - 1
_MISSING = object()


def invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid_payload", message)


def b64u_length(text: str) -> int:
    """How many bytes unpadded base64url `text` holds; `ValueError` if it is not that.

    Checked without decoding: every message's ciphertext passes here, and the
    alphabet and the length are all that decoding would check.
    """
    if _B64U.fullmatch(text) is None or len(text) % 4 == 1:
        raise ValueError("not base64url")
    return len(text) * 3 // 4


def b64u_decode(text: str) -> bytes:
    """Decode base64url without padding, strictly."""
    b64u_length(text)
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def b64u(min_bytes: int = 0, max_chars: int | None = None, exact_bytes: int | None = None) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str):
            raise invalid(f"{name} must be a base64url string")
        if max_chars is not None and len(value) > max_chars:
            raise ProtocolError("too_large", f"{name} is longer than {max_chars} characters")
        try:
            size = b64u_length(value)
        except ValueError:
            raise invalid(f"{name} is not base64url") from None
        if exact_bytes is not None and size != exact_bytes:
            raise invalid(f"{name} must be {exact_bytes} bytes")
        if size < min_bytes:
            raise invalid(f"{name} is too short")
        return value

    return check


def pubkey(name: str, value: Any) -> str:
    """An uncompressed P-256 point, base64url: anything else could not be used by the peer."""
    b64u(exact_bytes=65, max_chars=100)(name, value)
    require_p256_point(name, b64u_decode(value), f"{name} must be an uncompressed point")
    return value


def require_p256_point(name: str, raw: bytes, not_uncompressed: str) -> None:
    """Raises `invalid_payload` unless `raw` is an uncompressed point on P-256 (chat keys
    and mailbox keys alike); `not_uncompressed` is the message when its first byte is not
    0x04."""
    if raw[0] != 0x04:
        raise invalid(not_uncompressed)
    try:
        ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
    except ValueError:
        raise invalid(f"{name} is not a point on P-256") from None


def integer(lo: int, hi: int) -> Check:
    def check(name: str, value: Any) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise invalid(f"{name} must be an integer")
        if not lo <= value <= hi:
            raise invalid(f"{name} must be between {lo} and {hi}")
        return value

    return check


def boolean(name: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise invalid(f"{name} must be true or false")
    return value


def token(max_chars: int) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value or len(value) > max_chars:
            raise invalid(f"{name} must be a non-empty string of at most {max_chars} characters")
        # fullmatch: `match` of a pattern that may match nothing accepts any string, and a
        # non-ASCII token then failed deep in the chat logic as `internal`.
        if _B64U.fullmatch(value) is None:
            raise invalid(f"{name} has characters it cannot have")
        return value

    return check


def text(max_chars: int) -> Check:
    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or not value.strip() or len(value) > max_chars:
            raise invalid(f"{name} must be a non-empty string of at most {max_chars} characters")
        return value

    return check


def one_of(allowed: Iterable[str]) -> Check:
    allowed_set = frozenset(allowed)

    def check(name: str, value: Any) -> str:
        if not isinstance(value, str) or value not in allowed_set:
            raise invalid(f"{name} must be one of: {', '.join(sorted(allowed_set))}")
        return value

    return check


def list_of(item: Check, max_items: int) -> Check:
    def check(name: str, value: Any) -> list[Any]:
        if not isinstance(value, list) or len(value) > max_items:
            raise invalid(f"{name} must be a list of at most {max_items} items")
        out = [item(f"{name}[]", entry) for entry in value]
        return list(dict.fromkeys(out))

    return check


def nullable(inner: Check) -> Check:
    def check(name: str, value: Any) -> Any:
        return None if value is None else inner(name, value)

    return check


def any_dict(max_keys: int) -> Check:
    def check(name: str, value: Any) -> dict[str, Any]:
        if not isinstance(value, dict) or len(value) > max_keys:
            raise invalid(f"{name} must be an object")
        return value

    return check


class Schema:
    """Fields an event takes: required ones, optional ones with defaults, nothing else."""

    def __init__(
        self,
        required: dict[str, Check] | None = None,
        optional: dict[str, tuple[Check, Any]] | None = None,
    ) -> None:
        self.required = required or {}
        self.optional = optional or {}

    def __call__(self, payload: Any) -> dict[str, Any]:
        if payload is None and not self.required:
            payload = {}
        if not isinstance(payload, dict):
            raise invalid("the payload must be a JSON object")
        unknown = set(payload) - set(self.required) - set(self.optional)
        if unknown:
            raise invalid(f"unknown field: {sorted(unknown)[0][:40]}")
        out: dict[str, Any] = {}
        for name, check in self.required.items():
            value = payload.get(name, _MISSING)
            if value is _MISSING:
                raise invalid(f"{name} is required")
            out[name] = check(name, value)
        for name, (check, default) in self.optional.items():
            value = payload.get(name, _MISSING)
            out[name] = default if value is _MISSING or value is None else check(name, value)
        return out
