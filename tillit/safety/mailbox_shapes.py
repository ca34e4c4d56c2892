"""Pure shape checks for the mailbox events (docs/protocol.md E12): strict base64url,
locators, envelopes, key records and transfer entries. Each returns clean values or
raises `ProtocolError` (`invalid_payload`, `too_large`); none touches storage.
"""

from __future__ import annotations

import base64
import hashlib
import re
from typing import Any

from tillit.safety.errors import ProtocolError
from tillit.safety.validation import require_p256_point

_B64U = re.compile(r"[A-Za-z0-9_-]*")
MAX_CT_BYTES = 16_384
MAX_RECIPIENTS = 64
PBKDF2_MIN_ITERATIONS = 600_000
PBKDF2_MAX_ITERATIONS = 10_000_000
RECORD_FIELDS = frozenset({"v", "type", "kid", "pubkey", "kdf", "iterations", "salt", "iv",
                           "ct"})
ENVELOPE_FIELDS = frozenset({"v", "id", "dir", "iv", "ct", "keys"})
ENTRY_FIELDS = frozenset({"kid", "epk", "iv", "wk"})


def _invalid(message: str) -> ProtocolError:
    return ProtocolError("invalid_payload", message)


def strict_b64u(name: str, value: Any, max_chars: int = 30_000) -> bytes:
    """E12.1: only the alphabet, no padding, a length not 1 mod 4, canonical trailing bits."""
    if not isinstance(value, str) or len(value) > max_chars:
        raise _invalid(f"{name} must be a base64url string")
    if _B64U.fullmatch(value) is None or len(value) % 4 == 1:
        raise _invalid(f"{name} is not base64url")
    raw = base64.urlsafe_b64decode(value + "=" * (-len(value) % 4))
    if b64u_encode(raw) != value:
        raise _invalid(f"{name} is not canonical base64url")
    return raw


