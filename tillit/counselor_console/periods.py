"""A period of whole days typed into a staff page's form (`from`, `to`) or the CLI's
`tillit stats`: checked and bounded, or a `PeriodError` that says why not."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, timedelta

DEFAULT_DAYS = 30
MAX_DAYS = 366
DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class PeriodError(ValueError):
    """A period the user typed that cannot be used; the message says why."""


def parse_period(query: Mapping[str, str], today: date | None = None) -> tuple[date, date]:
    """`from` and `to` (both days included); default the 30 days up to `to`, or today."""
    today = today or date.today()
    last = _day(query.get("to"), "to") or today
    first = _day(query.get("from"), "from") or last - timedelta(days=DEFAULT_DAYS - 1)
    if first > last:
        raise PeriodError("'from' must be on or before 'to'")
    if (last - first).days + 1 > MAX_DAYS:
        raise PeriodError(f"a period can be at most {MAX_DAYS} days long")
    return first, last


def _day(raw: str | None, name: str) -> date | None:
    if raw is None or raw == "":
        return None
    if not DATE_RE.match(raw):
        raise PeriodError(f"'{name}' must be a date written YYYY-MM-DD")
    try:
        day = date.fromisoformat(raw)
    except ValueError:
        raise PeriodError(f"'{name}' is not a real date: {raw}") from None
    if not 2000 <= day.year <= 2100:
        raise PeriodError(f"'{name}' must be between the years 2000 and 2100")
    return day
