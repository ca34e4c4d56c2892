"""Bench counselor accounts, made with the project's own account code in one process.

`tillit user add` once per account costs a Python start-up each (250 accounts for
1 000 chats took minutes); this makes them all in one process, before the server
starts, through the same calls the command makes (`accounts.create`, then an
`account.create` audit row), against the same data directory and settings. The
passwords are hashed with the shipped Argon2id parameters, a few at once.

Usage (the generator runs it): `python bench/bench_accounts.py --data-dir D --config C
--count N [--prefix NAME]` with the password on standard input; prints one JSON object
per line: `{"username": ..., "totp_secret": ...}`.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys

from tillit.cli import _settings, _with_db
from tillit.counselor_console import accounts, audit
from tillit.counselor_console.totp_crypto import load_sealer

AT_ONCE = 4  # Argon2 hashes in flight (threads; the hash releases the GIL)


def usernames(prefix: str, count: int) -> list[str]:
    """`prefix` alone for one account (the old bench shape), else prefix_000, ..."""
    return [prefix] if count == 1 else [f"{prefix}_{k:03d}" for k in range(count)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", required=True)
    parser.add_argument("--config", required=True)
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--prefix", default="bench_counselor")
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):  # before the server starts: every core may help
        os.sched_setaffinity(0, range(os.cpu_count() or 1))
    password = sys.stdin.readline().rstrip("\r\n")
    settings = _settings(args)
    names = usernames(args.prefix, args.count)

    async def action(db):  # noqa: ANN001, ANN202
        sealer = load_sealer(settings)
        gate = asyncio.Semaphore(AT_ONCE)

        async def one(k: int, name: str) -> dict[str, str]:
            async with gate:
                secret = await accounts.create(db, name, password, "counselor",
                                               display_name=f"Bench Aster {k}",
                                               sealer=sealer)
                await audit.record(db, "account.create", actor="cli", target=name,
                                   role="counselor")
            return {"username": name, "totp_secret": secret}

        return await asyncio.gather(*(one(k, n) for k, n in enumerate(names)))

    for row in asyncio.run(_with_db(settings, action)):
        print(json.dumps(row))
    return 0


if __name__ == "__main__":
    sys.exit(main())
