"""What a flood of fake chats costs under the shipped proof-of-work (docs/protocol.md).

Measures this machine's native Python solver (hashlib, the prefix hashed once per
challenge, as `tillit.safety.proof_of_work.solve`) and walks the `[abuse]` step table of
tillit/config/default.toml for an attacker who opens chats one after another on one core,
each waiting in the queue (queue fill and start rate both rise). Prints the expected
CPU (2**bits hashes per chat on average) per chat and for the whole flood.

    .venv/bin/python bench/pow_cost.py --chats 200
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from collections import deque
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tillit.chat_server.settings import load_settings  # noqa: E402
from tillit.chat_server.start_guard import RATE_WINDOW_S, StartGuard  # noqa: E402
from tillit.safety.proof_of_work import ChallengeSigner, solve  # noqa: E402


def hash_rate(seconds: float = 5.0, bits: int = 16) -> float:
    """Hashes per CPU second of the reference solver on this machine."""
    signer = ChallengeSigner(300, secrets.token_bytes(32))
    hashes, began = 0, time.process_time()
    while time.process_time() - began < seconds:
        hashes += int(solve(signer.issue(bits).text, bits)) + 1
    return hashes / (time.process_time() - began)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--chats", type=int, default=200)
    args = ap.parse_args()
    settings = load_settings(environ={})

    async def no_queue() -> int:
        return 0

    guard = StartGuard.from_settings(settings, no_queue)
    rate = hash_rate()
    clock, total_s = 0.0, 0.0
    starts: deque[float] = deque()
    by_bits: dict[int, int] = {}
    for queued in range(min(args.chats, guard.max_queue)):
        while starts and clock - starts[0] > RATE_WINDOW_S:
            starts.popleft()
        bits = guard.bits_for(queued, len(starts))
        cost = 2 ** bits / rate
        clock += cost
        total_s += cost
        starts.append(clock)
        by_bits[bits] = by_bits.get(bits, 0) + 1
    print(f"native Python solver: {rate:,.0f} hashes per CPU second")
    steps = ", ".join(f"{n} at {b} bits" for b, n in sorted(by_bits.items()))
    print(f"chats by difficulty: {steps}")
    print(f"expected CPU for {args.chats} fake chats (queue.max_length "
          f"{guard.max_queue}): {total_s:,.0f} s = {total_s / 60:.1f} min on one core")
    print(f"base difficulty ({guard.base_bits} bits): {2 ** guard.base_bits / rate * 1000:.1f} ms "
          f"per chat; top ({guard.max_bits} bits): {2 ** guard.max_bits / rate:.1f} s per chat")


if __name__ == "__main__":
    main()
