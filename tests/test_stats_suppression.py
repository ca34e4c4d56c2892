"""Suppression of the supervisor statistics: nothing hidden can be worked out again.

The onlooker of these tests sees only what the page and the CSV show (`Report.rows()`),
knows that every partition (a breakdown where each chat has exactly one value) adds up
to the number of chats, that `<5` means 0 to 4 (a zero may be hidden to protect a small
cell), that `x` means at least 5 and at most the smallest shown non-zero cell beside it
(it was the smallest left when it was hidden), and which cells are
the same chats in different breakdowns (the chats that left the queue unanswered). The
tests work out what that onlooker can deduce, independently of the code under test:
by enumerating every table consistent with the display for small breakdowns, and by
interval reasoning over all breakdowns at once for random fact sets.
"""

from __future__ import annotations

import itertools
from datetime import date

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tillit.counselor_console import stats
from tillit.counselor_console.stats import Breakdown, Cell, build_report, suppress, to_csv
from tillit.counselor_console.svg_charts import bar_chart

DAY = date(2025, 3, 14)
M = 5  # min_cell
LANGS = ["sv", "en", "ar", "so", "fa"]
CATEGORIES = {
    "language": LANGS,
    "age_group": ["under_13", "13_15", "16_17", "18_25", "over_25", "unknown"],
    "gender": ["girl", "boy", "non_binary", "other", "unknown"],
    "role": ["self", "worried", "professional"],
    "topics": ["control", "violence", "marriage", "travel"],
    "outcome": ["completed", "visitor_left", "quick_exit"],
    "decision": ["report_made", "consulted_anonymously", "no_report"],
    "decision_to": ["social_services", "police", "both"],
    "referrals": ["bris", "police", "kvinnofridslinjen"],
    "indicators": ["threat_to_kill", "phone_checked"],
}
SHARED = ("*", stats.ABANDONED)


def compositions(total: int, parts: int):
    if parts == 1:
        yield (total,)
        return
    for first in range(total + 1):
        for rest in compositions(total - first, parts - 1):
            yield (first, *rest)


def displayed(counts: tuple[int, ...], total: int) -> list[str] | None:
    bd = Breakdown("d", [Cell(str(i), c) for i, c in enumerate(counts)], partition=True)
    suppress([bd], total, M)
    return None if bd.withheld else [c.display(M) for c in bd.cells]


def consistent_tables(shown: list[str], total: int):
    """Every table an onlooker cannot tell apart from the real one, by enumeration."""
    caps = [int(d) for d in shown if d.isdigit() and int(d) > 0]
    x_cap = min([total, *caps])
    ranges = []
    for d in shown:
        if d.isdigit():
            ranges.append(range(int(d), int(d) + 1))
        elif d == f"<{M}":
            ranges.append(range(0, M))
        else:
            ranges.append(range(M, x_cap + 1))
    return [t for t in itertools.product(*ranges) if sum(t) == total]


@pytest.mark.parametrize(("parts", "max_total"), [(2, 30), (3, 26), (4, 18), (5, 13)])
def test_no_hidden_cell_of_a_small_breakdown_can_be_worked_out(parts: int, max_total: int):
    """Exhaustive: every breakdown of every total from min_cell up, in 2 to 5 cells."""
    checked = 0
    for total in range(M, max_total + 1):
        for counts in compositions(total, parts):
            shown = displayed(counts, total)
            if shown is None:
                continue
            for i, d in enumerate(shown):
                if d.isdigit():
                    assert int(d) == counts[i]
                    assert not 0 < counts[i] < M, (counts, shown)
                else:
                    assert d == f"<{M}" or counts[i] >= M, (counts, shown)
            tables = consistent_tables(shown, total)
            assert counts in tables, (counts, shown)
            for i, d in enumerate(shown):
                if not d.isdigit():
                    values = {t[i] for t in tables}
                    assert len(values) >= 2, f"{counts} shown as {shown}: cell {i} is {values}"
            checked += 1
    assert checked > 100


def test_exactly_one_small_cell_takes_the_next_smallest_with_it():
    shown = displayed((6, 2, 0, 0, 9), 17)
    assert shown == ["6", f"<{M}", f"<{M}", "0", "9"]  # a zero hides with it: 2 = 0..2 + 0..2
    shown = displayed((6, 2, 9), 17)
    assert shown == ["x", f"<{M}", "9"]  # no zero: the next smallest count


# ------------------------------------------------------------------------------ whole reports

