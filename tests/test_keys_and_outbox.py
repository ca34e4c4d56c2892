"""Keys the operator distributes (keyrings, rotation) and the outbox's at-least-once writes.

With `server.database_url` set (several machines) no key is ever made by a process: a
missing key file refuses the start; `tillit keys generate` makes one; a new key put
first in a keyring seals, the old ones still open, and `tillit keys rotate-totp` moves
every TOTP secret to the new key so the old one can go. The outbox (Redis list) writes
each audit row and fact once even when an entry is written again after a crash.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import sqlite3
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis
from cryptography.exceptions import InvalidTag
from sqlalchemy import event, text
from sqlalchemy.ext.asyncio import AsyncEngine
from support import REDIS_URL, ROOT

from tillit.counselor_console.key_files import new_key_line, read_keyring
from tillit.counselor_console.notes_crypto import NoteCipher
from tillit.counselor_console.outbox import DirectOutbox, RedisOutbox, audit_entry, fact_entry
from tillit.counselor_console.totp_crypto import TotpSealer
from tillit.durable.engine import create_engine

pytest_plugins = ["durable_fixtures"]


def tillit(env: dict[str, str], *args: str, stdin: str = "") -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TILLIT_")}
    return subprocess.run([sys.executable, "-m", "tillit", *args], input=stdin.encode(),
                          capture_output=True, cwd=ROOT, env={**clean, **env}, timeout=60,
                          check=False)


def test_a_note_sealed_under_the_old_key_opens_after_a_new_key_is_put_first() -> None:
    old, new = os.urandom(32), os.urandom(32)
    nonce, ct = NoteCipher(old).seal("counselor_lind", "chat-1", "en påhittad anteckning")
    rotated = NoteCipher([new, old])
    assert rotated.open("counselor_lind", "chat-1", nonce, ct) == "en påhittad anteckning"
    nonce2, ct2 = rotated.seal("counselor_lind", "chat-1", "ny anteckning")
    assert NoteCipher(new).open("counselor_lind", "chat-1", nonce2, ct2) == "ny anteckning"
    with pytest.raises(InvalidTag):  # sealed under the new key: the old one alone cannot
        NoteCipher(old).open("counselor_lind", "chat-1", nonce2, ct2)


def test_with_a_database_url_serve_refuses_without_key_files_and_makes_none(
    tmp_path: Path,
) -> None:
    data = tmp_path / "data"
    env = {"TILLIT_DATABASE_URL": f"sqlite:///{tmp_path / 'shared.sqlite3'}",
           "TILLIT_SERVER_DEVELOPMENT": "true"}
    res = tillit(env, "serve", "--port", "1", "--data-dir", str(data))
    assert res.returncode == 2
    assert "notes.key_file must name a key file" in res.stderr.decode()
    env["TILLIT_NOTES_KEY_FILE"] = str(tmp_path / "notes.keyring")
    env["TILLIT_CONSOLE_TOTP_KEY_FILE"] = str(tmp_path / "totp.keyring")
    res = tillit(env, "serve", "--port", "1", "--data-dir", str(data))
    assert res.returncode == 2 and "is missing" in res.stderr.decode(), res.stderr
    assert not (tmp_path / "notes.keyring").exists() and not data.exists()


def test_keys_generate_writes_a_private_file_once(tmp_path: Path) -> None:
    out = tmp_path / "notes.keyring"
    assert tillit({}, "keys", "generate", "--output", str(out)).returncode == 0
    assert out.stat().st_mode & 0o777 == 0o600
    assert len(read_keyring(out)) == 1
    again = tillit({}, "keys", "generate", "--output", str(out))
    assert again.returncode == 2 and "exists" in again.stderr.decode()
    printed = tillit({}, "keys", "generate").stdout.decode().strip()
    assert printed != out.read_text().strip() and len(printed) == 44


def test_rotate_totp_reseals_every_secret_so_the_old_key_can_go(tmp_path: Path) -> None:
    keyring = tmp_path / "totp.keyring"
    notes = tmp_path / "notes.keyring"
    old_line, new_line = new_key_line(), new_key_line()
    keyring.write_text(f"{old_line}\n")
    notes.write_text(f"{new_key_line()}\n")
    db = tmp_path / "shared.sqlite3"
    env = {"TILLIT_DATABASE_URL": f"sqlite:///{db}", "TILLIT_NOTES_KEY_FILE": str(notes),
           "TILLIT_CONSOLE_TOTP_KEY_FILE": str(keyring)}
    made = tillit(env, "user", "add", "counselor_vide", "--role", "counselor",
                  "--display-name", "Vide", "--json", "--data-dir", str(tmp_path / "unused"),
                  stdin="Lösen-för-vide-kanel-97\n")
    assert made.returncode == 0, made.stderr
    secret = json.loads(made.stdout.decode().splitlines()[-1])["totp_secret"]

    keyring.write_text(f"# new key first, the old one until rotate-totp has run\n"
                       f"{new_line}\n{old_line}\n")
    rotated = tillit(env, "keys", "rotate-totp", "--data-dir", str(tmp_path / "unused"))
    assert rotated.returncode == 0 and "Re-sealed 1 TOTP" in rotated.stdout.decode()
    keyring.write_text(f"{new_line}\n")  # the old key leaves the keyring

    stored = sqlite3.connect(db).execute(
        "SELECT totp_secret FROM accounts WHERE username = 'counselor_vide'").fetchone()[0]
    assert TotpSealer(read_keyring(keyring)).open("counselor_vide", stored) == secret
    assert not (tmp_path / "unused").exists()  # nothing in the data folder


@pytest.fixture
async def outbox(durable: AsyncEngine) -> AsyncIterator[RedisOutbox]:
    box = RedisOutbox(durable, REDIS_URL, f"tillit-outbox-test-{secrets.token_hex(6)}:outbox",
                      write_first=False)  # every entry through the list
    yield box
    client = aioredis.Redis.from_url(REDIS_URL)
    await client.delete(box.list_key, box.dead_key)
    await client.aclose()
    await box.close()


async def _count(db: AsyncEngine, sql: str) -> int:
    async with db.connect() as conn:
        return int((await conn.execute(text(sql))).scalar_one())


async def test_an_entry_written_again_after_a_crash_is_counted_once(
    outbox: RedisOutbox, durable: AsyncEngine,
) -> None:
    fact = {"lang": "sv", "topics": ["control"], "outcome": "completed"}
    ref = await outbox.put("fact", fact_entry(fact))
    await outbox.put("audit", audit_entry("chat.close", "counselor_lind", "chat-1",
                                          {"outcome": "completed"}))
    await outbox.put("feedback", {"ref": ref, "helped": "yes", "score": 4})
    client = aioredis.Redis.from_url(REDIS_URL, decode_responses=True)
    try:
        entries = await client.lrange(outbox.list_key, 0, -1)
        assert await outbox.drain() == 3
        # A process killed after writing, before removing: the entries come round again.
        await client.rpush(outbox.list_key, *entries)
        assert await outbox.drain() == 3
        assert await client.llen(outbox.list_key) == 0
    finally:
        await client.aclose()
    assert await _count(durable, "SELECT COUNT(*) FROM stats_facts") == 1
    assert await _count(durable, "SELECT COUNT(*) FROM audit WHERE action = 'chat.close'") == 1
    assert await _count(durable, "SELECT COUNT(*) FROM stats_facts WHERE score = 4") == 1


async def test_written_at_once_while_the_database_answers(durable: AsyncEngine) -> None:
    box = RedisOutbox(durable, REDIS_URL, f"tillit-outbox-test-{secrets.token_hex(6)}:outbox")
    try:
        await box.put("audit", audit_entry("chat.accept", "counselor_lind", "chat-3", {}))
        # Readable as soon as put returns; nothing queued.
        assert await _count(durable, "SELECT COUNT(*) FROM audit") == 1
        assert await box.waiting() == 0
    finally:
        await box.close()


async def test_entries_wait_while_the_database_is_unreachable(tmp_path: Path) -> None:
    gone = create_engine("postgresql://nobody@127.0.0.1:1/none")
    box = RedisOutbox(gone, REDIS_URL, f"tillit-outbox-test-{secrets.token_hex(6)}:outbox")
    try:
        # The direct write fails: the entry goes to the list, and so does the next one.
        await box.put("audit", audit_entry("chat.end", None, "chat-2", {"by": "visitor"}))
        await box.put("audit", audit_entry("chat.purge", None, "chat-2", {}))
        with pytest.raises(OSError):
            await box.drain()
        assert await box.waiting() == 2  # kept for a later round
    finally:
        client = aioredis.Redis.from_url(REDIS_URL)
        await client.delete(box.list_key)
        await client.aclose()
        await box.close()
        await gone.dispose()


@pytest.mark.parametrize("kind", ["direct", "redis"])
async def test_a_burst_of_audit_entries_shares_commits_and_each_is_written_once_in_order(
    durable: AsyncEngine, kind: str,
) -> None:
    """A burst of accepts writes an audit entry each: those that arrive while one
    commit runs share the next (a commit each was a fifth of the set-up time), yet each
    caller returns only once its own entry is readable, and a malformed entry fails
    alone."""
    box: DirectOutbox | RedisOutbox = (
        DirectOutbox(durable) if kind == "direct" else
        RedisOutbox(durable, REDIS_URL, f"tillit-outbox-test-{secrets.token_hex(6)}:outbox"))
    commits: list[int] = []

    def committed(conn: object) -> None:
        commits.append(1)

    event.listen(durable.sync_engine, "commit", committed)
    try:
        async def put(n: int) -> str:
            key = await box.put("audit", audit_entry("chat.accept", "counselor_lind",
                                                     f"chat-{n}", {"epoch": 1}))
            async with durable.connect() as conn:  # readable as soon as put returns
                found = (await conn.execute(
                    text("SELECT target FROM audit WHERE outbox_key = :k"), {"k": key})).all()
            assert found == [(f"chat-{n}",)]
            return key

        async def malformed() -> None:
            with pytest.raises(KeyError):
                await box.put("audit", {"actor": "counselor_lind", "ts": 1})

        keys = await asyncio.gather(*(put(n) for n in range(40)), malformed())
        async with durable.connect() as conn:
            rows = (await conn.execute(text("SELECT outbox_key, target, actor, detail FROM audit "
                                            "ORDER BY id"))).all()
        assert [r[0] for r in rows] == keys[:40]  # each once, in the order put
        assert [r[1] for r in rows] == [f"chat-{n}" for n in range(40)]
        assert {(r[2], r[3]) for r in rows} == {("counselor_lind", '{"epoch":1}')}
        assert len(commits) <= 10  # was 40: one each
        if isinstance(box, RedisOutbox):
            assert await box.waiting() == 0
    finally:
        event.remove(durable.sync_engine, "commit", committed)
        if isinstance(box, RedisOutbox):
            await box.close()
