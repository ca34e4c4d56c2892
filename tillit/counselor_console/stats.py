"""Supervisor statistics: count the facts of a period and hide what could single anyone out.

Pure functions over the rows of `stats_facts` (see `stats_facts.py`), so that the page,
the CSV download and `tillit stats export` show exactly the same, and so that the
suppression can be tested on its own (tests/test_stats_suppression.py).

The rules (DOMAIN.md "Data protection", issue 5):

* a count from 1 to `min_cell - 1` is shown as `<5` ("small"); 0 is shown as 0;
* a breakdown whose cells add up to the number of chats (a *partition*: every chat has
  exactly one value) must not let anyone work a hidden cell out from the total and the
  other cells. After the small cells are hidden, the smallest shown cells are hidden too
  until every hidden cell could still have at least two values: a zero first (shown as
  `<5`, which stays true: fewer than five), else the smallest count (shown as `x`). If
  nothing is left to hide, the breakdown is withheld as a whole. So `<5` reads
  "fewer than five, perhaps none", and `x` "five or more, hidden";
* chats that never reached a counselor ("abandoned") form the same cell in every
  partition that only answered chats fill (outcome, decision, duration, ...); that cell
  is one variable, hidden everywhere or nowhere, and the check runs over all of those
  partitions at once;
* every derived figure (a share, a sum of cells) is computed from shown values only, so
  it adds nothing an onlooker could not compute already; a percentage needs a base of
  at least `min_base` chats, and so do the median and 90th-percentile wait;
* with 1 to `min_cell - 1` chats in the period nothing but "<5 chats" is shown;
* one dimension at a time: no cross tabulation at all; no chat id, no free text and no
  time finer than a day ever reach this module.

Only `Report.rows()` (display strings) leaves this module for the page and the CSV;
the true counts of hidden cells stay inside.
"""

from __future__ import annotations

import csv
import io
import math
from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

SHOWN, SMALL, HIDDEN = "shown", "small", "hidden"
HIDDEN_MARK = "x"
ABANDONED = "abandoned"
NOT_STATED = "not_stated"
NOT_ANSWERED = "not_answered"
NONE = "none"
REGION = "region"
NOT_SET = "not_set"
UNDER_18 = ("under_13", "13_15", "16_17")


@dataclass(frozen=True)
class Dimension:
    """One breakdown: which fact field, and how a chat is counted in it."""

    name: str  # the CSV `dimension`
    field: str  # the fact field
    multi: bool = False  # a list: a chat may count in several cells (not a partition)
    answered_only: bool = False  # chats never answered land in the `abandoned` cell
    missing: str = NOT_STATED  # the cell for a chat without a value
    fixed: tuple[str, ...] = ()  # categories known here rather than from config


WAIT_VALUES = ("under_1m", "1_5m", "5_15m", "15_30m", "over_30m")
DURATION_VALUES = ("under_5m", "5_15m", "15_30m", "30_60m", "over_60m")

DIMENSIONS: tuple[Dimension, ...] = (
    Dimension("language", "lang"),
    Dimension("age_group", "age_group"),
    Dimension("gender", "gender"),
    Dimension("role", "role"),
    Dimension("sector", "sector"),  # the professional's sector; others are not_stated
    Dimension("contact", "contact"),  # first or repeat contact, as the visitor said
    # came back with a return code (docs/protocol.md E12), as the server knows it
    Dimension("returning", "returning_contact", fixed=("yes", "no")),
    Dimension("topics", "topics", multi=True),
    Dimension("indicators", "indicators", multi=True),
    Dimension("decision", "decision", answered_only=True, missing=NONE),
    Dimension("decision_to", "decision_to", answered_only=True, missing=NONE),
    Dimension("referrals", "referrals", multi=True),
    Dimension("referred_on", "referred_on", answered_only=True, fixed=("yes", "no")),
    Dimension("outcome", "outcome", answered_only=True),
    Dimension("wait_bucket", "wait_bucket", fixed=WAIT_VALUES),
    Dimension("duration_bucket", "duration_bucket", answered_only=True,
              fixed=DURATION_VALUES),
    Dimension("dropped", "dropped", answered_only=True, fixed=("yes", "no")),
    Dimension("helped", "helped", answered_only=True, missing=NOT_ANSWERED,
              fixed=("yes", "partly", "no")),
    Dimension("score", "score", answered_only=True, missing=NOT_ANSWERED,
              fixed=("1", "2", "3", "4", "5")),
)
DIMENSION_NAMES = tuple(d.name for d in DIMENSIONS)


