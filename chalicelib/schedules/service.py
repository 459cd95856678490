"""Scheduled tasks: EventBridge Scheduler schedules that each enqueue one job, exactly once per slot.

`handler(app, name)` registers a catalogue schedule as its own Lambda, which the stage's
Scheduler schedule invokes (`remote`: in a time zone, changeable at run time with `update`);
when it fires it only enqueues the schedule's job with the idempotency key `<name>#<slot>` (see `slots`),
and records that job as the schedule's last run. Job events then store its outcome. A job that
comes from a schedule runs inside `exclusive(job, ctx)`, which holds the schedule's lease so that
a run never overlaps the previous one: while that one is active the new job waits, and then
raises `ScheduleBusy`, which the worker retries. `listing()` and `run_now()` serve the REST routes.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from chalicelib import audit, aws, catalog, cron, errors, events, jobs, runtime, timeutil
from chalicelib.jobs.errors import JobError
from chalicelib.schedules import remote, slots
from chalicelib.schedules.store import ScheduleRuns

log = logging.getLogger("inkwell.schedules")

__all__ = [
    "ScheduleBusy",
    "exclusive",
    "fire",
    "get",
    "current",
    "handler",
    "item",
    "listing",
    "on_job_event",
    "run_now",
    "runs",
    "schedule_of",
    "sleep",
    "update",
]

Enqueue = Callable[..., dict[str, Any]]

LEASE_POLL_SECONDS = 5.0

# JobEvent kind -> the status stored as the schedule's `last_status` (the job's state after it).
_STATUS = {
    "active": "active",
    "retrying": "delayed",
    "completed": "completed",
    "failed": "failed",
    "cancelled": "cancelled",
}


class ScheduleBusy(JobError):
    """The previous run of this schedule is still active; retried (it may end by `retry_after`)."""

    kind = "schedule_busy"

    def __init__(self, name: str, retry_after: int) -> None:
        super().__init__(f"the previous run of {name} is still active")
        self.name = name
        self.retry_after = retry_after


def runs() -> ScheduleRuns:
    return ScheduleRuns(aws.table("schedules"))


def _enqueue() -> Enqueue:
    return jobs.enqueue  # looked up per call, so tests can stand in for it


def get(name: str) -> catalog.Schedule:
    """The catalogue schedule called `name`, or errors.NotFound."""
    schedule = catalog.SCHEDULES.get(name)
    if schedule is None:
        raise errors.NotFound(f"schedule {name!r}")
    return schedule


def _event_moment(event_time: str | None) -> datetime:
    try:
        return datetime.fromtimestamp(timeutil.parse_iso(event_time or ""), UTC)
    except (ValueError, TypeError, AttributeError, OverflowError):
        # EventBridge always sends `time`; a hand-made event without one stands for now.
        log.warning("scheduled event without a valid time (%r); using the current time", event_time)
        return datetime.fromtimestamp(timeutil.now(), UTC)


def current(name: str, stored: dict[str, Any] | None = None) -> catalog.Schedule:
    """Schedule `name` as it runs now: the catalogue's, with the expression, zone and state an
    admin set at run time (`stored`: its item in the schedules table, read when not given)."""
    schedule = get(name)
    item = runs().get(name) if stored is None else stored
    item = item or {}
    changes = {k: item[k] for k in ("expression", "timezone", "enabled") if item.get(k) is not None}
    return dataclasses.replace(schedule, **changes) if changes else schedule


def fire(
    name: str, event_time: str | None, *, enqueue: Enqueue | None = None, scheduled: bool = False
) -> dict[str, Any] | None:
    """Enqueue the run of `name` for the slot that `event_time` falls in; return its job (None
    when the schedule is disabled: a firing that raced the change enqueues nothing).

    `scheduled`: the time is EventBridge Scheduler's scheduled time, the slot itself (to the
    minute), whatever the expression became since; otherwise the slot is the latest fire time of
    the current expression, in its zone, at or before the time. A second call for the same slot
    returns the job of the first and enqueues nothing. The schedule's newest run is audited as
    `schedule.triggered`.
    """
    schedule = current(name)
    if not schedule.enabled:
        log.info("schedule %s is disabled; firing at %s ignored", name, event_time)
        return None
    moment = _event_moment(event_time)
    if scheduled:
        slot = moment.replace(second=0, microsecond=0)
    else:
        slot = slots.slot_of(schedule.expression, moment, schedule.timezone)
    with runtime.correlate(schedule=name, slot=slots.iso(slot)):
        job = (enqueue or _enqueue())(
            schedule.queue,
            schedule.job_type,
            slots.job_payload(schedule, slot),
            idempotency_key=slots.slot_key(name, slot),
        )
        if runs().record_run(name, slots.iso(slot), job, manual=False, now=timeutil.iso()):
            # once per slot: a duplicate (or late) delivery is not the schedule's newest run
            audit.record("schedule.triggered", resource=("schedule", name), details=_audit_details(job, slot))
        log.info("schedule %s slot %s -> job %s", name, slots.iso(slot), job["id"])
        return job


def _audit_details(job: dict[str, Any], slot: datetime) -> dict[str, Any]:
    return {"job_id": job["id"], "queue": job.get("queue"), "type": job.get("type"), "slot": slots.iso(slot)}


def run_now(name: str, user: dict[str, Any], *, enqueue: Enqueue | None = None) -> dict[str, Any]:
    """Enqueue a manual run of `name` (its own slot, now), audited as `schedule.run`; errors.NotFound
    for an unknown name, 503 when the queue refused the message."""
    schedule = get(name)
    now = datetime.fromtimestamp(timeutil.now(), UTC)
    job = (enqueue or _enqueue())(  # jobs.EnqueueError: a 503 (the refusal is the domain's)
        schedule.queue,
        schedule.job_type,
        slots.job_payload(schedule, now, manual=True),
        user_id=user["id"],
        idempotency_key=slots.manual_key(name),
    )
    runs().record_run(name, slots.iso(now), job, manual=True, now=slots.iso(now))
    audit.record("schedule.run", resource=("schedule", name), details=_audit_details(job, now))
    return {"job_id": job["id"], "queue": schedule.queue}


def listing(params: dict[str, str] | None = None, now: float | None = None) -> dict[str, Any]:
    """The catalogue's schedules, in catalogue order, with their next run (from the expression)
    and their last run; paged like every list (`?limit=&cursor=`), though one page holds them all
    by default. errors.Invalid for a bad limit or cursor."""
    from chalicelib import http

    params = params or {}
    limit = http.limit_param(params)
    after = (http.decode_cursor(params, {"name"}) or {}).get("name")
    names = list(catalog.SCHEDULES)
    if after is not None and after not in catalog.SCHEDULES:
        raise http.bad_request("is not a cursor this API returned", "cursor")
    start = names.index(after) + 1 if after is not None else 0
    page = names[start : start + limit]
    moment = timeutil.now() if now is None else now
    stored = runs().get_many(page)
    items = [item(current(name, stored.get(name, {})), stored.get(name, {}), moment) for name in page]
    more = start + limit < len(names)
    return http.page(items, {"name": page[-1]} if more and page else None)


def item(schedule: catalog.Schedule, state: dict[str, Any], moment: float) -> dict[str, Any]:
    """A schedule as the API shows it; `next_run` in UTC (None while disabled)."""
    upcoming = cron.next_run(schedule.expression, moment, timezone=schedule.timezone) if schedule.enabled else None
    return {
        "name": schedule.name,
        "expression": schedule.expression,
        "timezone": schedule.timezone,
        "enabled": schedule.enabled,
        "description": schedule.description,
        "queue": schedule.queue,
        "job_type": schedule.job_type,
        "next_run": slots.iso(upcoming) if upcoming else None,
        "last_run": state.get("last_run"),
        "last_status": state.get("last_status"),
        "last_job_id": state.get("last_job_id"),
    }


def update(name: str, changes: dict[str, Any], user: dict[str, Any], now: float | None = None) -> dict[str, Any]:
    """Change schedule `name`'s expression, zone or state at run time: checked (errors.Invalid
    naming the field), applied to the deployed EventBridge Scheduler schedule (in effect at once),
    stored, audited as `schedule.update`; returns the schedule as listed."""
    from chalicelib import http

    before = current(name)
    unknown = sorted(set(changes) - {"expression", "timezone", "enabled"})
    if unknown:
        raise http.bad_request("is not a schedule setting", unknown[0])
    after = dataclasses.replace(before, **changes)
    try:
        cron.validate(after.expression)
    except cron.CronError as exc:
        raise http.bad_request(f"is not a schedule expression: {exc}", "expression") from exc
    try:
        cron.zone(after.timezone)
    except cron.ZoneError as exc:
        raise http.bad_request(str(exc), "timezone") from exc
    if not isinstance(after.enabled, bool):
        raise http.bad_request("must be true or false", "enabled")
    try:
        remote.update(after)  # AWS first: what is stored is what runs
    except Exception as exc:  # botocore's errors: nothing stored, nothing audited; try again
        log.exception("could not update the Scheduler schedule %s", name)
        raise errors.Unavailable("EventBridge Scheduler could not be reached; try again") from exc
    stamp = timeutil.iso()
    runs().set_settings(name, after.expression, after.timezone, after.enabled, stamp)
    details = {
        field: {"from": getattr(before, field), "to": getattr(after, field)}
        for field in ("expression", "timezone", "enabled")
        if getattr(before, field) != getattr(after, field)
    }
    audit.record("schedule.update", resource=("schedule", name), details=details)
    state = runs().get(name) or {}
    return item(after, state, timeutil.now() if now is None else now)


def schedule_of(job: dict[str, Any]) -> catalog.Schedule | None:
    """The catalogue schedule a job was enqueued for, if any (from its payload)."""
    payload = job.get("payload")
    name = payload.get("schedule") if isinstance(payload, dict) else None
    schedule = catalog.SCHEDULES.get(name) if isinstance(name, str) else None
    if schedule is None or (schedule.queue, schedule.job_type) != (job.get("queue"), job.get("type")):
        return None
    return schedule


def on_job_event(event: events.JobEvent) -> None:
    """Store the outcome of a scheduled job as its schedule's last status."""
    status = _STATUS.get(event.kind)
    schedule = schedule_of(event.job) if status else None
    if schedule is not None and status is not None:
        runs().record_outcome(schedule.name, event.job["id"], status, timeutil.iso())


