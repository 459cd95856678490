"""EventBridge schedule expressions: parse `cron(...)` / `rate(...)` and compute the next fire time.

Pure (no I/O, no clock): both the schedules capability (`next_run` in `GET /api/schedules`) and the
local stack's EventBridge emulator use it, so what the API announces is what the emulator fires.
All times are UTC, as EventBridge rules are.

Cron has six fields, `minutes hours day-of-month month day-of-week year`, each accepting `*`,
lists (`1,15`), ranges (`1-5`), increments (`0/15`, `*/10`, `10-40/5`); months accept JAN-DEC,
days of week SUN-SAT or 1-7 with 1 = SUN (ranges may wrap, `FRI-MON`). Exactly one of
day-of-month and day-of-week is `?`, as EventBridge requires. Also supported: `L` (last day of
the month), `nL` (last weekday n of the month) and `n#k` (k-th weekday n). `W` is not.
`rate(value unit)` takes minute(s), hour(s), day(s) (singular only for 1, as AWS demands); it
fires every period counted from an anchor (the rule's creation time; the epoch by default).
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

__all__ = ["Cron", "CronError", "Rate", "ZoneError", "next_run", "parse", "validate", "zone"]

MONTHS = {
    name: i
    for i, name in enumerate(
        ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"], start=1
    )
}
WEEKDAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
MAX_YEAR = 2199  # EventBridge's own upper bound for the year field
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


class CronError(ValueError):
    """An expression EventBridge would refuse (or one this module does not support)."""


class ZoneError(ValueError):
    """Not an IANA time zone name (`Europe/Paris`, `UTC`)."""


def zone(name: str) -> ZoneInfo:
    """The IANA time zone `name`; raises ZoneError."""
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z][A-Za-z0-9_+\-]*(/[A-Za-z0-9_+\-]+)*", name):
        raise ZoneError(f"{name!r} is not an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError) as exc:
        raise ZoneError(f"{name!r} is not a known time zone") from exc


@dataclass(frozen=True)
class Rate:
    seconds: int

    def next_after(self, after: datetime, anchor: datetime | None = None) -> datetime:
        base = anchor or datetime(1970, 1, 1, tzinfo=UTC)
        elapsed = (after - base).total_seconds()
        periods = int(elapsed // self.seconds) + 1 if elapsed >= 0 else 0
        return base + timedelta(seconds=periods * self.seconds)


@dataclass(frozen=True)
class Cron:
    minutes: frozenset[int]
    hours: frozenset[int]
    days: frozenset[int] | None  # None: `?` (day-of-week decides)
    months: frozenset[int]
    weekdays: frozenset[int] | None  # 1 = SUN .. 7 = SAT; None: `?`
    years: frozenset[int]
    last_day: bool = False  # `L` in day-of-month
    last_weekday: int | None = None  # `nL` in day-of-week
    nth_weekday: tuple[int, int] | None = None  # `n#k` in day-of-week: (weekday, k)

    def day_matches(self, moment: datetime) -> bool:
        last = calendar.monthrange(moment.year, moment.month)[1]
        if self.weekdays is None and self.last_weekday is None and self.nth_weekday is None:
            return (self.last_day and moment.day == last) or (self.days is not None and moment.day in self.days)
        weekday = (moment.weekday() + 1) % 7 + 1  # Monday=0 -> 2, Sunday=6 -> 1
        if self.last_weekday is not None:
            return weekday == self.last_weekday and moment.day + 7 > last
        if self.nth_weekday is not None:
            return weekday == self.nth_weekday[0] and (moment.day - 1) // 7 + 1 == self.nth_weekday[1]
        return self.weekdays is not None and weekday in self.weekdays

    def next_after(self, after: datetime) -> datetime | None:
        """The first fire time strictly after `after`, or None when there is none (up to 2199)."""
        t = (after + timedelta(minutes=1)).replace(second=0, microsecond=0)
        while t.year <= MAX_YEAR:
            if t.year not in self.years:
                later = [y for y in self.years if y > t.year]
                if not later:
                    return None
                t = t.replace(year=min(later), month=1, day=1, hour=0, minute=0)
            elif t.month not in self.months:
                t = _next_month(t)
            elif not self.day_matches(t):
                t = (t + timedelta(days=1)).replace(hour=0, minute=0)
            elif t.hour not in self.hours:
                t = (t + timedelta(hours=1)).replace(minute=0)
            elif t.minute not in self.minutes:
                t += timedelta(minutes=1)
            else:
                return t
        return None


def _next_month(t: datetime) -> datetime:
    if t.month == 12:
        return t.replace(year=t.year + 1, month=1, day=1, hour=0, minute=0)
    return t.replace(month=t.month + 1, day=1, hour=0, minute=0)


def _value(token: str, low: int, high: int, names: dict[str, int] | None) -> int:
    token = token.upper()
    if names and token in names:
        return names[token]
    if not token.isdigit():
        raise CronError(f"{token!r} is not a value")
    value = int(token)
    if not low <= value <= high:
        raise CronError(f"{value} is outside {low}-{high}")
    return value


def _field(text: str, low: int, high: int, names: dict[str, int] | None = None, wraps: bool = False) -> frozenset[int]:
    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise CronError(f"empty item in {text!r}")
        span, _, step_text = item.partition("/")
        step = 1
        if step_text:
            if not step_text.isdigit() or int(step_text) == 0:
                raise CronError(f"bad increment in {item!r}")
            step = int(step_text)
        if span == "*":
            start, end = low, high
        elif "-" in span:
            a, _, b = span.partition("-")
            start, end = _value(a, low, high, names), _value(b, low, high, names)
        else:
            start = _value(span, low, high, names)
            end = high if step_text else start
        if start <= end:
            values.update(range(start, end + 1, step))
        elif wraps:  # FRI-MON: through the end of the week and round again
            cycle = list(range(start, high + 1)) + list(range(low, end + 1))
            values.update(cycle[::step])
        else:
            raise CronError(f"range {span!r} runs backwards")
    return frozenset(values)


def _parse_cron(body: str) -> Cron:
    fields = body.split()
    if len(fields) != 6:
        raise CronError("cron(...) needs 6 fields: minutes hours day-of-month month day-of-week year")
    minute, hour, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise CronError("exactly one of day-of-month and day-of-week must be '?'")
    kwargs: dict[str, object] = {}
    days: frozenset[int] | None = None
    weekdays: frozenset[int] | None = None
    if dom == "L":
        kwargs["last_day"] = True
    elif dom != "?":
        if "W" in dom.upper():
            raise CronError("the W wildcard is not supported")
        days = _field(dom, 1, 31)
    if m := re.fullmatch(r"([1-7]|[A-Za-z]{3})L", dow):
        kwargs["last_weekday"] = _value(m.group(1), 1, 7, WEEKDAYS)
    elif m := re.fullmatch(r"([1-7]|[A-Za-z]{3})#([1-5])", dow):
        kwargs["nth_weekday"] = (_value(m.group(1), 1, 7, WEEKDAYS), int(m.group(2)))
    elif dow == "L":
        weekdays = frozenset({7})
    elif dow != "?":
        weekdays = _field(dow, 1, 7, WEEKDAYS, wraps=True)
    return Cron(
        minutes=_field(minute, 0, 59),
        hours=_field(hour, 0, 23),
        days=days,
        months=_field(month, 1, 12, MONTHS),
        weekdays=weekdays,
        years=_field(year, 1970, MAX_YEAR),
        **kwargs,  # type: ignore[arg-type]
    )


def _parse_rate(body: str) -> Rate:
    m = re.fullmatch(r"\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*", body)
    if not m:
        raise CronError("rate(...) needs 'value unit' with unit minute(s), hour(s) or day(s)")
    value, unit = int(m.group(1)), m.group(2)
    if value < 1:
        raise CronError("a rate must be at least 1")
    if (value == 1) != (not unit.endswith("s")):
        raise CronError("use the singular unit for 1 and the plural for more")
    return Rate(value * _UNITS[unit.rstrip("s")])


def parse(expression: str) -> Cron | Rate:
    """Parse `cron(...)` or `rate(...)`; raises CronError."""
    m = re.fullmatch(r"\s*(cron|rate)\((.*)\)\s*", expression or "")
    if not m:
        raise CronError("an expression is cron(...) or rate(...)")
    return _parse_cron(m.group(2)) if m.group(1) == "cron" else _parse_rate(m.group(2))


def validate(expression: str) -> None:
    parse(expression)


def _as_datetime(moment: datetime | float) -> datetime:
    if isinstance(moment, datetime):
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    return datetime.fromtimestamp(moment, UTC)


def next_run(
    expression: str, after: datetime | float, anchor: datetime | float | None = None, timezone: str = "UTC"
) -> datetime | None:
    """The first fire time strictly after `after` (a datetime, naive = UTC, or epoch seconds), as an
    aware UTC datetime; None when a cron never fires again. `anchor` is a rate's start (rule
    creation), the epoch by default. A cron is read in `timezone` (IANA) as EventBridge Scheduler
    reads it: a wall time that does not exist (the spring-forward gap) does not fire that day, and
    one that happens twice (the fall-back hour) fires once, the first time. A rate counts elapsed
    time, whatever the zone. Raises CronError for a bad expression, ZoneError for a bad zone."""
    schedule = parse(expression)
    start = _as_datetime(after)
    if isinstance(schedule, Rate):
        return schedule.next_after(start, _as_datetime(anchor) if anchor is not None else None)
    if timezone in ("UTC", "Etc/UTC"):
        return schedule.next_after(start)
    return _next_in_zone(schedule, start, zone(timezone))


def _next_in_zone(schedule: Cron, start: datetime, tz: ZoneInfo) -> datetime | None:
    # the cron walks wall-clock times (tagged UTC only to reuse its arithmetic)
    wall = start.astimezone(tz).replace(tzinfo=UTC)
    while (wall := schedule.next_after(wall)) is not None:  # type: ignore[assignment]
        local = wall.replace(tzinfo=tz, fold=0)
        moment = local.astimezone(UTC)
        if moment.astimezone(tz).replace(tzinfo=None) != wall.replace(tzinfo=None):
            continue  # in the spring-forward gap: no such time today
        if moment > start:
            return moment
    return None
