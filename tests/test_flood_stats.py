"""Statistics that a flood of fake chats cannot fill or skew (issue "Go-live security",
point 2): an unanswered chat writes a fact only if its visitor waited long enough, and
chats closed as test/prank or abusive are counted apart from every key figure.
"""

from __future__ import annotations

import asyncio
import sqlite3
from datetime import date
from pathlib import Path

from protocol_client import ok, open_chat
from support import MakeCounselor, MakeVisitor, ServerProcess

from tillit.counselor_console import stats

TODAY = date.today().isoformat()


def fact_count(srv: ServerProcess) -> int:
    """Rows of the real statistics table (read-only, beside the running server)."""
    db = srv.data_dir / "tillit.sqlite3"
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return conn.execute("SELECT count(*) FROM stats_facts").fetchone()[0]


def export(srv: ServerProcess) -> list[str]:
    return srv.cli("stats", "export", "--from", TODAY, "--to", TODAY,
                   "--data-dir", str(srv.data_dir)).splitlines()


async def test_short_unanswered_chats_write_no_fact_and_pranks_are_counted_apart(
    tmp_path: Path, make_visitor: MakeVisitor, make_counselor: MakeCounselor
) -> None:
    srv = ServerProcess(tmp_path, {"TILLIT_STATS_MIN_WAIT_S_UNANSWERED": "3",
                                   "TILLIT_QUEUE_GONE_VISITOR_S": "1",
                                   "TILLIT_CHAT_SWEEP_INTERVAL_S": "0.3"})
    srv.start()
    try:
        # A script's fakes: started and dropped at once, by chat:end or by leaving.
        for i in range(6):
            fake = await make_visitor(srv)
            ok(await fake.start(danger_now=True, age_group="under_13"), "chat:start")
            if i % 2:
                ok(await fake.end(), "chat:end")
            else:
                await fake.disconnect()
        # Someone who waited in the queue for a while, then gave up: that counts.
        waiting = await make_visitor(srv)
        ok(await waiting.start(lang="sv"), "chat:start")
        await asyncio.sleep(3.5)  # (meanwhile the dropped fakes time out of the queue)
        ok(await waiting.end(), "chat:end")
        counselor = await make_counselor(srv, languages="sv")
        for _ in range(100):
            if not (await counselor.queue_list())["queue"]:
                break
            await asyncio.sleep(0.2)
        assert not (await counselor.queue_list())["queue"]
        assert fact_count(srv) == 1
        # Answered chats: five real ones and two closed as prank or abusive.
        for outcome in ["completed"] * 5 + ["test_or_prank", "abusive"]:
            visitor = await make_visitor(srv)
            chat_id = await open_chat(visitor, counselor, lang="sv", age_group="18_25")
            ok(await counselor.close(chat_id, {"outcome": outcome}), "chat:close")
        assert fact_count(srv) == 8
        lines = export(srv)
        assert "total,chats,6" in lines, lines  # 5 completed + 1 who waited
        assert "total,set_apart,<5" in lines, lines
        assert "outcome,test_or_prank,0" in lines and "outcome,abusive,0" in lines, lines
        assert "total,abandoned,<5" in lines, lines
    finally:
        srv.stop()


def test_set_apart_outcomes_leave_every_other_figure_unchanged() -> None:
    real = [{"outcome": "completed", "lang": "sv", "answered": 1, "wait_s": 60,
             "age_group": "13_15"} for _ in range(12)]
    pranks = [{"outcome": o, "lang": "sv", "answered": 1, "wait_s": 0, "age_group": "under_13"}
              for o in ["test_or_prank"] * 7 + ["abusive"] * 2]
    day = date(2026, 12, 1)
    plain = stats.build_report(real, day, day)
    mixed = stats.build_report(real + pranks, day, day,
                               apart_outcomes=["test_or_prank", "abusive"])
    assert mixed.figure("total", "set_apart") == "9"
    assert plain.figure("total", "set_apart") == "0"
    assert [r for r in mixed.rows() if r[:2] != ("total", "set_apart")] == \
        [r for r in plain.rows() if r[:2] != ("total", "set_apart")]
    few = stats.build_report(real + pranks[:2], day, day, apart_outcomes=["test_or_prank"])
    assert few.figure("total", "set_apart") == "<5"
    # Without the setting, pranks are counted like everyone (the old behaviour).
    assert stats.build_report(real + pranks, day, day).figure("total", "chats") == "21"
