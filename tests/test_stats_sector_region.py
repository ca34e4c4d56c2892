"""Follow-up statistics ("Right law, right alarms", point 7): the professional's sector
and first/repeat contact as dimensions, suppressed like the rest, and the installation's
region on the page, in the CSV and in `tillit stats export`."""

from __future__ import annotations

import sqlite3
from datetime import date
from pathlib import Path

from durable_db import open_sqlite
from protocol_client import ok
from support import (
    MakeCounselor,
    MakeVisitor,
    ServerProcess,
    http_get,
    server_fixture,
    staff_cookie,
)

from tillit.counselor_console import stats, stats_facts

TODAY = date.today().isoformat()
REGION = "AB Stockholms län"


region_server = server_fixture({"TILLIT_STATS_REGION": REGION})


async def test_sector_and_contact_reach_the_csv_with_the_region(
    region_server: ServerProcess, make_visitor: MakeVisitor, make_counselor: MakeCounselor,
) -> None:
    counselor = await make_counselor(region_server)
    # Six consultations from schools, one from the police, three young people on a repeat
    # contact (answers given in the queue, as the visitor page does).
    answers = ([{"role": "professional", "sector": "school", "contact": "first"}] * 6
               + [{"role": "professional", "sector": "police", "contact": "first"}]
               + [{"role": "self", "sector": "police", "contact": "repeat"}] * 3)
    for given in answers:
        visitor = await make_visitor(region_server)
        ok(await visitor.start(lang="sv", age_group="18_25"))
        ok(await visitor.call("chat:update_meta", {"chat_id": visitor.chat_id, **given}))
        ok(await counselor.accept(visitor.chat_id))
        await visitor.wait_assigned()
        ok(await counselor.close(visitor.chat_id, {"outcome": "completed"}))
    supervisor = await staff_cookie(region_server, "supervisor")
    status, csv_text, _ = await http_get(
        region_server, f"/console/stats.csv?from={TODAY}&to={TODAY}", supervisor)
    assert status == 200, csv_text
    lines = csv_text.splitlines()
    assert lines[:3] == ["dimension,value,count", "total,chats,10", f"region,{REGION},10"]
    assert "sector,school,6" in lines, csv_text
    # One police officer: fewer than five, hidden. The three who asked for themselves
    # gave a sector too, but only a professional's counts.
    sector = {ln.split(",")[1]: ln.split(",")[2] for ln in lines if ln.startswith("sector,")}
    assert sector["police"] in ("<5", "x") and sector["not_stated"] in ("<5", "x"), sector
    assert set(sector) >= {"school", "health_care", "social_services", "police",
                           "civil_society", "other", "not_stated"}
    contact = {ln.split(",")[1]: ln.split(",")[2] for ln in lines if ln.startswith("contact,")}
    assert contact["first"] == "7" and contact["repeat"] in ("<5", "x"), contact

    status, html, _ = await http_get(
        region_server, f"/console/stats?from={TODAY}&to={TODAY}", supervisor)
    assert status == 200
    assert 'id="bd-sector"' in html and 'id="bd-contact"' in html
    assert REGION in html and "Skola" in html and "Upprepad kontakt" in html

    out = region_server.cli("stats", "export", "--from", TODAY, "--to", TODAY,
                            "--data-dir", str(region_server.data_dir))
    assert out == csv_text


def test_small_sector_cells_are_suppressed_and_the_region_row_says_when_unset() -> None:
    facts = ([{"role": "professional", "sector": "school", "answered": 1}] * 7
             + [{"role": "professional", "sector": "health_care", "answered": 1}] * 2
             + [{"role": "self", "contact": "repeat", "answered": 1}] * 6)
    report = stats.build_report(facts, date.today(), date.today(), min_cell=5,
                                categories={"sector": ["school", "health_care", "police"],
                                            "contact": ["first", "repeat"]})
    rows = report.rows()
    assert ("region", "not_set", "15") in rows
    assert ("sector", "school", "7") in rows
    assert ("sector", "health_care", "<5") in rows
    # The other cells must not give the 2 away: something else is hidden too.
    shown = {v: c for d, v, c in rows if d == "sector"}
    assert sum(1 for c in shown.values() if not c.isdigit()) >= 2, shown
    assert ("contact", "repeat", "6") in rows


async def test_an_older_statistics_table_gets_the_new_columns(tmp_path: Path) -> None:
    """A data folder from before `sector` and `contact` is migrated in place."""
    with sqlite3.connect(tmp_path / "tillit.sqlite3") as conn:
        conn.execute("CREATE TABLE stats_facts (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                           "day TEXT NOT NULL, lang TEXT, age_group TEXT, gender TEXT, "
                           "role TEXT, child INTEGER NOT NULL DEFAULT 0, danger_now INTEGER "
                           "NOT NULL DEFAULT 0, topics TEXT NOT NULL DEFAULT '[]', "
                           "indicators TEXT NOT NULL DEFAULT '[]', decision TEXT, "
                           "decision_to TEXT, referrals TEXT NOT NULL DEFAULT '[]', "
                           "outcome TEXT, answered INTEGER NOT NULL DEFAULT 1, dropped INTEGER "
                           "NOT NULL DEFAULT 0, wait_bucket TEXT, duration_bucket TEXT, "
                           "wait_s INTEGER, helped TEXT, score INTEGER)")
        conn.execute("INSERT INTO stats_facts (day, role) VALUES (?, 'young_person')",
                      (date.today().isoformat(),))
    for _ in range(2):  # twice: nothing to add the second time
        db = await open_sqlite(tmp_path)
        await db.dispose()
    db = await open_sqlite(tmp_path)
    try:
        await stats_facts.record(db, {"role": "professional", "sector": "police",
                                      "contact": "first"})
        facts = await stats_facts.facts_between(db, date.today(), date.today())
    finally:
        await db.dispose()
    assert [(f["role"], f["sector"], f["contact"]) for f in facts] == [
        ("young_person", None, None), ("professional", "police", "first")]
