"""Which run of a schedule an EventBridge event stands for, and what that run's job carries.

EventBridge delivers a scheduled event at least once, sometimes twice and sometimes late; the
event's `time` is the moment the rule fired for. The run it stands for, its *slot*, is the latest
fire time of the schedule's expression at or before that time: the event's time truncated to the
schedule's period (the hour for an hourly rule, 02:00 of the day for a daily one, Monday 03:00
for a weekly one, ...). The job's idempotency key is built from the schedule's name and its slot,
so a second delivery of a slot enqueues nothing and a late delivery is still the run of its own
slot. A manual run is a slot of its own. Pure: no clock, no I/O.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import cron, timeutil
from chalicelib.catalog import Schedule

__all__ = ["SlotError", "handler_name", "job_payload", "manual_key", "slot_key", "slot_of"]

# Look back this far for the previous fire, widening the window only when it holds none: each
# step costs a couple of next-fire computations, whatever the schedule's period.
_LOOKBACK = (timedelta(hours=2), timedelta(days=2), timedelta(days=8), timedelta(days=32), timedelta(days=367))


class SlotError(ValueError):
    """The expression has no fire time in the year before the event (it cannot be the event's)."""


def slot_of(expression: str, at: datetime, timezone: str = "UTC") -> datetime:
    """The latest fire time of `expression` (read in `timezone`) at or before `at` (aware UTC).
    Raises SlotError."""
    at = at.astimezone(UTC)
    for window in _LOOKBACK:
        fire = cron.next_run(expression, at - window, timezone=timezone)
        if fire is None or fire > at:
            continue
        while (later := cron.next_run(expression, fire, timezone=timezone)) is not None and later <= at:
            fire = later
        return fire
    raise SlotError(f"{expression} does not fire in the year before {at:%Y-%m-%dT%H:%M:%SZ}")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def slot_key(name: str, slot: datetime) -> str:
    """The idempotency key of a scheduled run: `<name>#<slot>`."""
    return f"{name}#{iso(slot)}"


def manual_key(name: str, run_id: str | None = None) -> str:
    """A manual run is its own slot: `<name>#manual#<uuid>`."""
    return f"{name}#manual#{run_id or uuid.uuid4()}"


def job_payload(schedule: Schedule, slot: datetime, manual: bool = False) -> dict[str, Any]:
    """The job's payload: which schedule and slot it is for (the outcome is stored by that), and
    for reports the period they cover: the daily report the day before the slot, the weekly one
    the ISO week before the slot's."""
    payload: dict[str, Any] = {"schedule": schedule.name, "slot": iso(slot), "manual": manual}
    day = slot.astimezone(UTC).date()
    if schedule.job_type == "daily_report":
        payload["date"] = (day - timedelta(days=1)).isoformat()
    elif schedule.job_type == "weekly_report":
        payload["week"] = timeutil.iso_week(day - timedelta(days=7))
    return payload


def handler_name(name: str) -> str:
    """The Lambda handler's name for a schedule: `daily-analytics` -> `daily_analytics`."""
    return name.replace("-", "_")
