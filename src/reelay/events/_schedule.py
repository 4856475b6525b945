"""AWS schedule expressions: ``rate(value unit)`` and ``cron(fields)``.

The language is the one EventBridge scheduled rules, EventBridge Scheduler and the
``schedule:`` event of serverless.yml accept, so an expression that works on AWS works
here unchanged and means the same thing:

``rate(value unit)``
    ``value`` is a positive integer and ``unit`` one of ``minute``, ``hour``, ``day``;
    AWS insists on the singular for 1 and the plural otherwise (``rate(1 hour)``,
    ``rate(5 hours)``). AWS starts counting when the rule is created; reelay counts
    from a fixed *anchor* (default 1970-01-01T00:00Z) so that a restart fires at the
    same instants as the process it replaced.

``cron(Minutes Hours Day-of-month Month Day-of-week Year)``
    Six fields, all in UTC. ``,`` lists, ``-`` ranges, ``*`` all values, ``/``
    increments (``0/15``, ``*/15``, ``10-40/10``). Exactly one of Day-of-month and
    Day-of-week is ``?``. Day-of-month also takes ``L`` (last day), ``LW`` (last
    weekday) and ``nW`` (weekday nearest day *n*, never leaving the month);
    Day-of-week takes ``L`` (Saturday, the last day of the week), ``nL`` (last *n*-day
    of the month) and ``n#k`` (*k*-th *n*-day of the month). Months are 1-12 or
    ``JAN``-``DEC``; days of the week are 1-7 or ``SUN``-``SAT`` with **SUN = 1** and
    SAT = 7, as in Quartz and unlike Unix cron; years are 1970-2199. Names and
    letters are case-insensitive. A range whose start is after its end wraps around
    (``FRI-MON``, ``22-2``), as in Quartz, except in the Year field.

`parse_schedule` validates an expression completely and returns a `Schedule`, whose
`Schedule.next_after` gives the first fire time strictly after a moment.
"""

from __future__ import annotations

import calendar
import re
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

from reelay.errors import InvalidScheduleError

__all__ = ["CronSchedule", "RateSchedule", "Schedule", "parse_schedule"]

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MIN_YEAR = 1970
MAX_YEAR = 2199

_FORMS = "rate(value unit) or cron(Minutes Hours Day-of-month Month Day-of-week Year)"
_RATE_UNITS = {
    "minute": timedelta(minutes=1),
    "hour": timedelta(hours=1),
    "day": timedelta(days=1),
}
_RATE_UNIT_CHOICES = "minute, minutes, hour, hours, day, days"

_MONTH_NAMES = {name.upper(): i for i, name in enumerate(calendar.month_abbr) if name}
_DAY_NAMES = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_FIELD_NAMES = ("Minutes", "Hours", "Day-of-month", "Month", "Day-of-week", "Year")
# The wildcards each field accepts, as AWS documents them.
_WILDCARDS = {
    "Minutes": ", - * /",
    "Hours": ", - * /",
    "Day-of-month": ", - * ? / L W",
    "Month": ", - * /",
    "Day-of-week": ", - * ? L #",
    "Year": ", - * /",
}


class Schedule(ABC):
    """A parsed schedule expression; ask it when it fires next.

    All times are UTC. Instances are immutable and compare equal when they were parsed
    from the same expression (and, for rates, anchor).
    """

    expression: str

    @abstractmethod
    def next_after(self, moment: datetime) -> datetime | None:
        """Return the first fire time strictly after ``moment``, or None if none remains.

        ``moment`` may be aware (any zone) or naive, which is taken to be UTC. The result
        is an aware UTC datetime.
        """

    def fire_times(self, after: datetime) -> Iterator[datetime]:
        """Yield fire times strictly after ``after``, in order, until none remains.

        Infinite for rates and for crons that fire up to 2199; callers bound it.
        """
        moment: datetime | None = after
        while moment is not None:
            moment = self.next_after(moment)
            if moment is not None:
                yield moment


@dataclass(frozen=True)
class RateSchedule(Schedule):
    """``rate(value unit)``: fires at ``anchor + k * period`` for every integer ``k``."""

    expression: str
    period: timedelta
    anchor: datetime = EPOCH

    def next_after(self, moment: datetime) -> datetime | None:
        """Return the first ``anchor + k * period`` strictly after ``moment``."""
        elapsed = _as_utc(moment) - self.anchor
        # timedelta // timedelta is exact integer floor division, so there is no float
        # rounding drift however far from the anchor the moment is.
        k = elapsed // self.period + 1
        try:
            return self.anchor + k * self.period
        except OverflowError:
            return None


