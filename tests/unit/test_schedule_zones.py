"""Schedules in time zones with an injected clock: next runs and slots across both
daylight-saving switches, read as EventBridge Scheduler reads them (a wall time in the
spring-forward gap does not fire that day; one in the fall-back hour fires once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import cron
from chalicelib.schedules import slots

NINE = "cron(0 9 * * ? *)"


def fires(expression: str, start: datetime, end: datetime, zone: str) -> list[datetime]:
    found, at = [], start
    while (at := cron.next_run(expression, at, timezone=zone)) is not None and at < end:
        found.append(at)
    return found


@pytest.mark.parametrize(
    ("start", "switch"),
    [
        (datetime(2026, 3, 20, tzinfo=UTC), datetime(2026, 3, 29, 1, tzinfo=UTC)),  # spring forward
        (datetime(2026, 10, 18, tzinfo=UTC), datetime(2026, 10, 25, 1, tzinfo=UTC)),
    ],  # fall back
)
def test_nine_in_paris_fires_exactly_once_a_day_across_a_switch_at_seven_or_eight_utc(start, switch):
    runs = fires(NINE, start, start + timedelta(days=14), "Europe/Paris")
    assert len(runs) == 14
    assert len({r.astimezone(cron.zone("Europe/Paris")).date() for r in runs}) == 14  # one per local day
    for run in runs:
        summer = (run > switch) == (switch.month == 3)
        assert run.hour == (7 if summer else 8), run
        assert run.minute == 0


def test_summer_and_winter_next_runs():
    assert cron.next_run(NINE, datetime(2026, 7, 1, tzinfo=UTC), timezone="Europe/Paris") == datetime(
        2026, 7, 1, 7, tzinfo=UTC
    )
    assert cron.next_run(NINE, datetime(2026, 12, 1, tzinfo=UTC), timezone="Europe/Paris") == datetime(
        2026, 12, 1, 8, tzinfo=UTC
    )


def test_half_past_two_on_the_spring_forward_day_does_not_fire_as_scheduler_does():
    runs = fires(
        "cron(30 2 * * ? *)", datetime(2026, 3, 27, tzinfo=UTC), datetime(2026, 4, 1, tzinfo=UTC), "Europe/Paris"
    )
    days = [r.astimezone(cron.zone("Europe/Paris")).date().isoformat() for r in runs]
    assert "2026-03-29" not in days  # 02:30 does not exist in Paris that day
    assert days == ["2026-03-27", "2026-03-28", "2026-03-30", "2026-03-31"]


def test_half_past_two_on_the_fall_back_day_fires_once_the_first_time():
    runs = fires(
        "cron(30 2 * * ? *)", datetime(2026, 10, 24, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC), "Europe/Paris"
    )
    assert runs == [
        datetime(2026, 10, 24, 0, 30, tzinfo=UTC),
        datetime(2026, 10, 25, 0, 30, tzinfo=UTC),  # 02:30 CEST; not again at 02:30 CET (01:30Z)
        datetime(2026, 10, 26, 1, 30, tzinfo=UTC),
    ]


def test_a_slot_in_a_zone_is_the_latest_fire_before_the_event_across_the_switch():
    paris = "Europe/Paris"
    assert slots.slot_of(NINE, datetime(2026, 3, 29, 7, 0, 40, tzinfo=UTC), paris) == datetime(
        2026, 3, 29, 7, tzinfo=UTC
    )
    assert slots.slot_of(NINE, datetime(2026, 3, 29, 6, 59, tzinfo=UTC), paris) == datetime(2026, 3, 28, 8, tzinfo=UTC)
    assert slots.slot_of(NINE, datetime(2026, 10, 25, 8, 30, tzinfo=UTC), paris) == datetime(
        2026, 10, 25, 8, tzinfo=UTC
    )


def test_a_rate_counts_elapsed_time_whatever_the_zone():
    after = datetime(2026, 3, 29, 0, 58, tzinfo=UTC)
    assert cron.next_run("rate(5 minutes)", after, timezone="Europe/Paris") == cron.next_run("rate(5 minutes)", after)


@pytest.mark.parametrize("name", ["Mars/Olympus", "", "../etc/passwd", "Europe/"])
def test_an_unknown_zone_is_refused(name):
    with pytest.raises(cron.ZoneError):
        cron.next_run(NINE, 0, timezone=name)
