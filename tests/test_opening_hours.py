"""Opening hours: the schedule (clock given), and `chat:start` out of hours on a real server."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from protocol_client import error_code, ok
from support import CLOSED_ALL_WEEK, connect_visitor, server_fixture

from tillit.chat_server.opening_hours import OpeningHours, parse_range

STOCKHOLM = ZoneInfo("Europe/Stockholm")
EVENINGS = {
    "timezone": "Europe/Stockholm",
    "mon": ["15:00-21:00"], "tue": ["15:00-21:00"], "wed": [], "thu": ["15:00-21:00"],
    "fri": ["15:00-21:00"], "sat": ["10:00-12:00", "13:00-16:00"], "sun": [],
    "closed_dates": ["2026-12-24"],
}


def at(*args: int) -> dt.datetime:
    return dt.datetime(*args, tzinfo=STOCKHOLM)


def test_open_inside_the_ranges_and_closed_outside() -> None:
    hours = OpeningHours.from_settings(EVENINGS)
    assert hours.is_open(at(2026, 11, 23, 15, 0))  # Monday 15:00, first minute
    assert hours.is_open(at(2026, 11, 23, 20, 59))
    assert not hours.is_open(at(2026, 11, 23, 21, 0))  # the end is exclusive
    assert not hours.is_open(at(2026, 11, 23, 14, 59))
    assert not hours.is_open(at(2026, 11, 25, 18, 0))  # Wednesday: closed all day
    assert hours.is_open(at(2026, 11, 28, 11, 0)) and not hours.is_open(at(2026, 11, 28, 12, 30))
    assert not hours.is_open(at(2026, 12, 24, 16, 0))  # a Thursday, but a closed date


def test_wall_clock_time_is_local_whatever_the_server_zone() -> None:
    hours = OpeningHours.from_settings(EVENINGS)
    # 14:30 UTC is 15:30 in Stockholm in winter (open) ...
    assert hours.is_open(dt.datetime(2026, 11, 23, 14, 30, tzinfo=dt.UTC))
    # ... and 16:30 in summer, when 13:30 UTC is 15:30 local.
    assert hours.is_open(dt.datetime(2026, 6, 1, 13, 30, tzinfo=dt.UTC))
    assert not hours.is_open(dt.datetime(2026, 6, 1, 12, 30, tzinfo=dt.UTC))


def test_default_is_open_around_the_clock() -> None:
    hours = OpeningHours.from_settings(None)
    assert hours.always_open and hours.is_open(at(2026, 1, 1, 3, 0))
    assert not OpeningHours.from_settings(EVENINGS).always_open


def test_week_lists_ranges_monday_first() -> None:
    week = OpeningHours.from_settings(EVENINGS).week()
    assert week[0] == (0, ["15:00–21:00"]) and week[2] == (2, []) and week[5][1] == [
        "10:00–12:00", "13:00–16:00"]


@pytest.mark.parametrize("bad", ["15-21", "21:00-15:00", "10:75-11:00", "24:30-25:00"])
def test_a_mistyped_range_is_refused_at_start_up(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_range(bad)


closed_server = server_fixture(CLOSED_ALL_WEEK, doc="The real server with every day closed.")


async def test_out_of_hours_chat_start_is_refused_with_closed(
    closed_server, make_counselor
) -> None:
    visitor = await connect_visitor(closed_server.base_url)
    try:
        ack = await visitor.start(lang="ar", danger_now=True)
        assert error_code(ack) == "closed"
        assert ack["error"]["message"]
        # Nobody sits in a queue that no one will answer.
        counselor = await make_counselor(closed_server)
        assert ok(await counselor.call("queue:list", {}))["queue"] == []
    finally:
        await visitor.disconnect()


def test_out_of_hours_page_shows_hours_and_help(closed_server) -> None:
    import urllib.request

    with urllib.request.urlopen(f"{closed_server.base_url}/?lang=ar") as resp:
        html = resp.read().decode()
    assert '"open_now": false' in html
    assert "مغلق" in html  # "Closed", beside each day
    assert 'href="tel:116111"' in html and 'href="tel:020505050"' in html
