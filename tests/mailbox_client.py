"""An independent Python implementation of the mailbox cryptography (docs/protocol.md E12).

Written from docs/protocol.md alone, with `cryptography` only and without importing
anything from `tillit` or from the browser code, so that the tests check the browser's
`tillit/static/mailbox-crypto.js` and the server against the contract, not against
themselves. Pure functions, no I/O; the Socket.IO side lives with the other clients.

What it covers: the return code (generation, display form, normalisation), the values
derived from it (locator, mailbox id, wrapping key), the mailbox key pair wrapped under
the code, long-term keys wrapped under a password (counselors, the team recovery key),
and messages sealed for N recipients with ECIES (seal, open, rewrap for a colleague).
Every random input can be fixed by the caller, which is what the test vectors do.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.pbkdf2 import PBKDF2HMAC

Direction = Literal["v2c", "c2v"]
KeyType = Literal["counselor-key", "team-key"]

LABEL = "tillit-mailbox-v1"
VERSION = 1
CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U
CODE_BYTES = 10  # 80 bits
CODE_SYMBOLS = 16
PBKDF2_ITERATIONS = 600_000
PBKDF2_MIN_ITERATIONS = 600_000
PBKDF2_MAX_ITERATIONS = 10_000_000
MAX_TEXT_CHARS = 4000
MAX_CT_BYTES = 16_384  # body ciphertext with its tag
PAD_BLOCK = 256
MAX_RECIPIENTS = 64

# Characters dropped from a typed code: spaces, tabs, line breaks, no-break space, and
# hyphens and dashes that phones and word processors put in place of "-".
_CODE_SEPARATORS = frozenset(" \t\r\n\u00a0-\u2010\u2011\u2012\u2013\u2014\u2015\u2212")
_CODE_ALIASES = {"I": "1", "L": "1", "O": "0"}
_B64U = re.compile(r"^[A-Za-z0-9_-]*$")


# --------------------------------------------------------------------------- encoding


def b64u_encode(data: bytes) -> str:
    """base64url without padding."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str, length: int | None = None) -> bytes:
    """Strict base64url without padding; `length` pins the decoded size."""
    if not isinstance(text, str) or not _B64U.match(text) or len(text) % 4 == 1:
        raise ValueError("not base64url")
    try:
        raw = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except binascii.Error as exc:
        raise ValueError("not base64url") from exc
    if b64u_encode(raw) != text:
        raise ValueError("not canonical base64url")
    if length is not None and len(raw) != length:
        raise ValueError(f"expected {length} bytes")
    return raw


# --------------------------------------------------------------------------- the code


class CodeFormatError(ValueError):
    """A typed code that is not 16 symbols of Crockford base32."""


def generate_code() -> bytes:
    """80 random bits: the value of a new return code."""
    return os.urandom(CODE_BYTES)


def format_code(value: bytes) -> str:
    """The display form: 16 symbols, most significant 5 bits first, `XXXX-XXXX-XXXX-XXXX`."""
    if len(value) != CODE_BYTES:
        raise ValueError("a code is 10 bytes")
    n = int.from_bytes(value, "big")
    symbols = "".join(CODE_ALPHABET[(n >> (5 * (15 - i))) & 31] for i in range(CODE_SYMBOLS))
    return "-".join(symbols[i : i + 4] for i in range(0, CODE_SYMBOLS, 4))


def parse_code(text: str) -> bytes:
    """Normalise a typed code and return its 10 bytes; `CodeFormatError` if it is none."""
    if not isinstance(text, str):
        raise CodeFormatError("not text")
    n, count = 0, 0
    for ch in text:
        if ch in _CODE_SEPARATORS:
            continue
        if "a" <= ch <= "z":
            ch = chr(ord(ch) - 32)
        ch = _CODE_ALIASES.get(ch, ch)
        index = CODE_ALPHABET.find(ch) if len(ch) == 1 else -1
        if index < 0:
            raise CodeFormatError("not a code symbol")
        n = (n << 5) | index
        count += 1
        if count > CODE_SYMBOLS:
            raise CodeFormatError("too long")
    if count != CODE_SYMBOLS:
        raise CodeFormatError("too short")
    return n.to_bytes(CODE_BYTES, "big")