facts_strategy = st.lists(
    st.fixed_dictionaries({
        "lang": st.sampled_from([*LANGS, None]),
        "age_group": st.sampled_from(["13_15", "16_17", "18_25", None]),
        "gender": st.sampled_from(["girl", "boy", None]),
        "role": st.sampled_from(["self", "worried", "professional"]),
        "topics": st.lists(st.sampled_from(["control", "violence", "marriage"]), max_size=2),
        "indicators": st.lists(st.sampled_from(["threat_to_kill", "phone_checked"]), max_size=1),
        "referrals": st.lists(st.sampled_from(["bris", "police"]), max_size=2),
        "answered": st.sampled_from([1, 1, 1, 0]),
        "outcome": st.sampled_from(["completed", "visitor_left", None]),
        "decision": st.sampled_from([None, None, "report_made", "no_report"]),
        "decision_to": st.sampled_from([None, "social_services"]),
        "dropped": st.booleans(),
        "wait_bucket": st.sampled_from(["under_1m", "1_5m", "5_15m"]),
        "duration_bucket": st.sampled_from(["under_5m", "5_15m", None]),
        "wait_s": st.integers(0, 1200),
        "helped": st.sampled_from(["yes", "partly", "no", None]),
        "score": st.sampled_from([1, 3, 5, None]),
    }),
    max_size=60,
)


def onlooker_bounds(rows: list[tuple[str, str, str]], total: int) -> dict:
    """Interval reasoning over every partition at once, from the shown rows only."""
    answered_only = {d.name for d in stats.DIMENSIONS if d.answered_only}
    partitions = {d.name for d in stats.DIMENSIONS if not d.multi}
    sums: dict[str, list] = {}
    bounds: dict = {}
    x_caps: dict[str, int] = {}
    for dim, _value, shown in rows:
        if dim in partitions and shown.isdigit() and int(shown) > 0:
            x_caps[dim] = min(x_caps.get(dim, total), int(shown))
    for dim, value, shown in rows:
        if dim not in partitions or value == "*":
            continue
        var = SHARED if (dim in answered_only and value == stats.ABANDONED) else (dim, value)
        if shown.isdigit():
            b = (int(shown), int(shown))
        elif shown == f"<{M}":
            b = (0, M - 1)
        else:
            b = (M, x_caps.get(dim, total)) if var != SHARED else (M, total)
        old = bounds.get(var, (0, total))
        bounds[var] = (max(old[0], b[0]), min(old[1], b[1]))
        sums.setdefault(dim, []).append(var)
    for _ in range(200):
        changed = False
        for vs in sums.values():
            for v in vs:
                others_lo = sum(bounds[u][0] for u in vs if u != v)
                others_hi = sum(bounds[u][1] for u in vs if u != v)
                lo, hi = bounds[v]
                new = (max(lo, total - others_hi), min(hi, total - others_lo))
                if new != (lo, hi):
                    bounds[v], changed = new, True
        if not changed:
            break
    return {v: b for v, b in bounds.items() if any(v in vs for vs in sums.values())}


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(facts_strategy)
def test_nothing_hidden_can_be_derived_across_breakdowns(facts: list[dict]) -> None:
    report = build_report(facts, DAY, DAY, min_cell=M, min_base=10, categories=CATEGORIES)
    rows = report.rows()
    total = len(facts)
    if total == 0:
        assert all(s in ("0", "x") for _, _, s in rows)
        return
    if total < M:
        assert rows[0] == ("total", "chats", f"<{M}")
        assert all(v == "*" for d, v, _ in rows if d in stats.DIMENSION_NAMES)
        assert all(s in ("x", f"<{M}") for _, _, s in rows)
        return
    assert ("total", "chats", str(total)) in rows
    hidden = {}
    for dim, value, shown in rows:
        if dim in stats.DIMENSION_NAMES and value != "*" and not shown.isdigit():
            hidden[(dim, value)] = shown
        if shown.isdigit() and dim in stats.DIMENSION_NAMES:
            assert not 0 < int(shown) < M, (dim, value, shown)
    bounds = onlooker_bounds(rows, total)
    answered_only = {d.name for d in stats.DIMENSIONS if d.answered_only}
    for (dim, value), _ in hidden.items():
        if not any(d.name == dim and not d.multi for d in stats.DIMENSIONS):
            continue  # a list breakdown adds up to nothing: only small cells are hidden
        var = SHARED if (dim in answered_only and value == stats.ABANDONED) else (dim, value)
        lo, hi = bounds[var]
        assert hi - lo >= 1, f"{dim}={value} can be worked out: {lo}..{hi}\n{rows}"


@settings(max_examples=200, deadline=None)
@given(facts_strategy)
def test_shown_numbers_are_true_and_small_ones_are_hidden(facts: list[dict]) -> None:
    report = build_report(facts, DAY, DAY, min_cell=M, min_base=10, categories=CATEGORIES)
    for bd in report.breakdowns:
        for cell in bd.cells:
            shown = cell.display(M)
            if bd.withheld:
                continue
            if shown.isdigit():
                assert int(shown) == cell.count
            elif shown == f"<{M}":
                assert 0 <= cell.count < M
            else:
                assert shown == "x" and cell.count >= M


