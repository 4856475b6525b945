"""AWS schedule expressions: parsing, fire times, and the messages for invalid forms."""

from __future__ import annotations

import calendar
import itertools
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone

import pytest

from reelay.errors import InvalidScheduleError
from reelay.events._schedule import CronSchedule, RateSchedule, Schedule, parse_schedule


def at(text: str) -> datetime:
    """An aware UTC datetime from 'YYYY-MM-DDTHH:MM[:SS]'."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def fires(expression: str, after: str, count: int) -> list[str]:
    """The next ``count`` fire times after ``after``, as 'YYYY-MM-DDTHH:MM' strings."""
    schedule = parse_schedule(expression)
    times = itertools.islice(schedule.fire_times(at(after)), count)
    return [t.strftime("%Y-%m-%dT%H:%M") for t in times]


END = "never again"

# (expression, after, the fire times that follow; END where nothing follows them).
# Weekdays checked against a calendar: 2024-03-01 is a Friday, 2024-01-01 a Monday,
# 2024-06-01 a Saturday.
FIRE_TIMES = [
    # The examples from the AWS documentation.
    pytest.param(
        "cron(0 10 * * ? *)",
        "2024-02-28T10:00",
        ["2024-02-29T10:00", "2024-03-01T10:00"],
        id="daily-10am-leap-day",
    ),
    pytest.param(
        "cron(0 10 * * ? *)",
        "2023-02-28T09:59:59",
        ["2023-02-28T10:00", "2023-03-01T10:00"],
        id="daily-10am-no-leap-day",
    ),
    pytest.param(
        "cron(15 12 * * ? *)",
        "2023-12-31T12:15",
        ["2024-01-01T12:15", "2024-01-02T12:15"],
        id="daily-12:15-strictly-after-year-end",
    ),
    pytest.param(
        "cron(0 18 ? * MON-FRI *)",
        "2024-03-01T18:00",
        ["2024-03-04T18:00", "2024-03-05T18:00"],
        id="weekdays-6pm-skips-weekend",
    ),
    pytest.param(
        "cron(0 8 1 * ? *)",
        "2024-12-15T00:00",
        ["2025-01-01T08:00", "2025-02-01T08:00", "2025-03-01T08:00"],
        id="first-of-month-8am",
    ),
    pytest.param(
        "cron(0/15 * * * ? *)",
        "2024-12-31T23:50",
        ["2025-01-01T00:00", "2025-01-01T00:15", "2025-01-01T00:30", "2025-01-01T00:45"],
        id="every-15-minutes-over-new-year",
    ),
    pytest.param(
        "cron(0/10 * ? * MON-FRI *)",
        "2024-03-01T23:55",
        ["2024-03-04T00:00", "2024-03-04T00:10"],
        id="every-10-minutes-weekdays",
    ),
    pytest.param(
        "cron(0/5 8-17 ? * MON-FRI *)",
        "2024-03-01T17:55",
        ["2024-03-04T08:00", "2024-03-04T08:05"],
        id="every-5-minutes-office-hours-friday-evening",
    ),
    pytest.param(
        "cron(0/5 8-17 ? * MON-FRI *)",
        "2024-03-04T07:59:59",
        ["2024-03-04T08:00", "2024-03-04T08:05"],
        id="every-5-minutes-office-hours-morning",
    ),
    pytest.param(
        "cron(0 9 ? * 2#1 *)",
        "2024-01-01T09:00",
        ["2024-02-05T09:00", "2024-03-04T09:00"],
        id="first-monday",
    ),
    pytest.param(
        "cron(0 9 ? * 2#1 *)",
        "2024-12-02T09:00",
        ["2025-01-06T09:00"],
        id="first-monday-over-year-end",
    ),
    # L in Day-of-month: the last day, leap years included (2000 is one, 2100 is not).
    pytest.param(
        "cron(0 0 L * ? *)",
        "2024-01-31T00:00",
        ["2024-02-29T00:00", "2024-03-31T00:00", "2024-04-30T00:00"],
        id="last-day-leap-year",
    ),
    pytest.param(
        "cron(0 0 L * ? *)", "2023-01-31T00:00", ["2023-02-28T00:00"], id="last-day-common-year"
    ),
    pytest.param("cron(30 23 L 2 ? *)", "2099-03-01T00:00", ["2100-02-28T23:30"], id="2100"),
    pytest.param("cron(30 23 L 2 ? *)", "2000-01-01T00:00", ["2000-02-29T23:30"], id="2000"),
    pytest.param(
        "cron(0 0 L * ? *)",
        "2024-12-31T00:00",
        ["2025-01-31T00:00", "2025-02-28T00:00"],
        id="last-day-over-year-end",
    ),
    # W: the weekday nearest the day, never leaving the month.
    pytest.param(
        "cron(0 0 15W * ? *)", "2024-06-01T00:00", ["2024-06-14T00:00"], id="15W-saturday"
    ),
    pytest.param("cron(0 0 15W * ? *)", "2024-09-01T00:00", ["2024-09-16T00:00"], id="15W-sunday"),
    pytest.param("cron(0 0 15W * ? *)", "2024-03-01T00:00", ["2024-03-15T00:00"], id="15W-weekday"),
    pytest.param(
        "cron(0 0 1W * ? *)", "2024-05-31T00:00", ["2024-06-03T00:00"], id="1W-saturday-forward"
    ),
    pytest.param("cron(0 0 1W * ? *)", "2024-08-31T00:00", ["2024-09-02T00:00"], id="1W-sunday"),
    pytest.param(
        "cron(0 0 31W * ? *)",
        "2024-08-01T00:00",
        ["2024-08-30T00:00", "2024-10-31T00:00"],
        id="31W-saturday-and-short-months-skipped",
    ),
    pytest.param(
        "cron(0 0 30W * ? *)", "2024-06-01T00:00", ["2024-06-28T00:00"], id="30W-sunday-backward"
    ),
    pytest.param(
        "cron(0 0 LW * ? *)",
        "2024-02-01T00:00",
        ["2024-02-29T00:00", "2024-03-29T00:00", "2024-04-30T00:00"],
        id="last-weekday",
    ),
    pytest.param(
        "cron(0 0 LW * ? *)", "2024-08-01T00:00", ["2024-08-30T00:00"], id="last-weekday-sat"
    ),
    # L and # in Day-of-week.
    pytest.param(
        "cron(15 10 ? * 6L *)",
        "2024-12-01T00:00",
        ["2024-12-27T10:15", "2025-01-31T10:15"],
        id="last-friday",
    ),
    pytest.param(
        "cron(0 0 ? * FRIL *)", "2024-12-01T00:00", ["2024-12-27T00:00"], id="last-friday-name"
    ),
    pytest.param(
        "cron(0 12 ? * 6#3 *)",
        "2024-01-01T00:00",
        ["2024-01-19T12:00", "2024-02-16T12:00"],
        id="third-friday",
    ),
    pytest.param(
        "cron(0 0 ? * 6#5 *)",
        "2024-03-01T00:00",
        ["2024-03-29T00:00", "2024-05-31T00:00", "2024-08-30T00:00"],
        id="fifth-friday-skips-months-without-one",
    ),
    pytest.param(
        "cron(0 0 ? * THU#5 *)", "2024-01-01T00:00", ["2024-02-29T00:00"], id="fifth-thu-leap"
    ),
    pytest.param(
        "cron(0 0 ? * L *)",
        "2024-03-01T00:00",
        ["2024-03-02T00:00", "2024-03-09T00:00"],
        id="L-alone-is-saturday",
    ),
    # SUN is 1 and SAT is 7.
    pytest.param(
        "cron(0 0 ? * 1 *)", "2024-03-01T00:00", ["2024-03-03T00:00"], id="day-1-is-sunday"
    ),
    pytest.param(
        "cron(0 0 ? * 7 *)", "2024-03-01T00:00", ["2024-03-02T00:00"], id="day-7-is-saturday"
    ),
    pytest.param(
        "cron(0 0 ? * SUN,SAT *)",
        "2024-03-01T00:00",
        ["2024-03-02T00:00", "2024-03-03T00:00", "2024-03-09T00:00"],
        id="weekend-names",
    ),
    pytest.param(
        "cron(0 18 ? * mon-fri *)",
        "2024-03-01T18:00",
        ["2024-03-04T18:00"],
        id="names-case-insensitive",
    ),
    # Lists, ranges and increments.
    pytest.param(
        "cron(10-40/15 9,17 * * ? *)",
        "2024-03-01T09:00",
        ["2024-03-01T09:10", "2024-03-01T09:25", "2024-03-01T09:40", "2024-03-01T17:10"],
        id="range-with-increment-and-hour-list",
    ),
    pytest.param(
        "cron(*/20 0 * * ? *)",
        "2024-03-01T00:00",
        ["2024-03-01T00:20", "2024-03-01T00:40", "2024-03-02T00:00"],
        id="star-increment",
    ),
    pytest.param(
        "cron(0 0 1/10 * ? *)",
        "2024-01-01T00:00",
        ["2024-01-11T00:00", "2024-01-21T00:00", "2024-01-31T00:00", "2024-02-01T00:00"],
        id="day-of-month-increment",
    ),
    pytest.param(
        "cron(0 0 1 JAN,JUL ? *)",
        "2024-01-01T00:00",
        ["2024-07-01T00:00", "2025-01-01T00:00"],
        id="month-names",
    ),
    pytest.param(
        "cron(0 0 1 1/6 ? *)",
        "2024-01-01T00:00",
        ["2024-07-01T00:00", "2025-01-01T00:00"],
        id="month-increment",
    ),
    pytest.param(
        "cron(0 22-2 * * ? *)",
        "2024-03-01T21:00",
        [
            "2024-03-01T22:00",
            "2024-03-01T23:00",
            "2024-03-02T00:00",
            "2024-03-02T01:00",
            "2024-03-02T02:00",
            "2024-03-02T22:00",
        ],
        id="hour-range-wraps-midnight",
    ),
    pytest.param(
        "cron(0 0 ? * FRI-MON *)",
        "2024-03-01T00:00",
        ["2024-03-02T00:00", "2024-03-03T00:00", "2024-03-04T00:00", "2024-03-08T00:00"],
        id="weekday-range-wraps",
    ),
    pytest.param(
        "cron(0 0 1 NOV-FEB ? *)",
        "2024-02-01T00:00",
        ["2024-11-01T00:00", "2024-12-01T00:00", "2025-01-01T00:00", "2025-02-01T00:00"],
        id="month-range-wraps",
    ),
    # The Year field.
    pytest.param(
        "cron(0 0 1 1 ? 2030-2031)",
        "2024-06-01T00:00",
        ["2030-01-01T00:00", "2031-01-01T00:00", END],
        id="year-range-then-never",
    ),
    pytest.param(
        "cron(0 0 1 1 ? 2030/50)",
        "2024-06-01T00:00",
        ["2030-01-01T00:00", "2080-01-01T00:00", "2130-01-01T00:00", "2180-01-01T00:00", END],
        id="year-increment-ends-before-2200",
    ),
    pytest.param(
        "cron(0 0 1 1 ? *)", "1960-05-05T00:00", ["1970-01-01T00:00"], id="years-start-1970"
    ),
    pytest.param("cron(59 23 31 12 ? *)", "2199-06-01T00:00", ["2199-12-31T23:59", END], id="2199"),
    # Expressions that can never fire, or never again.
    pytest.param("cron(0 0 31 2 ? *)", "1970-01-01T00:00", [END], id="feb-31-never"),
    pytest.param("cron(0 0 30 FEB ? *)", "1970-01-01T00:00", [END], id="feb-30-never"),
    pytest.param("cron(0 0 31 4,6,9,11 ? *)", "1970-01-01T00:00", [END], id="31-in-short-months"),
    pytest.param("cron(0 0 ? 2 6#5 2027)", "2020-01-01T00:00", [END], id="no-fifth-friday"),
    pytest.param("cron(0 0 1 1 ? 2025)", "2025-01-01T00:00", [END], id="past-its-only-year"),
    pytest.param("cron(* * * * ? *)", "2199-12-31T23:59", [END], id="past-2199"),
]


@pytest.mark.parametrize(("expression", "after", "expected"), FIRE_TIMES)
def test_cron_fire_times(expression: str, after: str, expected: list[str]) -> None:
    if expected and expected[-1] == END:
        # Exactly these, then never again.
        assert fires(expression, after, len(expected)) == expected[:-1]
    else:
        assert fires(expression, after, len(expected)) == expected


def test_every_minute_is_strictly_after() -> None:
    schedule = parse_schedule("cron(* * * * ? *)")
    assert schedule.next_after(at("2024-03-01T10:00")) == at("2024-03-01T10:01")
    assert schedule.next_after(at("2024-03-01T10:00:00.000001")) == at("2024-03-01T10:01")
    assert schedule.next_after(at("2024-03-01T09:59:59.999999")) == at("2024-03-01T10:00")


def test_naive_moment_is_utc_and_aware_moment_is_converted() -> None:
    schedule = parse_schedule("cron(0 10 * * ? *)")
    assert schedule.next_after(datetime(2024, 3, 1, 9, 0)) == at("2024-03-01T10:00")
    # 11:30 at UTC+2 is 09:30 UTC: today's 10:00 UTC is still ahead.
    plus_two = timezone(timedelta(hours=2))
    result = schedule.next_after(datetime(2024, 3, 1, 11, 30, tzinfo=plus_two))
    assert result == at("2024-03-01T10:00")
    assert result is not None and result.tzinfo is UTC


def test_never_firing_expression_returns_none_from_far_and_near() -> None:
    schedule = parse_schedule("cron(0 0 31 2 ? *)")
    assert schedule.next_after(at("1970-01-01T00:00")) is None
    assert schedule.next_after(datetime(9999, 12, 31, 23, 59, tzinfo=UTC)) is None
    assert list(schedule.fire_times(at("1999-01-01T00:00"))) == []


# ---------------------------------------------------------------------------
# A cross-check of the day fields against a plain, independent reading of them:
# every day of 2023-2025 (a leap year and both neighbours) tested one at a time.


def _aws_weekday(day: date) -> int:
    return {6: 1, 0: 2, 1: 3, 2: 4, 3: 5, 4: 6, 5: 7}[day.weekday()]


def _is_weekday(day: date) -> bool:
    return day.weekday() < 5


def _last(day: date) -> int:
    return calendar.monthrange(day.year, day.month)[1]


def _nearest_weekday(day: date, target: int) -> bool:
    """Is ``day`` the weekday nearest day ``target`` of its month (staying in the month)?"""
    if target > _last(day):
        return False
    candidates = [
        d
        for d in range(1, _last(day) + 1)
        if _is_weekday(date(day.year, day.month, d)) and abs(d - target) <= 2
    ]
    best = min(candidates, key=lambda d: (abs(d - target), d))
    return day.day == best


DAY_RULES: dict[str, Callable[[date], bool]] = {
    "cron(0 0 L * ? *)": lambda d: d.day == _last(d),
    "cron(0 0 LW * ? *)": lambda d: (
        _is_weekday(d)
        and all(not _is_weekday(d + timedelta(n)) for n in range(1, _last(d) - d.day + 1))
    ),
    "cron(0 0 15W * ? *)": lambda d: _nearest_weekday(d, 15),
    "cron(0 0 1W * ? *)": lambda d: _nearest_weekday(d, 1),
    "cron(0 0 31W * ? *)": lambda d: _nearest_weekday(d, 31),
    "cron(0 0 ? * 6L *)": lambda d: _aws_weekday(d) == 6 and d.day + 7 > _last(d),
    "cron(0 0 ? * 1L *)": lambda d: _aws_weekday(d) == 1 and d.day + 7 > _last(d),
    "cron(0 0 ? * 2#1 *)": lambda d: _aws_weekday(d) == 2 and d.day <= 7,
    "cron(0 0 ? * 4#5 *)": lambda d: _aws_weekday(d) == 4 and d.day > 28,
    "cron(0 0 ? * 7#2 *)": lambda d: _aws_weekday(d) == 7 and 8 <= d.day <= 14,
    "cron(0 0 ? * MON-FRI *)": _is_weekday,
    "cron(0 0 ? * SAT-SUN *)": lambda d: not _is_weekday(d),
    "cron(0 0 1,15,29-31 * ? *)": lambda d: d.day in (1, 15, 29, 30, 31),
}


@pytest.mark.parametrize("expression", list(DAY_RULES))
def test_day_fields_agree_with_a_plain_reading(expression: str) -> None:
    rule = DAY_RULES[expression]
    expected = [
        day
        for day in (date(2023, 1, 1) + timedelta(n) for n in range(365 + 366 + 365))
        if rule(day)
    ]
    schedule = parse_schedule(expression)
    got = [
        t.date()
        for t in itertools.takewhile(
            lambda t: t.year < 2026, schedule.fire_times(at("2022-12-31T23:59"))
        )
    ]
    assert got == expected


# ---------------------------------------------------------------------------
# rate(...)


def test_rate_counts_from_the_epoch_by_default() -> None:
    schedule = parse_schedule("rate(5 minutes)")
    assert isinstance(schedule, RateSchedule)
    assert schedule.period == timedelta(minutes=5)
    assert schedule.next_after(at("2024-03-01T12:03:10")) == at("2024-03-01T12:05")
    assert schedule.next_after(at("2024-03-01T12:05")) == at("2024-03-01T12:10")
    assert schedule.next_after(datetime(2024, 3, 1, 12, 9, 59)) == at("2024-03-01T12:10")


@pytest.mark.parametrize(
    ("expression", "period"),
    [
        ("rate(1 minute)", timedelta(minutes=1)),
        ("rate(2 minutes)", timedelta(minutes=2)),
        ("rate(1 hour)", timedelta(hours=1)),
        ("rate(12 hours)", timedelta(hours=12)),
        ("rate(1 day)", timedelta(days=1)),
        ("rate(7 days)", timedelta(days=7)),
        ("  rate(  90   minutes )  ", timedelta(minutes=90)),
    ],
)
def test_rate_units(expression: str, period: timedelta) -> None:
    schedule = parse_schedule(expression)
    assert isinstance(schedule, RateSchedule)
    assert schedule.period == period
    assert schedule.expression == expression.strip()


def test_rate_days_fire_at_midnight_utc_by_default() -> None:
    schedule = parse_schedule("rate(1 day)")
    assert list(itertools.islice(schedule.fire_times(at("2024-02-28T06:00")), 2)) == [
        at("2024-02-29T00:00"),
        at("2024-03-01T00:00"),
    ]
    # 1970-01-01 + k * 7 days: the epoch was a Thursday, so weekly rates fire on Thursdays.
    weekly = parse_schedule("rate(7 days)").next_after(at("2024-03-01T00:00"))
    assert weekly == at("2024-03-07T00:00")


def test_rate_anchor_makes_restarts_deterministic() -> None:
    anchor = at("2024-01-01T00:02:30")
    schedule = parse_schedule("rate(1 hour)", anchor=anchor)
    assert schedule.next_after(at("2024-05-05T10:00")) == at("2024-05-05T10:02:30")
    assert schedule.next_after(at("2024-05-05T10:02:30")) == at("2024-05-05T11:02:30")
    # Before the anchor the grid extends backwards: anchor + k * period for negative k too.
    assert schedule.next_after(at("2023-12-31T22:30")) == at("2023-12-31T23:02:30")
    # Two schedules parsed from the same expression and anchor agree (a restart).
    again = parse_schedule("rate(1 hour)", anchor=datetime(2024, 1, 1, 0, 2, 30))
    assert again == schedule
    assert again.next_after(at("2030-01-01T00:00")) == schedule.next_after(at("2030-01-01T00:00"))


def test_rate_anchor_in_another_zone_is_the_same_instant() -> None:
    anchor = datetime(2024, 1, 1, 3, 0, tzinfo=timezone(timedelta(hours=3)))
    schedule = parse_schedule("rate(2 hours)", anchor=anchor)
    assert isinstance(schedule, RateSchedule)
    assert schedule.anchor == at("2024-01-01T00:00")
    assert schedule.next_after(at("2024-01-01T01:00")) == at("2024-01-01T02:00")


def test_rate_past_the_end_of_time_is_none() -> None:
    assert parse_schedule("rate(1 day)").next_after(datetime(9999, 12, 31, 12, tzinfo=UTC)) is None


def test_parsed_types() -> None:
    cron = parse_schedule("cron(0 10 * * ? *)")
    assert isinstance(cron, CronSchedule) and isinstance(cron, Schedule)
    assert cron.expression == "cron(0 10 * * ? *)"
    assert cron.minutes == (0,) and cron.hours == (10,)
    assert cron.years == tuple(range(1970, 2200))
    assert parse_schedule("cron(0 10 * * ? *)") == cron


# ---------------------------------------------------------------------------
# Invalid expressions: each message quotes the expression and names the problem.

INVALID = [
    # Not an expression at all.
    pytest.param("", ["rate(value unit)", "cron("], id="empty"),
    pytest.param("every 5 minutes", ["'every 5 minutes'", "rate(value unit)"], id="garbage"),
    pytest.param("cron 0 10 * * ? *", ["rate(value unit)", "cron("], id="no-parentheses"),
    pytest.param("at(2024-01-01T00:00:00)", ["rate(value unit)"], id="at-not-supported"),
    pytest.param("0 10 * * ? *", ["rate(value unit)"], id="bare-cron"),
    # rate(...)
    pytest.param("rate(0 minutes)", ["rate value '0'", "positive integer"], id="rate-zero"),
    pytest.param("rate(-5 minutes)", ["rate value '-5'", "positive integer"], id="rate-negative"),
    pytest.param("rate(1.5 hours)", ["rate value '1.5'", "positive integer"], id="rate-fraction"),
    pytest.param("rate(five minutes)", ["'five'", "positive integer"], id="rate-word"),
    pytest.param("rate(1 minutes)", ["singular", "'minute'", "rate(1 minute)"], id="rate-1-plural"),
    pytest.param("rate(1 days)", ["singular", "'day'"], id="rate-1-days"),
    pytest.param("rate(5 minute)", ["plural", "'minutes'", "rate(5 minutes)"], id="rate-5-sing"),
    pytest.param("rate(2 hour)", ["plural", "'hours'"], id="rate-2-hour"),
    pytest.param(
        "rate(5 weeks)",
        ["rate unit 'weeks'", "minute, minutes, hour, hours, day, days"],
        id="rate-weeks",
    ),
    pytest.param("rate(30 seconds)", ["rate unit 'seconds'"], id="rate-seconds"),
    pytest.param("rate(5)", ["rate(value unit)"], id="rate-no-unit"),
    pytest.param("rate(5 minutes 2)", ["rate(value unit)"], id="rate-extra"),
    pytest.param("rate()", ["rate(value unit)"], id="rate-empty"),
    pytest.param("rate(99999999999 days)", ["too large"], id="rate-huge"),
    # Field count.
    pytest.param("cron(0 10 * * ?)", ["6 fields", "got 5", "Year"], id="five-fields"),
    pytest.param("cron(0 0 10 * * ? *)", ["6 fields", "got 7"], id="seven-fields"),
    pytest.param("cron()", ["6 fields", "got 0"], id="no-fields"),
    # The "?" rule.
    pytest.param("cron(0 10 * * * *)", ["exactly one", "'?'", "neither"], id="neither-?"),
    pytest.param("cron(0 10 1 * MON *)", ["exactly one", "neither"], id="both-set"),
    pytest.param("cron(0 10 ? * ? *)", ["exactly one", "both"], id="both-?"),
    pytest.param("cron(0 10 ?,1 * ? *)", ["Day-of-month", "'?' must be the whole"], id="?-list"),
    pytest.param("cron(? 10 * * ? *)", ["Minutes", "'?' is not allowed"], id="?-in-minutes"),
    # Out-of-range values, one per field.
    pytest.param("cron(60 10 * * ? *)", ["Minutes", "'60'", "0-59"], id="minute-60"),
    pytest.param("cron(0 24 * * ? *)", ["Hours", "'24'", "0-23"], id="hour-24"),
    pytest.param("cron(0 0 0 * ? *)", ["Day-of-month", "'0'", "1-31"], id="day-0"),
    pytest.param("cron(0 0 32 * ? *)", ["Day-of-month", "'32'", "1-31"], id="day-32"),
    pytest.param("cron(0 0 1 13 ? *)", ["Month", "'13'", "1-12 or JAN-DEC"], id="month-13"),
    pytest.param("cron(0 0 1 0 ? *)", ["Month", "'0'", "1-12"], id="month-0"),
    pytest.param("cron(0 0 ? * 0 *)", ["Day-of-week", "'0'", "1-7 or SUN-SAT"], id="dow-0"),
    pytest.param("cron(0 0 ? * 8 *)", ["Day-of-week", "'8'", "1-7"], id="dow-8"),
    pytest.param("cron(0 0 * * ? 1969)", ["Year", "'1969'", "1970-2199"], id="year-1969"),
    pytest.param("cron(0 0 * * ? 2200)", ["Year", "'2200'", "1970-2199"], id="year-2200"),
    pytest.param("cron(0 0 * * ? 2030-2025)", ["Year", "backwards"], id="year-backwards"),
    pytest.param("cron(0 0-60 * * ? *)", ["Hours", "'60'", "0-23"], id="range-end-out"),
    # Bad names and tokens.
    pytest.param("cron(0 10 * FOO ? *)", ["Month", "'FOO'", "JAN-DEC"], id="bad-month"),
    pytest.param("cron(0 10 ? * MONDAY *)", ["Day-of-week", "'MONDAY'", "SUN-SAT"], id="bad-day"),
    pytest.param("cron(0 10 ? JAN-FOO * *)", ["Month", "'FOO'", "JAN-DEC"], id="bad-month-range"),
    pytest.param("cron(0 10 ? * JAN *)", ["Day-of-week", "'JAN'"], id="month-name-as-day"),
    pytest.param("cron(0 10 MON * ? *)", ["Day-of-month", "'MON'", "1-31"], id="day-name-in-dom"),
    pytest.param("cron(a 10 * * ? *)", ["Minutes", "'A'"], id="letter"),
    pytest.param("cron(0,,5 10 * * ? *)", ["Minutes", "empty item"], id="empty-list-item"),
    pytest.param("cron(0, 10 * * ? *)", ["Minutes", "'0,'", "empty item"], id="trailing-comma"),
    pytest.param("cron(-5 10 * * ? *)", ["Minutes", "value ''"], id="leading-dash"),
    pytest.param("cron(1-2-3 10 * * ? *)", ["Minutes", "'2-3'"], id="double-range"),
    # Increments.
    pytest.param("cron(0/0 * * * ? *)", ["Minutes", "increment 0", "1-60"], id="step-0"),
    pytest.param("cron(0/x * * * ? *)", ["Minutes", "increment 'X'"], id="step-word"),
    pytest.param("cron(0/ * * * ? *)", ["Minutes", "increment ''"], id="step-empty"),
    pytest.param("cron(0 0/25 * * ? *)", ["Hours", "increment 25", "1-24"], id="step-too-big"),
    pytest.param("cron(0 0 ? * 1/2 *)", ["Day-of-week", "'/'", ", - * ? L #"], id="dow-step"),
    # L, W and # where AWS does not allow them.
    pytest.param("cron(L 0 * * ? *)", ["Minutes", "'L'", ", - * /"], id="L-in-minutes"),
    pytest.param("cron(0 0 * L ? *)", ["Month", "'L'"], id="L-in-month"),
    pytest.param("cron(0 0 * * ? L)", ["Year", "'L'"], id="L-in-year"),
    pytest.param("cron(0 0 1#2 * ? *)", ["Day-of-month", "'#'"], id="#-in-dom"),
    pytest.param("cron(0 0 ? * 2W *)", ["Day-of-week", "'W'"], id="W-in-dow"),
    pytest.param("cron(0 0 1,L * ? *)", ["Day-of-month", "L, LW or nW"], id="L-in-list"),
    pytest.param("cron(0 0 L-3 * ? *)", ["Day-of-month", "L, LW or nW"], id="L-offset"),
    pytest.param("cron(0 0 1-5W * ? *)", ["Day-of-month", "L, LW or nW"], id="W-range"),
    pytest.param("cron(0 0 WL * ? *)", ["Day-of-month", "L, LW or nW"], id="WL"),
    pytest.param("cron(0 0 32W * ? *)", ["Day-of-month", "'32'", "1-31"], id="32W"),
    pytest.param("cron(0 0 0W * ? *)", ["Day-of-month", "'0'", "1-31"], id="0W"),
    pytest.param(
        "cron(0 0 ? * 3#1,6#3 *)", ["Day-of-week", "n#k", "alone in the field"], id="two-#"
    ),
    pytest.param("cron(0 0 ? * 6#0 *)", ["Day-of-week", "occurrence '0'", "1-5"], id="#0"),
    pytest.param("cron(0 0 ? * 6#6 *)", ["Day-of-week", "occurrence '6'", "1-5"], id="#6"),
    pytest.param("cron(0 0 ? * 8#1 *)", ["Day-of-week", "'8'", "1-7"], id="#-bad-day"),
    pytest.param("cron(0 0 ? * 8L *)", ["Day-of-week", "'8'", "1-7"], id="L-bad-day"),
    pytest.param("cron(0 0 ? * 2,6L *)", ["Day-of-week", "nL", "alone"], id="L-in-list"),
    pytest.param("cron(0 0 ? * 6#3-4 *)", ["Day-of-week", "n#k"], id="#-range"),
]


@pytest.mark.parametrize(("expression", "fragments"), INVALID)
def test_invalid_expressions(expression: str, fragments: list[str]) -> None:
    with pytest.raises(InvalidScheduleError) as info:
        parse_schedule(expression)
    message = str(info.value)
    for fragment in fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"
    if expression.strip():
        assert repr(expression.strip()) in message


def test_invalid_schedule_error_is_a_value_error() -> None:
    with pytest.raises(ValueError, match="rate"):
        parse_schedule("rate(0 minutes)")


def test_non_string_expression() -> None:
    with pytest.raises(InvalidScheduleError, match=r"must be a string.*got int"):
        parse_schedule(5)  # type: ignore[arg-type]