def sleep(seconds: float) -> None:
    """Tests replace this (`service.sleep`) so that waiting for a lease takes no time."""
    time.sleep(seconds)


@contextmanager
def exclusive(job: dict[str, Any], ctx: Any = None, *, poll: float = LEASE_POLL_SECONDS) -> Iterator[None]:
    """Run a scheduled job's processor holding its schedule's lease, so that it never overlaps the
    previous run of the same schedule. Jobs that come from no schedule pass straight through.

    While the previous run holds the lease, wait for it, polling, for at most half of this
    attempt's time (`ctx.time_left()`, so the run keeps the other half), then raise ScheduleBusy:
    a retriable failure, and the next attempt waits again. A run lasts at most its Lambda's
    timeout, so the waits of the queue's attempts together outlast any run they wait for.
    """
    schedule = schedule_of(job)
    if schedule is None:
        yield
        return
    lease = catalog.queue(schedule.queue).function_timeout  # no run outlives its Lambda
    budget = ctx.time_left() / 2 if ctx is not None else 0.0
    store, waited = runs(), 0.0
    while (holder := store.acquire(schedule.name, job["id"], timeutil.now(), lease)) is not None:
        retry_after = max(1, holder["until"] - int(timeutil.now()) + 1)
        if waited + poll > budget:
            raise ScheduleBusy(schedule.name, retry_after)
        sleep(poll)
        waited += poll
    try:
        yield
    finally:
        store.release(schedule.name, job["id"])


def handler(app: Any, name: str) -> Any:
    """Register schedule `name` as its own Lambda (`app.lambda_function`), which the stage's
    EventBridge Scheduler schedule of that name invokes (see `remote`); its handler is
    `app.<handler_name>`: assign the result to that name in app.py."""
    handler_name = slots.handler_name(name)

    def on_schedule(event: Any, context: Any = None) -> None:
        # Scheduler's input (remote.fire_input): `time` is the scheduled time, the slot
        fields = event if isinstance(event, dict) else {}
        fire(name, fields.get("time"), scheduled=fields.get("source") == "aws.scheduler")

    on_schedule.__name__ = on_schedule.__qualname__ = handler_name
    return app.lambda_function(name=handler_name)(on_schedule)
