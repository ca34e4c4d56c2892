"""The pure proof-of-work (tillit/safety/proof_of_work.py) and the difficulty table
(tillit/chat_server/start_guard.py), with a mocked clock."""

from __future__ import annotations

import hashlib

import pytest

from tillit.chat_server.start_guard import StartGuard, parse_steps
from tillit.safety.proof_of_work import (
    ChallengeSigner,
    PowError,
    UsedChallenges,
    leading_zero_bits,
    meets,
    solve,
)

T0 = 1_796_000_000.0


def test_a_solution_is_checked_bit_exactly_and_only_for_this_key() -> None:
    signer = ChallengeSigner(300, key=b"k" * 32)
    ch = signer.issue(12, now=T0)
    assert len(ch.text) + 1 == 64  # challenge ":" is one SHA-256 block
    nonce = solve(ch.text, 12)
    assert leading_zero_bits(hashlib.sha256(f"{ch.text}:{nonce}".encode()).digest()) >= 12
    assert signer.verify(ch.text, nonce, 12, now=T0 + 10).bits == 12
    with pytest.raises(PowError) as exc:  # another process, or after a restart
        ChallengeSigner(300, key=b"o" * 32).verify(ch.text, nonce, 12, now=T0)
    assert exc.value.code == "pow_invalid"
    wrong = next(str(n) for n in range(10**6) if not meets(ch.text, str(n), 12))
    with pytest.raises(PowError, match="does not solve"):
        signer.verify(ch.text, wrong, 12, now=T0)
    easier = ch.text.replace("p1.12.", "p1.00.", 1)  # a changed difficulty breaks the HMAC
    with pytest.raises(PowError) as exc:
        signer.verify(easier, "0", 0, now=T0)
    assert exc.value.code == "pow_invalid"


def test_expiry_and_difficulty_are_enforced_with_a_mocked_clock() -> None:
    signer = ChallengeSigner(120, key=b"k" * 32)
    ch = signer.issue(4, now=T0)
    nonce = solve(ch.text, 4)
    assert signer.verify(ch.text, nonce, 4, now=T0 + 119)
    with pytest.raises(PowError) as exc:
        signer.verify(ch.text, nonce, 4, now=T0 + 121)
    assert exc.value.code == "pow_expired"
    with pytest.raises(PowError) as exc:
        signer.verify(ch.text, nonce, 5, now=T0)
    assert exc.value.code == "pow_too_easy"


def test_used_challenges_count_once_expire_and_stay_bounded() -> None:
    signer = ChallengeSigner(60, key=b"k" * 32)
    used = UsedChallenges(max_entries=3)
    first = signer.issue(0, now=T0)
    assert used.remember(first, now=T0) and not used.remember(first, now=T0 + 1)
    for _ in range(2):
        assert used.remember(signer.issue(0, now=T0), now=T0)
    with pytest.raises(PowError) as exc:  # full: refuse rather than grow
        used.remember(signer.issue(0, now=T0), now=T0 + 1)
    assert exc.value.code == "busy"
    # Once they expired they are forgotten, and there is room again.
    assert used.remember(signer.issue(0, now=T0 + 100), now=T0 + 100) and len(used) == 1


def test_the_difficulty_table_takes_the_highest_step_that_applies() -> None:
    async def none() -> int:
        return 0

    guard = StartGuard(base_bits=14, max_bits=24, ttl_s=300, max_queue=200,
                       fill_steps=parse_steps(["0.10:17", "0.50:21", "0.75:23"], "f"),
                       rate_steps=parse_steps(["10:16", "80:22"], "r"), queue_length=none,
                       clock=lambda: T0)
    assert guard.bits_for(0, 0) == 14
    assert guard.bits_for(19, 0) == 14 and guard.bits_for(20, 0) == 17
    assert guard.bits_for(0, 10) == 16 and guard.bits_for(20, 80) == 22
    assert guard.bits_for(200, 80) == 23
    guard.max_bits = 20
    assert guard.bits_for(200, 0) == 20
    with pytest.raises(ValueError):
        parse_steps(["half:20"], "pow_fill_steps")
    for _ in range(12):
        guard.started()
    assert guard.recent_starts(T0 + 59) == 12 and guard.recent_starts(T0 + 61) == 0