@dataclass
class Cell:
    value: str
    count: int  # the true count: never shown when the state is not SHOWN
    state: str = SHOWN

    def display(self, min_cell: int) -> str:
        if self.state == SMALL:
            return f"<{min_cell}"
        if self.state == HIDDEN:
            return HIDDEN_MARK
        return str(self.count)


@dataclass
class Breakdown:
    dimension: str
    cells: list[Cell]
    partition: bool  # the cells add up to the number of chats
    withheld: bool = False

    def cell(self, value: str) -> Cell | None:
        return next((c for c in self.cells if c.value == value), None)


@dataclass(frozen=True)
class Figure:
    """A key figure: `dimension,value,display` in the CSV."""

    dimension: str
    value: str
    display: str


@dataclass
class Report:
    first: date
    last: date
    min_cell: int
    min_base: int
    chats: int
    region: str = ""  # `stats.region`: the installation's county or region, for comparison
    figures: list[Figure] = field(default_factory=list)
    breakdowns: list[Breakdown] = field(default_factory=list)

    def rows(self) -> list[tuple[str, str, str]]:
        """Everything that may be shown, as `(dimension, value, count)` display strings."""
        out = [(f.dimension, f.value, f.display) for f in self.figures]
        for bd in self.breakdowns:
            if bd.withheld:
                out.append((bd.dimension, "*", HIDDEN_MARK))
                continue
            out.extend((bd.dimension, c.value, c.display(self.min_cell)) for c in bd.cells)
        return out

    def figure(self, dimension: str, value: str) -> str | None:
        return next((f.display for f in self.figures
                     if f.dimension == dimension and f.value == value), None)


# ------------------------------------------------------------------------------ counting


def _value(fact: Mapping[str, Any], dim: Dimension) -> Any:
    if dim.field == "referred_on":
        return "yes" if fact.get("referrals") else "no"
    if dim.field in ("dropped", "returning_contact"):
        return "yes" if fact.get(dim.field) else "no"
    raw = fact.get(dim.field)
    if dim.multi:
        return [str(v) for v in (raw or [])]
    return dim.missing if raw is None or raw == "" else str(raw)


def answered(fact: Mapping[str, Any]) -> bool:
    return fact.get("answered", 1) not in (0, False)


def count(
    facts: Sequence[Mapping[str, Any]],
    categories: Mapping[str, Sequence[str]] | None = None,
) -> list[Breakdown]:
    """Raw counts per dimension; `categories` lists each dimension's vocabulary in order.

    Every vocabulary value gets a cell, 0 included, so that a category's absence says
    nothing; values found in the facts but not in the vocabulary follow, sorted.
    """
    categories = categories or {}
    out = []
    for dim in DIMENSIONS:
        tally: Counter[str] = Counter()
        for fact in facts:
            if dim.answered_only and not answered(fact):
                tally[ABANDONED] += 1
                continue
            value = _value(fact, dim)
            if dim.multi:
                tally.update(set(value))
            else:
                tally[value] += 1
        order = list(dict.fromkeys([*dim.fixed, *categories.get(dim.name, ())]))
        special = [] if dim.multi else [dim.missing]
        if dim.answered_only:
            special.append(ABANDONED)
        order = [v for v in order if v not in special]
        extra = sorted(v for v in tally if v not in order and v not in special)
        values = [*order, *extra, *special]
        cells = [Cell(v, tally.get(v, 0)) for v in values]
        out.append(Breakdown(dim.name, cells, partition=not dim.multi))
    return out


# ------------------------------------------------------------------------------ suppression


VarId = tuple[str, str]


def _var(bd: Breakdown, cell: Cell) -> VarId:
    """Cells that are the same set of chats in several partitions share one variable."""
    if cell.value == ABANDONED and bd.partition:
        return ("*", ABANDONED)
    return (bd.dimension, cell.value)