@dataclass(frozen=True)
class CronSchedule(Schedule):
    """``cron(...)``: the parsed fields of a six-field AWS cron expression.

    ``minutes``, ``hours``, ``months`` and ``years`` are sorted tuples of the values the
    fields allow. The two day fields are kept as small rules (`_DayOfMonth`,
    `_DayOfWeek`) because ``L``, ``W`` and ``#`` depend on the month being looked at.
    """

    expression: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    day_of_month: _DayOfMonth | None  # None where the field is "?"
    months: tuple[int, ...]
    day_of_week: _DayOfWeek | None  # None where the field is "?"
    years: tuple[int, ...]

    def next_after(self, moment: datetime) -> datetime | None:
        """Return the first matching minute strictly after ``moment``, None past 2199.

        Walks years, then months, then only the days of that month that match, then
        hours and minutes, so a search costs at most one step per month up to 2199
        (about 2,800) even for an expression that can never fire.
        """
        moment = _as_utc(moment)
        if moment.year > MAX_YEAR:
            return None
        start = moment.replace(second=0, microsecond=0) + timedelta(minutes=1)
        start_month = (start.year, start.month)
        for year in self.years:
            if year < start.year:
                continue
            for month in self.months:
                if (year, month) < start_month:
                    continue
                for day in self._days(year, month):
                    if date(year, month, day) < start.date():
                        continue
                    first_day = date(year, month, day) == start.date()
                    for hour in self.hours:
                        if first_day and hour < start.hour:
                            continue
                        for minute in self.minutes:
                            if first_day and hour == start.hour and minute < start.minute:
                                continue
                            return datetime(year, month, day, hour, minute, tzinfo=UTC)
        return None

    def _days(self, year: int, month: int) -> list[int]:
        """The days of ``month`` that the day fields allow, ascending."""
        if self.day_of_month is not None:
            return self.day_of_month.days(year, month)
        assert self.day_of_week is not None  # parse_schedule guarantees exactly one "?"
        return self.day_of_week.days(year, month)