# --------------------------------------------------------------------------- derivation


@dataclass(frozen=True)
class MailboxSecrets:
    """What a code gives: the locator (sent to the server), the mailbox id (what the
    server stores: SHA-256 of the locator) and the key that wraps the mailbox's key."""

    locator: bytes
    mailbox_id: str
    wrap_key: bytes

    @property
    def locator_b64(self) -> str:
        return b64u_encode(self.locator)


def _hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def mailbox_id_of(locator: bytes) -> str:
    """The server's handle: base64url(SHA-256(locator)), 43 characters."""
    return b64u_encode(hashlib.sha256(locator).digest())


def derive(code: bytes) -> MailboxSecrets:
    """HKDF-SHA256 from the code's 10 bytes, salt `tillit-mailbox-v1`, two `info`s."""
    if len(code) != CODE_BYTES:
        raise ValueError("a code is 10 bytes")
    salt = LABEL.encode()
    locator = _hkdf(code, salt, b"locator")
    wrap_key = _hkdf(code, salt, b"key-wrap")
    return MailboxSecrets(locator, mailbox_id_of(locator), wrap_key)


# --------------------------------------------------------------------------- keys


def generate_key_pair() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def public_raw(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> bytes:
    pub = key.public_key() if isinstance(key, ec.EllipticCurvePrivateKey) else key
    return pub.public_bytes(
        serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
    )


def encode_public_key(key: ec.EllipticCurvePrivateKey | ec.EllipticCurvePublicKey) -> str:
    """Uncompressed point, 65 bytes, base64url (87 characters)."""
    return b64u_encode(public_raw(key))


def decode_public_key(text: str) -> ec.EllipticCurvePublicKey:
    raw = b64u_decode(text, 65)
    if raw[0] != 0x04:
        raise ValueError("not an uncompressed point")
    return ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)


def key_id(pubkey: str) -> str:
    """base64url of the first 16 bytes of SHA-256 of the 65-byte point (22 characters)."""
    return b64u_encode(hashlib.sha256(b64u_decode(pubkey, 65)).digest()[:16])