def suppress(breakdowns: list[Breakdown], total: int, min_cell: int) -> None:
    """Hide small cells, then enough others that no hidden cell can be worked out.

    Changes the cells' states in place (and `withheld`). The check assumes an onlooker
    who sees the number of chats and every shown cell, knows that a `<5` cell holds 0 to
    min_cell-1 chats and an `x` cell at least min_cell and at most the smallest shown
    non-zero cell of the breakdown it was chosen in, and knows which cells of different
    breakdowns are the same chats. Every hidden cell must keep two or more possible values.
    """
    if 0 < total < min_cell:
        for bd in breakdowns:
            bd.withheld = True
        return
    counts: dict[VarId, int] = {}
    clash: set[VarId] = set()
    for bd in breakdowns:
        for cell in bd.cells:
            var = _var(bd, cell)
            if counts.setdefault(var, cell.count) != cell.count:
                clash.add(var)  # not the same chats after all: do not link them

    def var_of(bd: Breakdown, cell: Cell) -> VarId:
        var = _var(bd, cell)
        return (bd.dimension, cell.value) if var in clash else var

    counts = {var_of(bd, c): c.count for bd in breakdowns for c in bd.cells}
    for bd in breakdowns:
        for cell in bd.cells:
            if 0 < cell.count < min_cell:
                cell.state = SMALL
    picked: dict[VarId, int] = {}  # an `x` variable -> the breakdown it was chosen in
    while True:
        constraints = [(i, [var_of(bd, c) for c in bd.cells])
                       for i, bd in enumerate(breakdowns) if bd.partition and not bd.withheld]
        bounds = _bounds(breakdowns, constraints, counts, picked, var_of, total, min_cell)
        bounds = _propagate(constraints, bounds, total)
        determined = {v for _, vs in constraints for v in vs
                      if bounds[v][1] - bounds[v][0] < 1 and not _shown(breakdowns, v, var_of)}
        if not determined:
            return
        for i, vs in constraints:
            if not determined.intersection(vs):
                continue
            bd = breakdowns[i]
            shown = [(c.count, n) for n, c in enumerate(bd.cells) if c.state == SHOWN]
            if not shown:
                bd.withheld = True
                continue
            count, n = min(shown)  # the smallest, a zero first: shown as "<5", still true
            var = vs[n]
            picked[var] = i
            for other in breakdowns:  # one variable: hidden in every breakdown it is in
                for cell in other.cells:
                    if other.partition and var_of(other, cell) == var:
                        cell.state = SMALL if count < min_cell else HIDDEN


def _shown(breakdowns: list[Breakdown], var: VarId, var_of: Any) -> bool:
    return all(c.state == SHOWN for bd in breakdowns if bd.partition
               for c in bd.cells if var_of(bd, c) == var)


def _bounds(
    breakdowns: list[Breakdown],
    constraints: list[tuple[int, list[VarId]]],
    counts: dict[VarId, int],
    picked: dict[VarId, int],
    var_of: Any,
    total: int,
    min_cell: int,
) -> dict[VarId, tuple[int, int]]:
    """What an onlooker knows of each variable before combining the sums."""
    bounds: dict[VarId, tuple[int, int]] = {}
    for i, vs in constraints:
        for cell, var in zip(breakdowns[i].cells, vs, strict=True):
            if cell.state == SHOWN:
                bounds[var] = (counts[var], counts[var])
            elif cell.state == SMALL:
                bounds[var] = (0, min_cell - 1)
            else:
                cap = total
                where = picked.get(var)
                if where is not None:
                    cap = min([cap, *(c.count for c in breakdowns[where].cells
                                      if c.state == SHOWN and c.count > 0)])
                bounds[var] = (min_cell, cap)
    return bounds


def _propagate(
    constraints: list[tuple[int, list[VarId]]],
    bounds: dict[VarId, tuple[int, int]],
    total: int,
) -> dict[VarId, tuple[int, int]]:
    """Interval bounds of every variable, tightened over all sums until nothing changes."""
    bounds = dict(bounds)
    for _ in range(200):
        changed = False
        for _, vs in constraints:
            lo_sum = sum(bounds[v][0] for v in vs)
            hi_sum = sum(bounds[v][1] for v in vs)
            for v in vs:
                lo, hi = bounds[v]
                new = (max(lo, total - (hi_sum - hi)), min(hi, total - (lo_sum - lo)))
                if new != (lo, hi):
                    bounds[v] = new
                    lo_sum += new[0] - lo
                    hi_sum += new[1] - hi
                    changed = True
        if not changed:
            break
    return bounds


# ------------------------------------------------------------------------------ figures


def shown_sum(bd: Breakdown, values: Iterable[str], total: int) -> int | None:
    """The sum of some cells, if it follows from shown values alone; else None."""
    if bd.withheld:
        return None
    wanted = set(values)
    inside = [c for c in bd.cells if c.value in wanted]
    outside = [c for c in bd.cells if c.value not in wanted]
    if all(c.state == SHOWN for c in inside):
        return sum(c.count for c in inside)
    if bd.partition and all(c.state == SHOWN for c in outside):
        return total - sum(c.count for c in outside)
    return None


def percent(part: int | None, base: int | None, min_base: int) -> str:
    if part is None or base is None or base < min_base or base <= 0:
        return HIDDEN_MARK
    return str(int(math.floor(100.0 * part / base + 0.5)))