@dataclass(frozen=True)
class _DayOfMonth:
    """The Day-of-month field: a set of days, or ``L``, ``LW`` or ``nW``."""

    values: frozenset[int] = frozenset()
    last: bool = False  # "L" or "LW"
    weekday: bool = False  # "LW" or "nW"
    near: int = 0  # n of "nW"

    def days(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        if self.weekday:
            target = length if self.last else self.near
            if target > length:
                # Like a plain "31" in February: no such day, so no fire this month.
                return []
            return [_nearest_weekday(year, month, target, length)]
        if self.last:
            return [length]
        return sorted(d for d in self.values if d <= length)


@dataclass(frozen=True)
class _DayOfWeek:
    """The Day-of-week field: a set of AWS weekdays (SUN=1), or ``nL`` or ``n#k``."""

    values: frozenset[int] = frozenset()
    last_of: int = 0  # n of "nL": the last n-day of the month
    nth: tuple[int, int] = (0, 0)  # (n, k) of "n#k": the k-th n-day of the month

    def days(self, year: int, month: int) -> list[int]:
        length = calendar.monthrange(year, month)[1]
        first = _aws_weekday(date(year, month, 1))
        if self.last_of:
            last = _aws_weekday(date(year, month, length))
            return [length - (last - self.last_of) % 7]
        if self.nth != (0, 0):
            weekday, k = self.nth
            day = 1 + (weekday - first) % 7 + 7 * (k - 1)
            return [day] if day <= length else []
        return [d for d in range(1, length + 1) if (first - 1 + d - 1) % 7 + 1 in self.values]


def parse_schedule(expression: str, *, anchor: datetime | None = None) -> Schedule:
    """Parse an AWS ``rate(...)`` or ``cron(...)`` schedule expression.

    ``anchor`` is the instant rate schedules count from (default 1970-01-01T00:00Z;
    naive means UTC); cron schedules ignore it. Raises `InvalidScheduleError` whose
    message quotes the expression, names the bad field and value, and says what is
    allowed.
    """
    if not isinstance(expression, str):
        raise InvalidScheduleError(
            f"schedule expression must be a string ({_FORMS}), got {type(expression).__name__}"
        )
    text = expression.strip()
    match = re.fullmatch(r"(rate|cron)\((.*)\)", text, flags=re.DOTALL)
    if match is None:
        raise InvalidScheduleError(f"schedule expression {expression!r} is not {_FORMS}")
    kind, body = match.groups()
    if kind == "rate":
        return _parse_rate(text, body, EPOCH if anchor is None else _as_utc(anchor))
    return _parse_cron(text, body)


def _parse_rate(expression: str, body: str, anchor: datetime) -> RateSchedule:
    parts = body.split()
    if len(parts) != 2:
        raise InvalidScheduleError(
            f"{expression!r}: a rate expression is rate(value unit), e.g. rate(5 minutes), "
            f"with unit one of {_RATE_UNIT_CHOICES}"
        )
    value_text, unit = parts
    if not value_text.isdigit() or not value_text.isascii() or int(value_text) == 0:
        raise InvalidScheduleError(
            f"{expression!r}: rate value {value_text!r} is not a positive integer"
        )
    value = int(value_text)
    singular = unit[:-1] if unit.endswith("s") else unit
    if singular not in _RATE_UNITS:
        raise InvalidScheduleError(
            f"{expression!r}: rate unit {unit!r} is not one of {_RATE_UNIT_CHOICES}"
        )
    expected = singular if value == 1 else singular + "s"
    if unit != expected:
        number = "singular" if value == 1 else "plural"
        raise InvalidScheduleError(
            f"{expression!r}: a rate value of {value} takes the {number} unit "
            f"{expected!r}, not {unit!r} (write rate({value} {expected}))"
        )
    try:
        period = value * _RATE_UNITS[singular]
    except OverflowError:
        raise InvalidScheduleError(
            f"{expression!r}: rate value {value_text} {unit} is too large"
        ) from None
    return RateSchedule(expression=expression, period=period, anchor=anchor)


def _parse_cron(expression: str, body: str) -> CronSchedule:
    fields = body.split()
    if len(fields) != 6:
        raise InvalidScheduleError(
            f"{expression!r}: a cron expression has 6 fields "
            f"({' '.join(_FIELD_NAMES)}), got {len(fields)}"
        )
    fields = [f.upper() for f in fields]
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        which = "both are" if dom == "?" else "neither is"
        raise InvalidScheduleError(
            f"{expression!r}: exactly one of Day-of-month ({dom!r}) and Day-of-week "
            f"({dow!r}) must be '?', but {which}"
        )
    parser = _FieldParser(expression)
    return CronSchedule(
        expression=expression,
        minutes=parser.values(minute, "Minutes", 0, 59),
        hours=parser.values(hour, "Hours", 0, 23),
        day_of_month=None if dom == "?" else parser.day_of_month(dom),
        months=parser.values(month, "Month", 1, 12, names=_MONTH_NAMES),
        day_of_week=None if dow == "?" else parser.day_of_week(dow),
        years=parser.values(year, "Year", MIN_YEAR, MAX_YEAR, wrap=False),
    )


class _FieldParser:
    """Parses single cron fields, raising errors that quote the whole expression."""

    def __init__(self, expression: str) -> None:
        self.expression = expression

    def fail(self, name: str, text: str, problem: str) -> InvalidScheduleError:
        return InvalidScheduleError(f"{self.expression!r}: {name} field {text!r}: {problem}")

    def values(
        self,
        text: str,
        name: str,
        lo: int,
        hi: int,
        *,
        names: dict[str, int] | None = None,
        wrap: bool = True,
    ) -> tuple[int, ...]:
        """Expand a field made of ``,`` ``-`` ``*`` ``/`` into its sorted values."""
        if "?" in text and "?" in _WILDCARDS[name]:
            raise self.fail(name, text, "'?' must be the whole field")
        # Look for wildcards outside names: JUL holds an L and WED a W.
        bare = re.sub(r"[A-Z]+", lambda m: "" if m[0] in (names or {}) else m[0], text)
        for char in "?LW#/":
            if char in bare and char not in _WILDCARDS[name].split():
                raise self.fail(
                    name, text, f"{char!r} is not allowed here; allowed: {_WILDCARDS[name]}"
                )
        size = hi - lo + 1
        result: set[int] = set()
        for item in text.split(","):
            if not item:
                raise self.fail(name, text, "empty item in the ',' list")
            base, slash, step_text = item.partition("/")
            step = 1
            if slash:
                if not (step_text.isdigit() and step_text.isascii()):
                    raise self.fail(name, text, f"increment {step_text!r} is not a number")
                step = int(step_text)
                if not 1 <= step <= size:
                    raise self.fail(name, text, f"increment {step} is not in 1-{size}")
            if base == "*":
                start, end = lo, hi
            elif "-" in base:
                first, _, last = base.partition("-")
                start = self.value(first, name, text, lo, hi, names)
                end = self.value(last, name, text, lo, hi, names)
                if start > end and not wrap:
                    raise self.fail(name, text, f"range {base!r} runs backwards")
            else:
                start = self.value(base, name, text, lo, hi, names)
                # "a/s" means a, a+s, ... up to the top of the field; plain "a" is just a.
                end = hi if slash else start
            if start <= end:
                result.update(range(start, end + 1, step))
            else:
                # A wrapping range such as 22-2 (Quartz semantics): past the top, carry on
                # from the bottom of the field.
                span = end + size - start
                result.update(lo + (start - lo + i) % size for i in range(0, span + 1, step))
        return tuple(sorted(result))

    def value(
        self, token: str, name: str, text: str, lo: int, hi: int, names: dict[str, int] | None
    ) -> int:
        """One value: a number in ``lo``-``hi`` or, where ``names`` is given, a name."""
        choices = f"{lo}-{hi}"
        if names is not None:
            keys = list(names)
            choices += f" or {keys[0]}-{keys[-1]}"
        if names is not None and token in names:
            return names[token]
        if token.isdigit() and token.isascii():
            if lo <= int(token) <= hi:
                return int(token)
            raise self.fail(name, text, f"value {token!r} is out of range; allowed: {choices}")
        raise self.fail(name, text, f"value {token!r} is not {choices}")

    def day_of_month(self, text: str) -> _DayOfMonth:
        name = "Day-of-month"
        if text == "L":
            return _DayOfMonth(last=True)
        if text == "LW":
            return _DayOfMonth(last=True, weekday=True)
        if "L" in text or "W" in text:
            match = re.fullmatch(r"(\d+)W", text)
            if match is None:
                raise self.fail(
                    name, text, "'L' and 'W' are allowed only as L, LW or nW, alone in the field"
                )
            return _DayOfMonth(weekday=True, near=self.value(match[1], name, text, 1, 31, None))
        return _DayOfMonth(values=frozenset(self.values(text, name, 1, 31)))

    def day_of_week(self, text: str) -> _DayOfWeek:
        name = "Day-of-week"
        if text == "L":
            return _DayOfWeek(values=frozenset({7}))  # the last day of the week: SAT
        # No day name contains an L or a '#', so either one here is a wildcard. Both must
        # stand alone in the field: AWS reads "3#1,6#3" as two expressions and rejects it.
        if "#" in text or "L" in text:
            nth = re.fullmatch(r"(\w+)#(\d+)", text)
            if nth is not None:
                if not 1 <= int(nth[2]) <= 5:
                    raise self.fail(name, text, f"occurrence {nth[2]!r} after '#' is not in 1-5")
                weekday = self.value(nth[1], name, text, 1, 7, _DAY_NAMES)
                return _DayOfWeek(nth=(weekday, int(nth[2])))
            last = re.fullmatch(r"(\w+?)L", text)
            if last is not None:
                return _DayOfWeek(last_of=self.value(last[1], name, text, 1, 7, _DAY_NAMES))
            raise self.fail(
                name,
                text,
                "'L' and '#' are allowed only as L, nL or n#k (n in 1-7 or SUN-SAT, k in 1-5), "
                "alone in the field",
            )
        return _DayOfWeek(values=frozenset(self.values(text, name, 1, 7, names=_DAY_NAMES)))


def _aws_weekday(day: date) -> int:
    """AWS numbering: SUN=1, MON=2 ... SAT=7 (Python's weekday() has MON=0 ... SUN=6)."""
    return (day.weekday() + 1) % 7 + 1


def _nearest_weekday(year: int, month: int, day: int, length: int) -> int:
    """The Monday-Friday day nearest ``day`` without leaving the month (Quartz's ``W``)."""
    weekday = _aws_weekday(date(year, month, day))
    if weekday == 7:  # Saturday: Friday before, unless that is last month
        return day - 1 if day > 1 else day + 2
    if weekday == 1:  # Sunday: Monday after, unless that is next month
        return day + 1 if day < length else day - 2
    return day


def _as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        return moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC)