@settings(max_examples=200, deadline=None)
@given(facts_strategy)
def test_shares_follow_from_shown_cells_and_rest_on_ten_chats(facts: list[dict]) -> None:
    report = build_report(facts, DAY, DAY, min_cell=M, min_base=10, categories=CATEGORIES)
    shown = {(d, v): s for d, v, s in report.rows()}
    total = len(facts)
    young = ("under_13", "13_15", "16_17")
    ages = {v: c for (d, v), c in shown.items() if d == "age_group"}
    share = shown[("share_pct", "under_18")]
    if total < 10:
        assert share == "x"
    if share != "x":  # from the shown cells, directly or as the total minus the others
        if all(ages[g].isdigit() for g in young):
            under = sum(int(ages[g]) for g in young)
        else:
            assert all(c.isdigit() for v, c in ages.items() if v not in young), ages
            under = total - sum(int(c) for v, c in ages.items() if v not in young)
        assert int(share) == int(100 * under / total + 0.5)
    helped = shown[("share_pct", "helped")]
    if helped != "x":  # the base from the shown cells, directly or as total minus the rest
        answers = ("yes", "partly", "no")
        cells = {v: c for (d, v), c in shown.items() if d == "helped"}
        if all(cells[v].isdigit() for v in answers):
            base = sum(int(cells[v]) for v in answers)
        else:
            assert all(c.isdigit() for v, c in cells.items() if v not in answers), cells
            base = total - sum(int(c) for v, c in cells.items() if v not in answers)
        assert base >= 10 and int(helped) == int(100 * int(shown[("helped", "yes")]) / base + 0.5)
    for key in (("wait", "median_s"), ("wait", "p90_s")):
        answered = [f for f in facts if f["answered"] and f["wait_s"] is not None]
        assert (shown[key] == "x") == (len(answered) < 10)


def fact(lang: str, **extra) -> dict:
    return {"lang": lang, "answered": 1, "outcome": "completed", "wait_s": 60, **extra}


def test_six_swedish_and_two_arabic_chats() -> None:
    facts = [fact("sv") for _ in range(6)] + [fact("ar") for _ in range(2)]
    report = build_report(facts, DAY, DAY, categories={"language": LANGS})
    text = to_csv(report)
    lines = text.splitlines()
    assert lines[0] == "dimension,value,count"
    assert "language,sv,6" in lines
    assert "language,ar,<5" in lines
    assert "total,chats,8" in lines
    # Eight chats and six Swedish: Arabic alone would be 8 - 6, so one more cell hides
    # (the first empty language, shown as "<5": fewer than five, here none).
    language = [line for line in lines if line.startswith("language,")]
    assert [line for line in language if not line.split(",")[2].isdigit()] == [
        "language,en,<5", "language,ar,<5"]
    assert "wait,median_s,x" in lines and "share_pct,under_18,x" in lines  # base under 10


def test_fewer_than_min_cell_chats_shows_only_that() -> None:
    report = build_report([fact("sv"), fact("ar")], DAY, DAY, categories={"language": LANGS})
    rows = report.rows()
    assert rows[0] == ("total", "chats", "<5")
    assert all(s in ("x", "<5") for _, _, s in rows)


def test_no_chat_means_zero_not_hidden() -> None:
    report = build_report([], DAY, DAY, categories={"language": LANGS})
    assert report.figure("total", "chats") == "0"


def test_unanswered_chats_are_one_cell_in_every_answered_only_breakdown() -> None:
    facts = [fact("sv") for _ in range(20)]
    facts += [{"lang": "sv", "answered": 0, "outcome": "abandoned", "wait_s": 300}] * 3
    report = build_report(facts, DAY, DAY, categories={"language": LANGS})
    assert report.figure("total", "abandoned") == "<5"
    for bd in report.breakdowns:
        cell = bd.cell(stats.ABANDONED)
        if cell is not None:
            assert cell.display(M) == "<5", bd.dimension
            hidden = [c for c in bd.cells if not c.display(M).isdigit()]
            assert len(hidden) >= 2 or bd.withheld, bd.dimension


def test_percentiles_use_answered_chats_only() -> None:
    facts = [fact("sv", wait_s=w) for w in range(0, 100, 10)]  # ten answered: 0..90 s
    facts += [{"lang": "sv", "answered": 0, "wait_s": 5000}] * 5
    report = build_report(facts, DAY, DAY)
    assert report.figure("wait", "median_s") == "40"
    assert report.figure("wait", "p90_s") == "80"


def test_the_chart_does_not_depend_on_the_hidden_count() -> None:
    """Two periods that differ only in a hidden cell draw the same language chart and rows."""
    a = [fact("sv") for _ in range(10)] + [fact("ar")] + [fact("en") for _ in range(6)]
    b = [fact("sv") for _ in range(10)] + [fact("ar")] * 3 + [fact("en") for _ in range(6)]
    ra = build_report(a, DAY, DAY, categories={"language": LANGS})
    rb = build_report(b, DAY, DAY, categories={"language": LANGS})
    lang_a = [r for r in ra.rows() if r[0] == "language"]
    lang_b = [r for r in rb.rows() if r[0] == "language"]
    assert lang_a == lang_b, (lang_a, lang_b)
    chart = bar_chart([(v, s) for _, v, s in lang_a], "Language", "language")
    assert chart == bar_chart([(v, s) for _, v, s in lang_b], "Language", "language")
    assert "<script" not in chart and "style=" not in chart and 'aria-hidden="true"' in chart