def pkcs8_of(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.DER,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_pkcs8(der: bytes, expected_pubkey: str | None) -> ec.EllipticCurvePrivateKey:
    key = serialization.load_der_private_key(der, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey) or key.curve.name != "secp256r1":
        raise ValueError("not a P-256 private key")
    if expected_pubkey is not None and encode_public_key(key) != expected_pubkey:
        raise ValueError("the private key does not match the public key")
    return key


def mailbox_key_ad(mailbox_id: str) -> bytes:
    return f"{LABEL}|mailbox-key|{mailbox_id}".encode()


def wrap_mailbox_key(
    key: ec.EllipticCurvePrivateKey, secrets: MailboxSecrets, iv: bytes | None = None
) -> dict[str, str]:
    """`{"iv", "ct"}`: the PKCS#8 private key under the code's wrapping key."""
    iv = iv if iv is not None else os.urandom(12)
    ct = AESGCM(secrets.wrap_key).encrypt(iv, pkcs8_of(key), mailbox_key_ad(secrets.mailbox_id))
    return {"iv": b64u_encode(iv), "ct": b64u_encode(ct)}


def unwrap_mailbox_key(
    wrapped: dict[str, str], secrets: MailboxSecrets, pubkey: str
) -> ec.EllipticCurvePrivateKey:
    """The mailbox's private key; InvalidTag for a wrong code or a changed blob."""
    der = AESGCM(secrets.wrap_key).decrypt(
        b64u_decode(wrapped["iv"], 12), b64u_decode(wrapped["ct"]),
        mailbox_key_ad(secrets.mailbox_id),
    )
    return _load_pkcs8(der, pubkey)


def password_key(password: str, salt: bytes, iterations: int) -> bytes:
    """PBKDF2-HMAC-SHA256 over the password's UTF-8, 32 bytes."""
    return PBKDF2HMAC(
        algorithm=hashes.SHA256(), length=32, salt=salt, iterations=iterations
    ).derive(password.encode("utf-8"))


def password_record_ad(key_type: KeyType, kid: str) -> bytes:
    return f"{LABEL}|{key_type}|{kid}".encode()


def wrap_with_password(
    key: ec.EllipticCurvePrivateKey,
    password: str,
    key_type: KeyType = "counselor-key",
    *,
    salt: bytes | None = None,
    iv: bytes | None = None,
    iterations: int = PBKDF2_ITERATIONS,
) -> dict[str, Any]:
    """A password-wrapped key record (a counselor's key, or the team key's export)."""
    if not PBKDF2_MIN_ITERATIONS <= iterations <= PBKDF2_MAX_ITERATIONS:
        raise ValueError("iterations")
    salt = salt if salt is not None else os.urandom(16)
    iv = iv if iv is not None else os.urandom(12)
    pubkey = encode_public_key(key)
    kid = key_id(pubkey)
    wrapping = password_key(password, salt, iterations)
    ct = AESGCM(wrapping).encrypt(iv, pkcs8_of(key), password_record_ad(key_type, kid))
    return {
        "v": VERSION, "type": key_type, "kid": kid, "pubkey": pubkey,
        "kdf": "pbkdf2-sha256", "iterations": iterations,
        "salt": b64u_encode(salt), "iv": b64u_encode(iv), "ct": b64u_encode(ct),
    }


def check_password_record(record: dict[str, Any], key_type: KeyType) -> None:
    """Raise ValueError unless `record` has exactly the fields and sizes of E12."""
    expected = {"v", "type", "kid", "pubkey", "kdf", "iterations", "salt", "iv", "ct"}
    if not isinstance(record, dict) or set(record) != expected:
        raise ValueError("fields")
    if record["v"] != VERSION or record["type"] != key_type or record["kdf"] != "pbkdf2-sha256":
        raise ValueError("version, type or kdf")
    iterations = record["iterations"]
    if type(iterations) is not int or not (
        PBKDF2_MIN_ITERATIONS <= iterations <= PBKDF2_MAX_ITERATIONS
    ):
        raise ValueError("iterations")
    decode_public_key(record["pubkey"])
    if record["kid"] != key_id(record["pubkey"]):
        raise ValueError("kid")
    b64u_decode(record["salt"], 16)
    b64u_decode(record["iv"], 12)
    if not 64 <= len(b64u_decode(record["ct"])) <= 512:
        raise ValueError("ct size")


def unwrap_with_password(
    record: dict[str, Any], password: str, key_type: KeyType = "counselor-key"
) -> ec.EllipticCurvePrivateKey:
    """The private key of a record; InvalidTag for a wrong password."""
    check_password_record(record, key_type)
    wrapping = password_key(password, b64u_decode(record["salt"]), record["iterations"])
    der = AESGCM(wrapping).decrypt(
        b64u_decode(record["iv"]), b64u_decode(record["ct"]),
        password_record_ad(key_type, record["kid"]),
    )
    return _load_pkcs8(der, record["pubkey"])


def rewrap_with_password(
    record: dict[str, Any], old_password: str, new_password: str,
    key_type: KeyType = "counselor-key",
) -> dict[str, Any]:
    """The same key pair under a new password: fresh salt and IV."""
    key = unwrap_with_password(record, old_password, key_type)
    return wrap_with_password(key, new_password, key_type, iterations=record["iterations"])


# --------------------------------------------------------------------------- messages


def body_ad(mailbox_id: str, direction: Direction, message_id: str) -> bytes:
    return f"{LABEL}|body|{mailbox_id}|{direction}|{message_id}".encode()


def entry_ad(mailbox_id: str, message_id: str, kid: str) -> bytes:
    return f"{LABEL}|wrap|{mailbox_id}|{message_id}|{kid}".encode()


def ecies_key(shared: bytes, epk_raw: bytes, recipient_raw: bytes) -> bytes:
    """HKDF-SHA256(ECDH secret, salt = epk ‖ recipient point, info `tillit-mailbox-v1|wrap`)."""
    return _hkdf(shared, epk_raw + recipient_raw, f"{LABEL}|wrap".encode())


def make_body(
    text: str, kind: str = "text", sent: int | None = None, *, pad: bool = False,
    **extra: Any,
) -> bytes:
    """The UTF-8 JSON body `{"kind", "text", "sent", ...}`; with `pad`, a `"pad"` of
    spaces up to a multiple of 256 bytes (not past what fits the ciphertext limit)."""
    body = {"kind": kind, "text": text, "sent": int(time.time()) if sent is None else sent}
    body.update(extra)
    bare = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    with_pad = len(bare) + len(',"pad":""')
    room = MAX_CT_BYTES - 16
    if not pad or with_pad > room:
        return bare
    target = min(-(-with_pad // PAD_BLOCK) * PAD_BLOCK, room)
    body["pad"] = " " * (target - with_pad)
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def wrap_content_key(
    content_key: bytes,
    mailbox_id: str,
    message_id: str,
    recipient_pubkey: str,
    *,
    ephemeral: ec.EllipticCurvePrivateKey | None = None,
    iv: bytes | None = None,
) -> dict[str, str]:
    """One recipient entry `{"kid", "epk", "iv", "wk"}` (ECIES with a fresh ephemeral key)."""
    ephemeral = ephemeral if ephemeral is not None else generate_key_pair()
    iv = iv if iv is not None else os.urandom(12)
    recipient = decode_public_key(recipient_pubkey)
    kid = key_id(recipient_pubkey)
    shared = ephemeral.exchange(ec.ECDH(), recipient)
    key = ecies_key(shared, public_raw(ephemeral), public_raw(recipient))
    wk = AESGCM(key).encrypt(iv, content_key, entry_ad(mailbox_id, message_id, kid))
    return {
        "kid": kid, "epk": encode_public_key(ephemeral),
        "iv": b64u_encode(iv), "wk": b64u_encode(wk),
    }


def seal_message(
    mailbox_id: str,
    direction: Direction,
    body: bytes,
    recipients: Sequence[str],
    *,
    message_id: bytes | None = None,
    content_key: bytes | None = None,
    iv: bytes | None = None,
    ephemerals: Sequence[ec.EllipticCurvePrivateKey] | None = None,
    wrap_ivs: Sequence[bytes] | None = None,
) -> dict[str, Any]:
    """A message envelope `{"v", "id", "dir", "iv", "ct", "keys"}` for every recipient."""
    if not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ValueError("1 to 64 recipients")
    if len({key_id(r) for r in recipients}) != len(recipients):
        raise ValueError("a recipient twice")
    if len(body) > MAX_CT_BYTES - 16:
        raise ValueError("too large")
    mid = b64u_encode(message_id if message_id is not None else os.urandom(16))
    content_key = content_key if content_key is not None else os.urandom(32)
    iv = iv if iv is not None else os.urandom(12)
    ct = AESGCM(content_key).encrypt(iv, body, body_ad(mailbox_id, direction, mid))
    keys = [
        wrap_content_key(
            content_key, mailbox_id, mid, pub,
            ephemeral=ephemerals[i] if ephemerals else None,
            iv=wrap_ivs[i] if wrap_ivs else None,
        )
        for i, pub in enumerate(recipients)
    ]
    return {"v": VERSION, "id": mid, "dir": direction, "iv": b64u_encode(iv),
            "ct": b64u_encode(ct), "keys": keys}


def check_recipients(recipients: Any, mailbox_pubkey: str | None = None) -> list[str]:
    """The public keys of a server's recipient list `[{"kid", "pubkey", "role"}]` after
    E12.6's checks (kids match, no key twice, one team key, the visitor's own mailbox)."""
    if not isinstance(recipients, list) or not 1 <= len(recipients) <= MAX_RECIPIENTS:
        raise ValueError("recipients")
    kids = set()
    for r in recipients:
        if not isinstance(r, dict) or r.get("role") not in ("mailbox", "team", "counselor"):
            raise ValueError("recipient")
        if r.get("kid") != key_id(r.get("pubkey", "")) or r["kid"] in kids:
            raise ValueError("recipient kid")
        kids.add(r["kid"])
    if sum(r["role"] == "team" for r in recipients) != 1:
        raise ValueError("team key")
    boxes = [r["pubkey"] for r in recipients if r["role"] == "mailbox"]
    if mailbox_pubkey is not None and boxes != [mailbox_pubkey]:
        raise ValueError("not this mailbox's key")
    return [r["pubkey"] for r in recipients]


class NotARecipient(LookupError):
    """The envelope has no entry for this key."""


def check_envelope(envelope: dict[str, Any]) -> None:
    """Raise ValueError unless the envelope has exactly E12's fields and sizes (the server
    adds `seq`, `ts` and `kind` when it stores one; those are allowed here)."""
    if not isinstance(envelope, dict):
        raise ValueError("not an object")
    base = {"v", "id", "dir", "iv", "ct", "keys"}
    if not base <= set(envelope) <= base | {"seq", "ts", "kind"}:
        raise ValueError("fields")
    if envelope["v"] != VERSION or envelope["dir"] not in ("v2c", "c2v"):
        raise ValueError("version or dir")
    b64u_decode(envelope["id"], 16)
    b64u_decode(envelope["iv"], 12)
    if not 16 <= len(b64u_decode(envelope["ct"])) <= MAX_CT_BYTES:
        raise ValueError("ct size")
    keys = envelope["keys"]
    if not isinstance(keys, list) or not 1 <= len(keys) <= MAX_RECIPIENTS:
        raise ValueError("keys")
    kids = set()
    for entry in keys:
        if not isinstance(entry, dict) or set(entry) != {"kid", "epk", "iv", "wk"}:
            raise ValueError("entry fields")
        b64u_decode(entry["kid"], 16)
        decode_public_key(entry["epk"])
        b64u_decode(entry["iv"], 12)
        b64u_decode(entry["wk"], 48)
        kids.add(entry["kid"])
    if len(kids) != len(keys):
        raise ValueError("a kid twice")


def unwrap_content_key(
    envelope: dict[str, Any], mailbox_id: str, private_key: ec.EllipticCurvePrivateKey
) -> bytes:
    """The message's content key through this key's entry."""
    check_envelope(envelope)
    own_raw = public_raw(private_key)
    kid = key_id(b64u_encode(own_raw))
    entry = next((e for e in envelope["keys"] if e["kid"] == kid), None)
    if entry is None:
        raise NotARecipient(kid)
    epk = decode_public_key(entry["epk"])
    shared = private_key.exchange(ec.ECDH(), epk)
    key = ecies_key(shared, public_raw(epk), own_raw)
    return AESGCM(key).decrypt(
        b64u_decode(entry["iv"]), b64u_decode(entry["wk"]),
        entry_ad(mailbox_id, envelope["id"], kid),
    )


def open_message_bytes(
    envelope: dict[str, Any], mailbox_id: str, private_key: ec.EllipticCurvePrivateKey
) -> bytes:
    content_key = unwrap_content_key(envelope, mailbox_id, private_key)
    return AESGCM(content_key).decrypt(
        b64u_decode(envelope["iv"]), b64u_decode(envelope["ct"]),
        body_ad(mailbox_id, envelope["dir"], envelope["id"]),
    )


def open_message(
    envelope: dict[str, Any], mailbox_id: str, private_key: ec.EllipticCurvePrivateKey
) -> dict[str, Any]:
    """The decrypted body; InvalidTag on any change, NotARecipient without an entry."""
    body = json.loads(open_message_bytes(envelope, mailbox_id, private_key).decode("utf-8"))
    if not isinstance(body, dict) or body.get("kind") not in ("text", "time_proposal"):
        raise ValueError("body kind")
    if type(body.get("sent")) is not int or not isinstance(body.get("text"), str):
        raise ValueError("body fields")
    if len(body["text"].encode("utf-16-le")) // 2 > MAX_TEXT_CHARS:
        raise ValueError("text too long")
    if body["kind"] == "time_proposal" and not (
        type(body.get("at")) is int
        and type(body.get("minutes")) is int
        and 1 <= body["minutes"] <= 240
    ):
        raise ValueError("time proposal")
    body.pop("pad", None)
    return body


def rewrap_for(
    envelope: dict[str, Any], mailbox_id: str, private_key: ec.EllipticCurvePrivateKey,
    colleague_pubkey: str,
) -> dict[str, Any]:
    """A transfer entry `{"id", "entry"}`: this message's content key for a colleague."""
    content_key = unwrap_content_key(envelope, mailbox_id, private_key)
    entry = wrap_content_key(content_key, mailbox_id, envelope["id"], colleague_pubkey)
    return {"id": envelope["id"], "entry": entry}
