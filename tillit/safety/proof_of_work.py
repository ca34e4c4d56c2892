"""A stateless SHA-256 proof-of-work for `chat:start` (docs/protocol.md, "Proof of work").

No identity and no address: a visitor proves that their device spent some CPU on this
one chat. The server hands out a challenge it signed itself (HMAC-SHA256 with a random
key that lives only in this process), so it keeps no state per challenge; the number
of bits and the expiry travel inside the signed text. The page finds a nonce such that

    SHA-256( UTF-8( challenge + ":" + nonce ) )

starts with `bits` zero bits (counted from the most significant bit of the first byte),
`nonce` being a decimal integer of 1 to 16 digits. Checking costs one hash; finding
costs 2**bits hashes on average, so the work doubles with every bit (in the spirit of
ALTCHA and of Tor's onion-service proof-of-work).

A solved challenge counts once: `UsedChallenges` remembers them until they expire
(bounded); with Redis the server uses SET NX with a TTL instead, so that several
processes agree. Pure code: no I/O, the clock is a parameter.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
import time
from collections import OrderedDict
from dataclasses import dataclass

VERSION = "p1"
MAX_BITS = 32
MAX_NONCE_DIGITS = 16
MAX_CHALLENGE_CHARS = 120
_NONCE = re.compile(r"[0-9]{1,16}")
# p1.<bits, 2 digits>.<expiry, 10 digits>.<17 random bytes>.<16 bytes of HMAC>: 63
# characters, so that challenge ":" is exactly one SHA-256 block (a solver hashes it
# once and then one block per nonce).
_CHALLENGE = re.compile(
    r"p1\.([0-9]{2})\.([0-9]{10})\.([A-Za-z0-9_-]{23})\.([A-Za-z0-9_-]{22})")


class PowError(Exception):
    """Why a solution is refused; `code` is the ack's error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _b64u(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def leading_zero_bits(digest: bytes) -> int:
    """How many zero bits `digest` starts with (from the first byte's top bit)."""
    value = int.from_bytes(digest, "big")
    return len(digest) * 8 - value.bit_length()


def meets(challenge: str, nonce: str, bits: int) -> bool:
    """Whether SHA-256(challenge ":" nonce) starts with `bits` zero bits."""
    digest = hashlib.sha256(f"{challenge}:{nonce}".encode()).digest()
    return int.from_bytes(digest[:8], "big") >> (64 - bits) == 0 if bits else True


def solve(challenge: str, bits: int, start: int = 0) -> str:
    """The first nonce from `start` up that meets `bits`: the reference solver (tests,
    load generator). It hashes the common prefix once and copies it per nonce."""
    prefix = hashlib.sha256(f"{challenge}:".encode())
    shift = 64 - bits
    nonce = start
    while True:
        h = prefix.copy()
        h.update(str(nonce).encode())
        if not bits or int.from_bytes(h.digest()[:8], "big") >> shift == 0:
            return str(nonce)
        nonce += 1


@dataclass(frozen=True)
class Challenge:
    text: str
    bits: int
    expires: int  # unix seconds

    def as_event(self) -> dict[str, object]:
        return {"challenge": self.text, "bits": self.bits, "expires": self.expires}


class ChallengeSigner:
    """Issues and verifies challenges signed with a key that never leaves the process."""

    def __init__(self, ttl_s: float, key: bytes | None = None) -> None:
        self.ttl_s = ttl_s
        self._key = key if key is not None else secrets.token_bytes(32)

    def _mac(self, body: str) -> str:
        return _b64u(hmac.new(self._key, body.encode("ascii"), hashlib.sha256).digest()[:16])

    def issue(self, bits: int, now: float | None = None) -> Challenge:
        bits = max(0, min(MAX_BITS, int(bits)))
        now = time.time() if now is None else now
        expires = int(now + self.ttl_s)
        body = f"{VERSION}.{bits:02d}.{expires:010d}.{_b64u(secrets.token_bytes(17))}"
        return Challenge(f"{body}.{self._mac(body)}", bits, expires)

    def verify(self, challenge: object, nonce: object, min_bits: int,
               now: float | None = None) -> Challenge:
        """The challenge, if `nonce` solves it, it is ours, unexpired and hard enough.

        Raises `PowError` with `pow_invalid`, `pow_expired` or `pow_too_easy`. Whether it
        was used before is the caller's check (`UsedChallenges` or the store).
        """
        if not isinstance(challenge, str) or not isinstance(nonce, str):
            raise PowError("pow_invalid", "pow needs a challenge and a nonce, both strings")
        match = _CHALLENGE.fullmatch(challenge) if len(challenge) <= MAX_CHALLENGE_CHARS else None
        if match is None or _NONCE.fullmatch(nonce) is None:
            raise PowError("pow_invalid", "this is not a challenge and nonce of this server")
        body, mac = challenge.rsplit(".", 1)
        if not hmac.compare_digest(mac, self._mac(body)):
            raise PowError("pow_invalid", "this challenge was not issued here (or the server "
                           "restarted): ask for a new one")
        bits, expires = int(match.group(1)), int(match.group(2))
        now = time.time() if now is None else now
        if now > expires:
            raise PowError("pow_expired", "this challenge has expired: ask for a new one")
        if not meets(challenge, nonce, bits):
            raise PowError("pow_invalid", "the nonce does not solve the challenge")
        if bits < min_bits:
            raise PowError("pow_too_easy", "more work is asked for now: ask for a new challenge")
        return Challenge(challenge, bits, expires)


class UsedChallenges:
    """Solved challenges seen in this process, each kept until it expires.

    Bounded: past `max_entries` live ones `remember` raises `PowError("busy")` rather
    than grow; expired entries are dropped as new ones come.
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = max_entries
        self._until: OrderedDict[str, float] = OrderedDict()

    def __len__(self) -> int:
        return len(self._until)

    def remember(self, challenge: Challenge, now: float | None = None) -> bool:
        """True the first time a challenge is seen, False if it was used before."""
        now = time.time() if now is None else now
        until = self._until
        while until:
            oldest, expires = next(iter(until.items()))
            if expires >= now:
                break
            del until[oldest]
        key = challenge.text
        if key in until:
            return False
        if len(until) >= self.max_entries:
            raise PowError("busy", "too many chats are being started right now; try again")
        until[key] = challenge.expires
        # Challenges expire in issue order (one ttl), so insertion order is expiry order
        # up to the second: the sweep above stays cheap.
        return True
