"""Opening hours as data (`[hours]` in config/default.toml): are we open now, and when.

A centre's counselors work set hours; outside them a visitor must not sit in a queue
nobody will answer (docs/protocol.md E3: `closed`, with the opening hours and the
referral resources). `chat:start` asks `is_open()`; the visitor page shows `week()` in
the visitor's language. Times are wall-clock times in `hours.timezone`, so daylight saving
needs no care here.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from typing import Any
from zoneinfo import ZoneInfo

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_RANGE = re.compile(r"^\s*(\d{1,2}):(\d{2})\s*-\s*(\d{1,2}):(\d{2})\s*$")


def _minutes(hours: str, minutes: str) -> int:
    value = int(hours) * 60 + int(minutes)
    if int(minutes) > 59 or value > 24 * 60:
        raise ValueError(f"not a time of day: {hours}:{minutes}")
    return value


def parse_range(text: str) -> tuple[int, int]:
    """`"15:00-21:00"` → minutes after midnight `(900, 1260)`; `24:00` ends a day."""
    match = _RANGE.match(text)
    if not match:
        raise ValueError(f"opening hours: {text!r} is not like '15:00-21:00'")
    start, end = _minutes(*match.group(1, 2)), _minutes(*match.group(3, 4))
    if end <= start:
        raise ValueError(f"opening hours: {text!r} ends before it starts")
    return start, end


@dataclass(frozen=True)
class OpeningHours:
    """A weekly schedule plus dates on which the service is closed all day."""

    zone: ZoneInfo
    week_ranges: dict[str, tuple[tuple[int, int], ...]]
    closed_dates: frozenset[dt.date]

    @classmethod
    def from_settings(cls, hours: dict[str, Any] | None) -> OpeningHours:
        """Reads `[hours]`; a missing section means open all day, every day."""
        hours = hours or {}
        zone = ZoneInfo(hours.get("timezone") or "Europe/Stockholm")
        week: dict[str, tuple[tuple[int, int], ...]] = {}
        for day in DAYS:
            spans = hours.get(day, ["00:00-24:00"])
            if isinstance(spans, str):
                spans = [spans]
            week[day] = tuple(sorted(parse_range(s) for s in spans if s.strip()))
        closed = frozenset(dt.date.fromisoformat(d) for d in hours.get("closed_dates", []))
        return cls(zone, week, closed)

    def is_open(self, now: dt.datetime | None = None) -> bool:
        local = (now or dt.datetime.now(dt.UTC)).astimezone(self.zone)
        if local.date() in self.closed_dates:
            return False
        minute = local.hour * 60 + local.minute
        return any(a <= minute < b for a, b in self.week_ranges[DAYS[local.weekday()]])

    @property
    def always_open(self) -> bool:
        return not self.closed_dates and all(
            r == ((0, 24 * 60),) for r in self.week_ranges.values()
        )

    def week(self) -> list[tuple[int, list[str]]]:
        """`[(weekday 0..6, ["15:00–21:00", ...]), ...]`, Monday first; no ranges: closed."""
        return [
            (i, [f"{_hhmm(a)}–{_hhmm(b)}" for a, b in self.week_ranges[day]])
            for i, day in enumerate(DAYS)
        ]

    def upcoming_closed_dates(self, today: dt.date | None = None) -> list[dt.date]:
        today = today or dt.datetime.now(self.zone).date()
        return sorted(d for d in self.closed_dates if d >= today)


def _hhmm(minutes: int) -> str:
    return f"{minutes // 60:02d}:{minutes % 60:02d}"
