"""The audit log keeps `retention.audit_days` and no longer: every anonymous chat leaves
a few entries, so the table must not grow without bound (issue "Go-live security", 5)."""

from __future__ import annotations

import sqlite3
from unittest import mock

from sqlalchemy.ext.asyncio import AsyncEngine
from support import ServerProcess

from tillit.counselor_console import audit
from tillit.counselor_console.purge import DAY_S, run_purge

# `durable`: once on SQLite and once on PostgreSQL (tests/durable_fixtures.py).
pytest_plugins = ["durable_fixtures"]


async def test_audit_entries_older_than_retention_are_purged_with_a_mocked_clock(
    durable: AsyncEngine,
) -> None:
    conn = durable
    t0 = 1_750_000_000.0
    for age_days, action in ((400, "chat.end"), (366, "chat.purge"), (300, "chat.accept"),
                             (1, "chat.close")):
        with mock.patch("tillit.counselor_console.audit.time.time",
                        return_value=t0 - age_days * DAY_S):
            await audit.record(conn, action, target="chat-invented")
    counts = await run_purge(conn, notes_days=7, session_dead_after_s=1800,
                             now=t0, audit_days=365)
    assert counts["audit"] == 2
    left = [e["action"] for e in await audit.entries(conn)]
    assert "chat.end" not in left and "chat.purge" not in left
    assert {"chat.accept", "chat.close", "purge"} <= set(left)
    # Without a retention (0 or None) nothing of the audit log goes.
    counts = await run_purge(conn, notes_days=7, session_dead_after_s=1800,
                             now=t0 + 400 * DAY_S, audit_days=0)
    assert "audit" not in counts
    assert len(await audit.entries(conn)) == len(left) + 1


def test_tillit_purge_applies_the_audit_retention(fresh_server: ServerProcess) -> None:
    db = fresh_server.data_dir / "tillit.sqlite3"
    # The server purges once at start-up (with the shipped 365 days), possibly after it
    # answers /healthz: stopped first, it cannot take the old row before the command does.
    fresh_server.stop()
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO audit (ts, actor, action, target, detail) "
                     "VALUES (?, NULL, 'chat.end', 'chat-invented', NULL)", (1_000_000_000,))
    config = fresh_server.tmp / "retention.toml"
    config.write_text("[retention]\naudit_days = 30\n")
    out = fresh_server.cli("purge", "--data-dir", str(fresh_server.data_dir),
                           "--config", str(config))
    assert "and 1 audit entries" in out, out
    with sqlite3.connect(db) as conn:
        assert conn.execute("SELECT count(*) FROM audit WHERE ts < 1000000001").fetchone()[0] == 0
