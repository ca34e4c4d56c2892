"""Counselors' notes: only the author reads them, unreadable in the database file, and
gone after `retention.notes_days` (the server's purge job and `tillit purge`)."""

from __future__ import annotations

import os
import sqlite3
import stat
from pathlib import Path

from durable_db import run_sql
from protocol_client import error_code, ok, open_chat
from sqlalchemy.ext.asyncio import AsyncEngine
from support import MakeCounselor, MakeVisitor, ServerProcess

from tillit.counselor_console import audit
from tillit.counselor_console.notes import NoteBook
from tillit.counselor_console.notes_crypto import NoteCipher, load_or_create_key
from tillit.counselor_console.purge import DAY_S, run_purge

# `durable`: each test once on SQLite and once on PostgreSQL (tests/durable_fixtures.py).
pytest_plugins = ["durable_fixtures"]
NOTE = "Minnesanteckning Ugglan-8831: vill prata igen på torsdag"


async def test_notes_are_the_authors_only_and_unreadable_at_rest(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    author, colleague = await make_counselor(fresh_server), await make_counselor(fresh_server)
    visitor = await make_visitor(fresh_server)
    chat_id = await open_chat(visitor, author, lang="sv", age_group="18_25")
    note = ok(await author.note_add(chat_id, NOTE))["note"]
    assert note["text"] == NOTE
    assert [n["text"] for n in ok(await author.note_list(chat_id))["notes"]] == [NOTE]
    assert ok(await colleague.note_list(chat_id))["notes"] == []
    assert ok(await colleague.note_list())["notes"] == []
    assert error_code(await colleague.note_add(chat_id, "x")) == "forbidden"
    assert error_code(await author.note_add(chat_id, "")) == "invalid_payload"
    assert error_code(await author.note_add(chat_id, "x" * 1001)) == "invalid_payload"
    ok(await author.close(chat_id, {}))
    # After the close the author still has the note (until the purge).
    assert [n["text"] for n in ok(await author.note_list())["notes"]] == [NOTE]

    key_file = fresh_server.data_dir / "notes.key"
    assert stat.S_IMODE(os.stat(key_file).st_mode) == 0o600
    key = key_file.read_bytes()
    assert len(key) == 32
    needles = [NOTE.encode(), NOTE[:24].encode(), b"Ugglan-8831", key]
    for path in fresh_server.data_files():
        if path.name == "notes.key":
            continue
        data = path.read_bytes()
        assert not any(n in data for n in needles), path.name
    with sqlite3.connect(fresh_server.data_dir / "tillit.sqlite3") as conn:
        [(ct,)] = conn.execute("SELECT ct FROM notes")
    assert NOTE.encode() not in ct and len(ct) == len(NOTE.encode()) + 16


async def test_tillit_purge_deletes_notes_past_retention_and_logs_counts(
    fresh_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor,
    tmp_path: Path,
) -> None:
    author = await make_counselor(fresh_server)
    visitor = await make_visitor(fresh_server)
    chat_id = await open_chat(visitor, author, lang="sv")
    ok(await author.note_add(chat_id, NOTE))
    ok(await author.close(chat_id, {}))
    # The default retention (7 days) keeps a note written just now...
    out = fresh_server.cli("purge", "--data-dir", str(fresh_server.data_dir))
    assert "Purged 0 notes" in out
    # ...a retention of 0 days does not.
    config = tmp_path / "zero.toml"
    config.write_text("[retention]\nnotes_days = 0\n")
    out = fresh_server.cli("purge", "--data-dir", str(fresh_server.data_dir),
                           "--config", str(config))
    assert "Purged 1 notes" in out
    assert ok(await author.note_list())["notes"] == []
    with sqlite3.connect(fresh_server.data_dir / "tillit.sqlite3") as conn:
        details = [d for (d,) in conn.execute(
            "SELECT detail FROM audit WHERE action = 'purge' ORDER BY id")]
    assert details[-1] == '{"audit":0,"notes":1,"sessions":0}'
    assert "purge" in fresh_server.log_text()  # the server's own job ran at start-up
    assert NOTE not in fresh_server.log_text()


async def test_purge_job_keeps_notes_inside_retention_with_a_mocked_clock(
    tmp_path: Path, durable: AsyncEngine
) -> None:
    book = NoteBook(durable, NoteCipher(load_or_create_key(tmp_path / "k" / "notes.key")), 1000)
    t0 = 1_750_000_000.0
    await book.add("counselor_aster", "chat-a", "old note", now=t0)
    await book.add("counselor_aster", "chat-b", "newer note", now=t0 + 3 * DAY_S)
    counts = await run_purge(durable, notes_days=7, session_dead_after_s=1800,
                             now=t0 + 8 * DAY_S)
    assert counts["notes"] == 1
    assert [n["text"] for n in await book.of_author("counselor_aster")] == ["newer note"]
    counts = await run_purge(durable, notes_days=7, session_dead_after_s=1800,
                             now=t0 + 11 * DAY_S)
    assert counts["notes"] == 1 and await book.of_author("counselor_aster") == []
    entries = [e for e in await audit.entries(durable) if e["action"] == "purge"]
    assert [e["detail"] for e in entries] == ['{"notes":1,"sessions":0}'] * 2


async def test_a_note_cannot_be_read_with_another_key_or_as_another_author(
    tmp_path: Path, durable: AsyncEngine
) -> None:
    key = load_or_create_key(tmp_path / "notes.key")
    assert load_or_create_key(tmp_path / "notes.key") == key  # created once, then reused
    book = NoteBook(durable, NoteCipher(key), 1000)
    await book.add("counselor_aster", "chat-a", "bara min")
    await run_sql(durable, "UPDATE notes SET author = 'counselor_lyra'")
    assert await book.of_author("counselor_lyra") == []  # bound to its author
    await run_sql(durable, "UPDATE notes SET author = 'counselor_aster'")
    other = NoteBook(durable, NoteCipher(os.urandom(32)), 1000)
    assert await other.of_author("counselor_aster") == []
    assert [n["text"] for n in await book.of_author("counselor_aster")] == ["bara min"]
