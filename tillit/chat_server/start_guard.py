"""Abuse resistance for `chat:start` with no identity: a proof-of-work whose difficulty
follows the queue's pressure (docs/protocol.md, "Proof of work"; docs/architecture.md).

The pure part (challenge, verification, the solver) is safety/proof_of_work.py. Here:
how many bits to ask for right now, and "each solved challenge counts once" across
processes (Redis SET NX with a TTL) or in this process (SQLite).

Difficulty: `abuse.pow_bits_base`, raised by two step tables of `"threshold:bits"`
strings: `pow_fill_steps` (the queue holds at least this fraction of
`queue.max_length`) and `pow_rate_steps` (this process started at least this many
chats in the last minute). The highest matching step wins, capped at `pow_max_bits`.
Only chats that were really started count, never refused attempts: a flood that does
not solve the work leaves the difficulty (and so the real visitors' wait) as it was.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any

from tillit.chat_server.settings import Settings
from tillit.safety.errors import ProtocolError
from tillit.safety.proof_of_work import ChallengeSigner, PowError, UsedChallenges

RATE_WINDOW_S = 60.0


def parse_steps(raw: Iterable[Any], what: str) -> list[tuple[float, int]]:
    """`["0.25:20", ...]` (or `[[0.25, 20], ...]`) as `[(threshold, bits)]`, sorted."""
    steps: list[tuple[float, int]] = []
    for item in raw or []:
        try:
            if isinstance(item, str):
                threshold, bits = item.split(":")
            else:
                threshold, bits = item
            steps.append((float(threshold), int(bits)))
        except (TypeError, ValueError):
            raise ValueError(f"abuse.{what}: {item!r} is not \"threshold:bits\"") from None
    return sorted(steps)


class StartGuard:
    """Asks for work before a chat starts, and checks it (one per chat)."""

    def __init__(
        self,
        *,
        base_bits: int,
        max_bits: int,
        ttl_s: float,
        max_queue: int,
        fill_steps: list[tuple[float, int]],
        rate_steps: list[tuple[float, int]],
        queue_length: Callable[[], Awaitable[int]],
        claim_once: Callable[[str, float], Awaitable[bool]] | None = None,
        used_max: int = 100_000,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.base_bits = base_bits
        self.max_bits = max_bits
        self.max_queue = max(1, max_queue)
        self.fill_steps = fill_steps
        self.rate_steps = rate_steps
        self.signer = ChallengeSigner(ttl_s)
        self.queue_length = queue_length
        self.claim_once = claim_once  # shared store: SET NX with a TTL
        self.used = UsedChallenges(used_max)
        self.clock = clock
        self._starts: deque[float] = deque(maxlen=100_000)
        self._last_queued = 0

    @classmethod
    def from_settings(
        cls, settings: Settings, queue_length: Callable[[], Awaitable[int]],
        claim_once: Callable[[str, float], Awaitable[bool]] | None = None,
    ) -> StartGuard:
        return cls(
            base_bits=settings.abuse.pow_bits_base,
            max_bits=settings.abuse.pow_max_bits,
            ttl_s=settings.abuse.pow_ttl_s,
            max_queue=settings.queue.max_length,
            fill_steps=parse_steps(settings.abuse.pow_fill_steps, "pow_fill_steps"),
            rate_steps=parse_steps(settings.abuse.pow_rate_steps, "pow_rate_steps"),
            queue_length=queue_length,
            claim_once=claim_once,
            used_max=settings.abuse.pow_used_max,
        )

    def recent_starts(self, now: float | None = None) -> int:
        now = self.clock() if now is None else now
        starts = self._starts
        while starts and now - starts[0] > RATE_WINDOW_S:
            starts.popleft()
        return len(starts)

    def bits_for(self, queued: int, recent_starts: int) -> int:
        """The difficulty for this queue length and start rate (pure: the config table)."""
        bits = self.base_bits
        fill = queued / self.max_queue
        for threshold, step_bits in self.fill_steps:
            if fill >= threshold:
                bits = max(bits, step_bits)
        for threshold, step_bits in self.rate_steps:
            if recent_starts >= threshold:
                bits = max(bits, step_bits)
        return max(0, min(bits, self.max_bits))

    async def required_bits(self) -> int:
        """The bits asked for now; while the store cannot say how long the queue is (a
        Redis outage), the last length it said: a challenge is still handed out."""
        try:
            self._last_queued = await self.queue_length()
        except Exception:  # noqa: BLE001 - the start itself reports the outage
            pass
        return self.bits_for(self._last_queued, self.recent_starts())

    async def challenge(self, bits: int | None = None) -> dict[str, Any]:
        """The `pow:challenge` ack: `{challenge, bits, expires}`; `bits` given for a
        mailbox event (chat_server/mailboxes.py), else the chat's difficulty."""
        bits = await self.required_bits() if bits is None else bits
        return self.signer.issue(bits, self.clock()).as_event()

    async def check(self, pow_field: Any, bits: int | None = None) -> None:
        """Refuse the start unless `pow_field` solves a fresh challenge of ours, once
        (`bits`: at least this many, for a mailbox event; else the chat's difficulty)."""
        if pow_field is None:
            raise ProtocolError("pow_required",
                                "solve a pow:challenge first and send it as the event's pow")
        now = self.clock()
        required = await self.required_bits() if bits is None else bits
        try:
            solved = self.signer.verify(pow_field.get("challenge"), pow_field.get("nonce"),
                                        required, now)
            if self.claim_once is not None:
                ttl = max(1.0, solved.expires - now + 1)
                first = await self.claim_once(solved.text.rsplit(".", 1)[1], ttl)
            else:
                first = self.used.remember(solved, now)
        except PowError as exc:
            raise ProtocolError(exc.code, exc.message) from None
        if not first:
            raise ProtocolError("pow_reused", "this solution was used already: solve a new one")

    def started(self) -> None:
        """A chat was really started (counts towards `pow_rate_steps`)."""
        self._starts.append(self.clock())