def percentile(values: Sequence[int], q: float) -> int:
    """The nearest-rank percentile (a value that occurred, rounded to 10 s already)."""
    ordered = sorted(values)
    rank = max(1, math.ceil(q * len(ordered)))
    return int(ordered[rank - 1])


def build_report(
    facts: Sequence[Mapping[str, Any]],
    first: date,
    last: date,
    min_cell: int = 5,
    min_base: int = 10,
    categories: Mapping[str, Sequence[str]] | None = None,
    under_18: Sequence[str] = UNDER_18,
    region: str = "",
    apart_outcomes: Sequence[str] = (),
    mailbox_counts: Mapping[str, int] | None = None,
) -> Report:
    """Count, suppress and derive the key figures for the facts of one period.

    Chats closed with an outcome in `apart_outcomes` (tests, pranks, abuse) are counted
    apart: one figure `total,set_apart`, small counts shown as `<min_cell`, and nothing
    else; the total, every breakdown and every key figure rest on the other chats only.
    `mailbox_counts` (mailboxes created, messages each way in the period) become figures
    `mailbox,<name>`, small counts shown as `<min_cell`.
    """
    apart = frozenset(apart_outcomes)
    set_apart = sum(1 for f in facts if f.get("outcome") in apart)
    facts = [f for f in facts if f.get("outcome") not in apart]
    total = len(facts)
    breakdowns = count(facts, categories)
    suppress(breakdowns, total, min_cell)
    report = Report(first, last, min_cell, min_base, total, region=region,
                    breakdowns=breakdowns)
    by = {bd.dimension: bd for bd in breakdowns}

    def cell_display(dimension: str, value: str) -> str:
        bd = by[dimension]
        cell = bd.cell(value)
        if bd.withheld or cell is None:
            return HIDDEN_MARK if bd.withheld else "0"
        return cell.display(min_cell)

    small_total = 0 < total < min_cell
    figs = report.figures
    chats = f"<{min_cell}" if small_total else str(total)
    figs.append(Figure("total", "chats", chats))
    # Which region these chats are from, so that centres' files can be compared.
    figs.append(Figure(REGION, region or NOT_SET, chats))
    figs.append(Figure("total", "abandoned", cell_display("outcome", ABANDONED)))
    figs.append(Figure("total", "dropped", cell_display("dropped", "yes")))
    figs.append(Figure("total", "professional", cell_display("role", "professional")))
    if (0 < set_apart or small_total) and set_apart < min_cell:
        apart_shown = f"<{min_cell}"
    else:  # with a small period nothing but "<5 chats" is shown: "x", five or more
        apart_shown = HIDDEN_MARK if small_total else str(set_apart)
    figs.append(Figure("total", "set_apart", apart_shown))
    # Mailboxes made and messages left in them in the period (no chat, no mailbox id).
    for name, value in (mailbox_counts or {}).items():
        figs.append(Figure("mailbox", name, f"<{min_cell}" if 0 < value < min_cell
                           else str(value)))

    waits = [int(f["wait_s"]) for f in facts if answered(f) and f.get("wait_s") is not None]
    enough = len(waits) >= min_base and not small_total
    figs.append(Figure("wait", "median_s", str(percentile(waits, 0.5)) if enough else "x"))
    figs.append(Figure("wait", "p90_s", str(percentile(waits, 0.9)) if enough else "x"))

    base = None if small_total else total
    figs.append(Figure("share_pct", "under_18",
                       percent(shown_sum(by["age_group"], under_18, total), base, min_base)))
    decided = [c.value for c in by["decision"].cells if c.value not in (NONE, ABANDONED)]
    figs.append(Figure("share_pct", "reporting_decision",
                       percent(shown_sum(by["decision"], decided, total), base, min_base)))
    for kind in decided:
        figs.append(Figure("share_pct", f"decision:{kind}",
                           percent(shown_sum(by["decision"], [kind], total), base, min_base)))
    figs.append(Figure("share_pct", "referred_on",
                       percent(shown_sum(by["referred_on"], ["yes"], total), base, min_base)))
    feedback_base = shown_sum(by["helped"], ["yes", "partly", "no"], total)
    figs.append(Figure("share_pct", "helped",
                       percent(shown_sum(by["helped"], ["yes"], total), feedback_base, min_base)))
    return report


def to_csv(report: Report) -> str:
    """Long format `dimension,value,count`, one header line, the same rows as the page."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(("dimension", "value", "count"))
    writer.writerows(report.rows())
    return buf.getvalue()
