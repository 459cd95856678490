"""The schedule catalogue against the origin document, slots, keys, payloads and next runs (pure)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chalicelib import catalog, cron
from chalicelib.schedules import slots


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).astimezone(UTC)


def fires(name: str, start: str, end: str) -> list[datetime]:
    """Every fire time of a catalogue schedule in [start, end)."""
    expression = catalog.SCHEDULES[name].expression
    out, moment = [], at(start) - timedelta(seconds=1)
    while (moment := cron.next_run(expression, moment)) is not None and moment < at(end):
        out.append(moment)
    return out


# --- the catalogue is what the origin document and the issue ask for --------------------------


def test_the_catalogue_holds_the_origin_schedules_the_audit_digest_and_orphan_cleanup():
    assert set(catalog.SCHEDULES) == {
        "daily-analytics",
        "weekly-report",
        "session-cleanup",
        "login-attempts-cleanup",
        "activity-log-cleanup",
        "orphan-cleanup",
        "webhook-log-cleanup",
        "analytics-data-cleanup",
        "audit-digest",
        "audit-tally",
    }
    for schedule in catalog.SCHEDULES.values():
        cron.validate(schedule.expression)
        assert schedule.queue in catalog.QUEUES
        assert schedule.description


@pytest.mark.parametrize(
    ("name", "queue", "job_type"),
    [
        ("daily-analytics", "analytics", "daily_report"),
        ("weekly-report", "analytics", "weekly_report"),
        ("session-cleanup", "cleanup", "sessions"),
        ("login-attempts-cleanup", "cleanup", "login_attempts"),
        ("activity-log-cleanup", "cleanup", "activity_logs"),
        ("orphan-cleanup", "cleanup", "orphans"),
        ("webhook-log-cleanup", "cleanup", "webhook_logs"),
        ("analytics-data-cleanup", "analytics", "cleanup_old_data"),
        ("audit-digest", "cleanup", "audit_digest"),
        ("audit-tally", "cleanup", "audit_tally"),
    ],
)
def test_each_schedule_enqueues_the_job_the_brief_names(name, queue, job_type):
    schedule = catalog.SCHEDULES[name]
    assert (schedule.queue, schedule.job_type) == (queue, job_type)


def test_daily_analytics_is_exactly_cron_0_2_every_day():
    assert catalog.SCHEDULES["daily-analytics"].expression == "cron(0 2 * * ? *)"
    runs = fires("daily-analytics", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert [r.day for r in runs] == list(range(1, 31))
    assert {(r.hour, r.minute) for r in runs} == {(2, 0)}


def test_weekly_report_runs_mondays_at_three():
    runs = fires("weekly-report", "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert len(runs) == 9
    assert {(r.weekday(), r.hour, r.minute) for r in runs} == {(0, 3, 0)}  # Monday 03:00


def test_session_cleanup_runs_every_hour_on_the_hour():
    runs = fires("session-cleanup", "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z")
    assert [r.hour for r in runs] == list(range(24))
    assert {r.minute for r in runs} == {0}


def test_login_attempt_cleanup_runs_once_a_day():
    runs = fires("login-attempts-cleanup", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert len(runs) == 30
    assert all(b - a == timedelta(days=1) for a, b in zip(runs, runs[1:], strict=False))


def test_activity_log_cleanup_runs_once_a_week():
    runs = fires("activity-log-cleanup", "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert len(runs) == 9
    assert all(b - a == timedelta(days=7) for a, b in zip(runs, runs[1:], strict=False))


def test_orphan_cleanup_runs_once_a_week_on_sundays_after_the_other_sweeps():
    runs = fires("orphan-cleanup", "2026-11-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert len(runs) == 9
    assert all(b - a == timedelta(days=7) for a, b in zip(runs, runs[1:], strict=False))
    assert {(r.isoweekday(), r.hour, r.minute) for r in runs} == {(7, 7, 0)}


def test_webhook_log_cleanup_runs_every_third_day_of_each_month():
    runs = fires("webhook-log-cleanup", "2026-11-01T00:00:00Z", "2026-12-01T00:00:00Z")
    assert [r.day for r in runs] == [1, 4, 7, 10, 13, 16, 19, 22, 25, 28]
    assert {(r.hour, r.minute) for r in runs} == {(5, 0)}
    # EventBridge cron counts days of the month: a 31-day month ends with a run on the 31st and
    # the next month starts again on the 1st (the gap never exceeds three days).
    december = fires("webhook-log-cleanup", "2026-12-01T00:00:00Z", "2027-01-02T00:00:00Z")
    assert december[-2:] == [at("2026-12-31T05:00:00Z"), at("2027-01-01T05:00:00Z")]
    year = fires("webhook-log-cleanup", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert max(b - a for a, b in zip(year, year[1:], strict=False)) == timedelta(days=3)


def test_analytics_data_cleanup_runs_on_the_first_of_each_month():
    runs = fires("analytics-data-cleanup", "2026-01-01T00:00:00Z", "2027-01-01T00:00:00Z")
    assert [(r.month, r.day) for r in runs] == [(m, 1) for m in range(1, 13)]


def test_audit_digest_runs_hourly_after_the_hour_closes():
    runs = fires("audit-digest", "2026-11-28T00:00:00Z", "2026-11-29T00:00:00Z")
    assert len(runs) == 24
    assert {r.minute for r in runs} == {5}


# --- slots --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "event_time", "slot"),
    [
        ("daily-analytics", "2026-11-28T02:00:00Z", "2026-11-28T02:00:00Z"),  # on time
        ("daily-analytics", "2026-11-28T02:00:41Z", "2026-11-28T02:00:00Z"),  # seconds late
        ("daily-analytics", "2026-11-28T23:59:59Z", "2026-11-28T02:00:00Z"),  # hours late
        ("daily-analytics", "2026-11-28T01:59:59Z", "2026-11-27T02:00:00Z"),  # before today's run
        ("daily-analytics", "2027-01-01T00:30:00Z", "2026-12-31T02:00:00Z"),  # across the year
        ("session-cleanup", "2026-11-28T10:59:59Z", "2026-11-28T10:00:00Z"),
        ("session-cleanup", "2027-01-01T00:00:00Z", "2027-01-01T00:00:00Z"),
        ("audit-digest", "2026-11-28T10:04:00Z", "2026-11-28T09:05:00Z"),
        ("weekly-report", "2026-11-29T12:00:00Z", "2026-11-23T03:00:00Z"),  # Sunday -> last Monday
        ("weekly-report", "2026-11-30T03:00:00Z", "2026-11-30T03:00:00Z"),
        ("webhook-log-cleanup", "2026-12-03T06:00:00Z", "2026-12-01T05:00:00Z"),
        ("webhook-log-cleanup", "2026-12-01T04:00:00Z", "2026-11-28T05:00:00Z"),  # across the month
        ("analytics-data-cleanup", "2026-11-30T23:00:00Z", "2026-11-01T06:00:00Z"),
        ("analytics-data-cleanup", "2027-01-01T05:59:00Z", "2026-12-01T06:00:00Z"),
    ],
)
def test_the_slot_is_the_events_time_truncated_to_the_schedules_period(name, event_time, slot):
    assert slots.slot_of(catalog.SCHEDULES[name].expression, at(event_time)) == at(slot)


def test_rate_expressions_have_slots_too():
    assert slots.slot_of("rate(3 days)", at("1970-01-05T00:00:00Z")) == at("1970-01-04T00:00:00Z")


def test_an_expression_that_never_fired_in_the_last_year_has_no_slot():
    with pytest.raises(slots.SlotError):
        slots.slot_of("cron(0 0 1 1 ? 2030)", at("2026-11-28T00:00:00Z"))


def test_slot_keys_name_the_schedule_and_the_slot():
    assert slots.slot_key("daily-analytics", at("2026-11-28T02:00:00Z")) == "daily-analytics#2026-11-28T02:00:00Z"


def test_every_manual_run_is_a_slot_of_its_own():
    keys = {slots.manual_key("daily-analytics") for _ in range(50)}
    assert len(keys) == 50
    assert all(k.startswith("daily-analytics#manual#") for k in keys)
    assert not any(k == slots.slot_key("daily-analytics", at("2026-11-28T02:00:00Z")) for k in keys)


# --- payloads -----------------------------------------------------------------------------------


def test_the_daily_report_covers_the_day_before_its_slot():
    payload = slots.job_payload(catalog.SCHEDULES["daily-analytics"], at("2027-01-01T02:00:00Z"))
    assert payload == {
        "schedule": "daily-analytics",
        "slot": "2027-01-01T02:00:00Z",
        "manual": False,
        "date": "2026-12-31",
    }
    march = slots.job_payload(catalog.SCHEDULES["daily-analytics"], at("2028-03-01T02:00:00Z"))
    assert march["date"] == "2028-02-29"


@pytest.mark.parametrize(
    ("slot", "week"),
    [
        ("2026-11-30T03:00:00Z", "2026-W48"),
        ("2027-01-04T03:00:00Z", "2026-W53"),  # 2026 has 53 ISO weeks
        ("2026-01-05T03:00:00Z", "2026-W01"),
        ("2026-01-01T03:00:00Z", "2025-W52"),  # a manual run on a Thursday
    ],
)
def test_the_weekly_report_covers_the_iso_week_before_its_slot(slot, week):
    assert slots.job_payload(catalog.SCHEDULES["weekly-report"], at(slot))["week"] == week


def test_cleanup_payloads_carry_only_the_schedule_and_slot():
    payload = slots.job_payload(catalog.SCHEDULES["session-cleanup"], at("2026-11-28T10:00:00Z"), manual=True)
    assert payload == {"schedule": "session-cleanup", "slot": "2026-11-28T10:00:00Z", "manual": True}


# --- next runs across month and year boundaries ------------------------------------------------


@pytest.mark.parametrize(
    ("name", "now", "next_run"),
    [
        ("session-cleanup", "2026-12-31T23:30:00Z", "2027-01-01T00:00:00Z"),
        ("daily-analytics", "2026-12-31T23:30:00Z", "2027-01-01T02:00:00Z"),
        ("daily-analytics", "2026-11-30T02:00:00Z", "2026-12-01T02:00:00Z"),  # strictly after now
        ("daily-analytics", "2028-02-28T03:00:00Z", "2028-02-29T02:00:00Z"),  # leap day
        ("weekly-report", "2026-12-29T00:00:00Z", "2027-01-04T03:00:00Z"),
        ("activity-log-cleanup", "2026-12-27T04:00:01Z", "2027-01-03T04:00:00Z"),
        ("orphan-cleanup", "2026-12-31T12:00:00Z", "2027-01-03T07:00:00Z"),
        ("webhook-log-cleanup", "2026-12-31T05:00:01Z", "2027-01-01T05:00:00Z"),
        ("webhook-log-cleanup", "2027-02-28T06:00:00Z", "2027-03-01T05:00:00Z"),
        ("analytics-data-cleanup", "2026-12-01T06:00:00Z", "2027-01-01T06:00:00Z"),
        ("analytics-data-cleanup", "2027-01-31T12:00:00Z", "2027-02-01T06:00:00Z"),
        ("audit-digest", "2026-12-31T23:05:00Z", "2027-01-01T00:05:00Z"),
    ],
)
def test_next_run_is_right_across_month_and_year_boundaries(name, now, next_run):
    assert cron.next_run(catalog.SCHEDULES[name].expression, at(now)) == at(next_run)


def test_handler_names_are_python_identifiers():
    for name in catalog.SCHEDULES:
        assert slots.handler_name(name).isidentifier()
