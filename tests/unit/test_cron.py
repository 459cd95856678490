"""chalicelib.cron: EventBridge expressions and their next fire times (UTC)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib import catalog, cron


def at(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        # daily at 02:00, across a day, a month and a year boundary
        ("cron(0 2 * * ? *)", at(2026, 11, 28, 1, 59), at(2026, 11, 28, 2, 0)),
        ("cron(0 2 * * ? *)", at(2026, 11, 30, 2, 0), at(2026, 12, 1, 2, 0)),
        ("cron(0 2 * * ? *)", at(2026, 12, 31, 2, 0, 1), at(2027, 1, 1, 2, 0)),
        # strictly after: the fire time itself is not "next"
        ("cron(0 * * * ? *)", at(2026, 11, 28, 3, 0), at(2026, 11, 28, 4, 0)),
        ("cron(5 * * * ? *)", at(2026, 12, 31, 23, 5), at(2027, 1, 1, 0, 5)),
        # Mondays 03:00 (day-of-week by name), from a Saturday
        ("cron(0 3 ? * MON *)", at(2026, 11, 28, 12, 0), at(2026, 11, 30, 3, 0)),
        # Sundays by number (1 = SUN); 2026-11-29 is a Sunday
        ("cron(0 4 ? * 1 *)", at(2026, 11, 28, 0, 0), at(2026, 11, 29, 4, 0)),
        ("cron(0 4 ? * SUN *)", at(2026, 11, 29, 4, 0), at(2026, 12, 6, 4, 0)),
        # every third day from the 1st: 1, 4, ..., 31 then the next month's 1st
        ("cron(0 5 1/3 * ? *)", at(2026, 1, 29, 6, 0), at(2026, 1, 31, 5, 0)),
        ("cron(0 5 1/3 * ? *)", at(2026, 1, 31, 6, 0), at(2026, 2, 1, 5, 0)),
        # 1st of the month, over a year boundary
        ("cron(0 6 1 * ? *)", at(2026, 12, 1, 6, 0), at(2027, 1, 1, 6, 0)),
        # increments, lists and ranges
        ("cron(0/15 * * * ? *)", at(2026, 11, 28, 10, 46), at(2026, 11, 28, 11, 0)),
        ("cron(*/10 9-17 ? * MON-FRI *)", at(2026, 11, 27, 17, 50), at(2026, 11, 30, 9, 0)),
        ("cron(10-40/15 8,20 * * ? *)", at(2026, 11, 28, 8, 26), at(2026, 11, 28, 8, 40)),
        # month names, and 29 February only in leap years
        ("cron(0 0 29 FEB ? *)", at(2026, 3, 1), at(2028, 2, 29)),
        ("cron(30 12 15 JAN,JUL ? *)", at(2026, 7, 15, 12, 30), at(2027, 1, 15, 12, 30)),
        # wrapping day-of-week range FRI-MON, from a Tuesday
        ("cron(0 0 ? * FRI-MON *)", at(2026, 12, 1, 0, 0), at(2026, 12, 4, 0, 0)),
        # last day of the month, last Friday, second Tuesday
        ("cron(0 0 L * ? *)", at(2026, 2, 1), at(2026, 2, 28)),
        ("cron(0 0 L * ? *)", at(2028, 2, 28, 1), at(2028, 2, 29)),
        ("cron(0 0 ? * 6L *)", at(2026, 11, 1), at(2026, 11, 27)),
        ("cron(0 0 ? * TUE#2 *)", at(2026, 11, 28), at(2026, 12, 8)),
        # years
        ("cron(0 0 1 1 ? 2030-2031)", at(2026, 5, 5), at(2030, 1, 1)),
        # rates count from the epoch (or the anchor)
        ("rate(5 minutes)", at(2026, 11, 28, 10, 3, 30), at(2026, 11, 28, 10, 5)),
        ("rate(1 hour)", at(2026, 12, 31, 23, 0), at(2027, 1, 1, 0, 0)),
        ("rate(1 day)", at(2026, 11, 28, 0, 0, 1), at(2026, 11, 29)),
    ],
)
def test_next_run_is_the_first_fire_time_strictly_after(expression: str, after: datetime, expected: datetime) -> None:
    assert cron.next_run(expression, after) == expected


def test_next_run_accepts_epoch_seconds_and_naive_datetimes_as_utc() -> None:
    expected = at(2026, 11, 28, 2, 0)
    assert cron.next_run("cron(0 2 * * ? *)", at(2026, 11, 28, 1).timestamp()) == expected
    assert cron.next_run("cron(0 2 * * ? *)", datetime(2026, 11, 28, 1)) == expected


def test_rate_counts_from_its_anchor() -> None:
    anchor = at(2026, 11, 28, 10, 2)
    assert cron.next_run("rate(5 minutes)", at(2026, 11, 28, 10, 3), anchor=anchor) == at(2026, 11, 28, 10, 7)
    assert cron.next_run("rate(5 minutes)", at(2026, 11, 28, 9), anchor=anchor) == anchor


def test_a_cron_that_never_fires_again_has_no_next_run() -> None:
    assert cron.next_run("cron(0 0 1 1 ? 2026)", at(2026, 6, 1)) is None
    assert cron.next_run("cron(0 0 30 FEB ? *)", at(2026, 6, 1)) is None


@pytest.mark.parametrize("schedule", list(catalog.SCHEDULES.values()), ids=lambda s: s.name)
def test_every_catalogue_schedule_parses_and_fires_within_a_month(schedule: catalog.Schedule) -> None:
    after = at(2026, 11, 28, 12, 0)
    nxt = cron.next_run(schedule.expression, after)
    assert nxt is not None and after < nxt <= at(2026, 12, 28, 12, 0)


@pytest.mark.parametrize(
    "expression",
    [
        "",
        "cron(0 2 * * *)",  # five fields
        "cron(0 2 * * * *)",  # neither day field is ?
        "cron(0 2 ? * ? *)",  # both are
        "cron(60 2 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 0 0 * ? *)",
        "cron(0 0 ? * 8 *)",
        "cron(0 0 * 13 ? *)",
        "cron(0 0 * FOO ? *)",
        "cron(0/0 * * * ? *)",
        "cron(5-1 * * * ? *)",
        "cron(0 0 15W * ? *)",
        "cron(1,,2 * * * ? *)",
        "rate(0 minutes)",
        "rate(1 minutes)",
        "rate(5 minute)",
        "rate(5 weeks)",
        "rate(-5 minutes)",
        "every(5 minutes)",
    ],
)
def test_expressions_eventbridge_refuses_are_refused(expression: str) -> None:
    with pytest.raises(cron.CronError):
        cron.validate(expression)