def b64u_encode(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def sized(name: str, value: Any, size: int) -> str:
    raw = strict_b64u(name, value, max_chars=(size * 4 + 2) // 3)
    if len(raw) != size:
        raise _invalid(f"{name} must be {size} bytes")
    return value


def public_key(name: str, value: Any) -> str:
    """A 65-byte uncompressed point of P-256, base64url."""
    raw = strict_b64u(name, value, max_chars=87)
    if len(raw) != 65:
        raise _invalid(f"{name} must be an uncompressed P-256 point")
    require_p256_point(name, raw, f"{name} must be an uncompressed P-256 point")
    return value


def key_id(pubkey: str) -> str:
    """E12.1: base64url of the first 16 bytes of SHA-256 of the 65-byte point."""
    raw = base64.urlsafe_b64decode(pubkey + "=" * (-len(pubkey) % 4))
    return b64u_encode(hashlib.sha256(raw).digest()[:16])


def locator_to_id(name: str, value: Any) -> str:
    """The mailbox id of a 32-byte locator: base64url(SHA-256(locator)) (E12.3). The
    locator itself goes no further than this function's caller."""
    raw = strict_b64u(name, value, max_chars=43)
    if len(raw) != 32:
        raise _invalid(f"{name} must be 32 bytes")
    return b64u_encode(hashlib.sha256(raw).digest())


def mailbox_id(name: str, value: Any) -> str:
    return sized(name, value, 32)


def wrapped_key(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != {"iv", "ct"}:
        raise _invalid(f"{name} must be {{iv, ct}}")
    sized(f"{name}.iv", value["iv"], 12)
    if not 64 <= len(strict_b64u(f"{name}.ct", value["ct"], max_chars=700)) <= 512:
        raise _invalid(f"{name}.ct must be 64 to 512 bytes")
    return {"iv": value["iv"], "ct": value["ct"]}


def entry(name: str, value: Any) -> dict[str, str]:
    if not isinstance(value, dict) or set(value) != ENTRY_FIELDS:
        raise _invalid(f"{name} must be {{kid, epk, iv, wk}}")
    sized(f"{name}.kid", value["kid"], 16)
    public_key(f"{name}.epk", value["epk"])
    sized(f"{name}.iv", value["iv"], 12)
    sized(f"{name}.wk", value["wk"], 48)
    return {k: value[k] for k in ("kid", "epk", "iv", "wk")}


def envelope(name: str, value: Any, direction: str) -> dict[str, Any]:
    """A client's envelope (E12.6) of the direction the event allows."""
    if not isinstance(value, dict) or set(value) != ENVELOPE_FIELDS:
        raise _invalid(f"{name} must have exactly v, id, dir, iv, ct, keys")
    if value["v"] != 1 or isinstance(value["v"], bool):
        raise _invalid(f"{name}.v must be 1")
    if value["dir"] != direction:
        raise _invalid(f"{name}.dir must be {direction} for this event")
    sized(f"{name}.id", value["id"], 16)
    sized(f"{name}.iv", value["iv"], 12)
    ct = value["ct"]
    if isinstance(ct, str) and len(ct) > (MAX_CT_BYTES * 4 + 2) // 3:
        raise ProtocolError("too_large", f"{name}.ct is larger than {MAX_CT_BYTES} bytes")
    if len(strict_b64u(f"{name}.ct", ct, max_chars=30_000)) < 16:
        raise _invalid(f"{name}.ct is too short")
    keys = value["keys"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_RECIPIENTS:
        raise _invalid(f"{name}.keys must hold 1 to {MAX_RECIPIENTS} entries")
    clean = [entry(f"{name}.keys[]", e) for e in keys]
    if len({e["kid"] for e in clean}) != len(clean):
        raise _invalid(f"{name}.keys names a kid twice")
    return {"v": 1, "id": value["id"], "dir": direction, "iv": value["iv"], "ct": ct,
            "keys": clean}


def key_record(name: str, value: Any, key_type: str = "counselor-key") -> dict[str, Any]:
    """A password-wrapped key record (E12.5), refused before any use if anything differs."""
    if not isinstance(value, dict) or set(value) != RECORD_FIELDS:
        raise _invalid(f"{name} must have exactly the fields of a key record")
    if value["v"] != 1 or isinstance(value["v"], bool) or value["type"] != key_type \
            or value["kdf"] != "pbkdf2-sha256":
        raise _invalid(f"{name}: version, type or kdf differs")
    iterations = value["iterations"]
    if type(iterations) is not int or not (
            PBKDF2_MIN_ITERATIONS <= iterations <= PBKDF2_MAX_ITERATIONS):
        raise _invalid(f"{name}.iterations must be {PBKDF2_MIN_ITERATIONS} to "
                       f"{PBKDF2_MAX_ITERATIONS}")
    public_key(f"{name}.pubkey", value["pubkey"])
    if value["kid"] != key_id(value["pubkey"]):
        raise _invalid(f"{name}.kid is not the key id of its pubkey")
    sized(f"{name}.salt", value["salt"], 16)
    sized(f"{name}.iv", value["iv"], 12)
    if not 64 <= len(strict_b64u(f"{name}.ct", value["ct"], max_chars=700)) <= 512:
        raise _invalid(f"{name}.ct must be 64 to 512 bytes")
    return dict(value)


def transfer_entries(name: str, value: Any, max_items: int) -> list[dict[str, Any]]:
    """`[{"id": message_id, "entry": {kid, epk, iv, wk}}]`, each id once."""
    if not isinstance(value, list) or len(value) > max_items:
        raise _invalid(f"{name} must be a list of at most {max_items} items")
    out = []
    for item in value:
        if not isinstance(item, dict) or set(item) != {"id", "entry"}:
            raise _invalid(f"{name}[] must be {{id, entry}}")
        out.append({"id": sized(f"{name}[].id", item["id"], 16),
                    "entry": entry(f"{name}[].entry", item["entry"])})
    if len({i["id"] for i in out}) != len(out):
        raise _invalid(f"{name} names a message twice")
    return out


def exact_fields(name: str, value: Any, required: set[str],
                 optional: set[str] = frozenset()) -> dict[str, Any]:  # type: ignore[assignment]
    if not isinstance(value, dict) or not required <= set(value) <= required | optional:
        raise _invalid(f"{name} must have the fields {', '.join(sorted(required))}")
    return value
