"""EventBridge Scheduler (and EventBridge rules): fires the app's schedules at their cron/rate
times, in their time zones, or on demand; and the one-time schedules of delayed jobs.

A Scheduler schedule (the catalogue's, held by moto, which fires nothing) is read back from moto
with its expression, time zone and state, so a run-time change (`PUT /api/schedules/{name}`)
takes effect here as on AWS; its handler gets the schedule's input with Scheduler's placeholders
filled in (the scheduled time, the schedule's ARN). A one-time schedule (`at(...)`) sends its
input to its SQS queue when due and is deleted. A `@app.schedule` handler (the tests' apps) is
invoked with the scheduled-event payload EventBridge sends (`id`, `detail-type` "Scheduled
Event", `source` "aws.events", `time`, `resources` = [the rule's ARN]).
Next fire times come from `chalicelib.cron`, the calculator the schedules API uses too. A rule
disabled in the emulated EventBridge (`events.disable_rule`) is skipped, as on AWS; firing on
demand ignores the schedule's state (it is "run now"). Its clock may start at any time and run
faster than real time (`INKWELL_SCHEDULER_START`, `INKWELL_SCHEDULER_SPEED`), so tests see the
schedules fire at their cron times without waiting for them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

from chalice.local import LambdaContext

from chalicelib import cron
from chalicelib.schedules import slots
from local import logs
from local.emulated_aws import ACCOUNT
from local.sources import ScheduleSource


class UnknownSchedule(KeyError):
    pass


def scheduled_event(rule_arn: str, at: datetime, region: str, event_id: str | None = None) -> dict[str, Any]:
    return {
        "version": "0",
        "id": event_id or str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": ACCOUNT,
        "time": at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [rule_arn],
        "detail": {},
    }


class Scheduler:
    """Fires the app's schedules on its clock: EventBridge Scheduler schedules as moto holds them
    (expression, time zone and state read back every REFRESH seconds, so a run-time change is in
    effect within them), `@app.schedule` rules, and the one-time schedules of delayed jobs."""

    REFRESH = 5.0  # real seconds between reads of the emulated Scheduler's schedules

    def __init__(
        self,
        schedules: list[ScheduleSource],
        events: Any,
        region: str,
        stop: threading.Event,
        clock: Callable[[], float] = time.time,
        speed: float = 1.0,
        scheduler: Any = None,
        sqs: Any = None,
        group: str = "",
    ) -> None:
        self._by_name = {s.name: s for s in schedules}
        self._events, self._region, self._stop, self._clock = events, region, stop, clock
        self._scheduler, self._sqs, self._group = scheduler, sqs, group
        self._speed = speed  # of `clock` against real time: waits are divided by it
        # Slots count from construction, not from when the thread gets to run: on a fast clock a
        # slow start-up would otherwise skip the first slots.
        self._since = clock()
        self._settings: dict[str, tuple[str, str, bool]] = {}
        self._read_at = -self.REFRESH
        self._pool = ThreadPoolExecutor(max_workers=4, thread_name_prefix="schedule")
        self.thread = threading.Thread(target=self.run, name="scheduler", daemon=True)

    def find(self, name: str) -> ScheduleSource:
        """By handler name, function name, or catalogue-style name (`session-cleanup`)."""
        for source in self._by_name.values():
            if name in (source.name, source.function_name, source.name.replace("_", "-")):
                return source
        raise UnknownSchedule(name)

    def settings(self, source: ScheduleSource) -> tuple[str, str, bool]:
        """(expression, time zone, enabled) of a schedule now: the emulated Scheduler's for a
        Scheduler schedule, the rule's state for a rule."""
        if source.schedule and self._scheduler is not None:
            try:
                found = self._scheduler.get_schedule(Name=source.schedule, GroupName=self._group)
                return (
                    found["ScheduleExpression"],
                    found.get("ScheduleExpressionTimezone") or "UTC",
                    found.get("State") != "DISABLED",
                )
            except Exception:
                return source.expression, source.timezone, True  # the store failing must not silence it
        return source.expression, "UTC", self._enabled(source)

    def describe(self) -> list[dict[str, Any]]:
        now = self._clock()
        out = []
        for s in self._by_name.values():
            expression, zone, enabled = self.settings(s)
            out.append(
                {
                    "name": s.name,
                    "rule": s.function_name,
                    "rule_arn": s.rule_arn,
                    "schedule_arn": s.schedule_arn,
                    "expression": expression,
                    "timezone": zone,
                    "enabled": enabled,
                    "next_run": _iso(cron.next_run(expression, now, timezone=zone)) if enabled else None,
                }
            )
        return out

    def event(self, source: ScheduleSource, at: datetime) -> dict[str, Any]:
        """What the schedule's target gets: Scheduler's input with its placeholders filled, or
        EventBridge's scheduled event for a rule."""
        if source.schedule and self._scheduler is not None:
            try:
                found = self._scheduler.get_schedule(Name=source.schedule, GroupName=self._group)
                text = found["Target"]["Input"]
                for placeholder, value in (
                    ("<aws.scheduler.scheduled-time>", at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")),
                    ("<aws.scheduler.execution-id>", str(uuid.uuid4())),
                    ("<aws.scheduler.schedule-arn>", found["Arn"]),
                ):
                    text = text.replace(placeholder, value)
                return dict(json.loads(text))
            except Exception as exc:
                logs.line("SCHED", f"{source.name}: no Scheduler input ({type(exc).__name__}); a plain event")
        return scheduled_event(source.rule_arn or source.schedule_arn, at, self._region)

    def _latest(self, source: ScheduleSource) -> datetime:
        """On demand, a Scheduler schedule's event is its latest firing delivered again (its
        scheduled time, the slot); a rule's is now, as EventBridge would send it."""
        now = datetime.fromtimestamp(self._clock(), UTC)
        if not source.schedule:
            return now
        expression, zone, _ = self.settings(source)
        try:
            return slots.slot_of(expression, now, zone)
        except ValueError:
            return now

    def fire(self, name: str, at: datetime | None = None, reason: str = "on demand") -> dict[str, Any]:
        """Invoke one schedule's handler now (synchronously); a summary of the firing."""
        source = self.find(name)
        event = self.event(source, at or self._latest(source))
        context = LambdaContext(source.function_name, 512, 60_000)
        started = time.perf_counter()
        summary: dict[str, Any] = {
            "name": source.name,
            "rule_arn": source.rule_arn,
            "schedule_arn": source.schedule_arn,
            "event_id": event.get("id"),
        }
        try:
            result = source.handler(event, context)
            summary.update(status="ok", result=result if isinstance(result, (dict, list, str, int)) else None)
        except Exception as exc:
            summary.update(status="error", error=f"{type(exc).__name__}: {exc}")
        logs.line(
            "SCHED",
            f"{source.name} ({source.expression}, {reason}) {summary['status']}"
            f"{' ' + summary['error'] if 'error' in summary else ''} {logs.ms(started)} event={event.get('id')}",
        )
        return summary

    def _enabled(self, source: ScheduleSource) -> bool:
        try:
            return self._events.describe_rule(Name=source.function_name).get("State") == "ENABLED"
        except Exception:
            return True  # the emulator's own store failing must not silence schedules

    def _refresh(self, upcoming: dict[str, datetime | None]) -> None:
        """Read the schedules' settings again; a schedule whose expression or zone changed counts
        its next run from now."""
        if time.monotonic() - self._read_at < self.REFRESH:
            return
        self._read_at = time.monotonic()
        for source in self._by_name.values():
            current = self.settings(source)
            before = self._settings.get(source.name)
            self._settings[source.name] = current
            if before is None:
                upcoming[source.name] = cron.next_run(current[0], self._since, timezone=current[1])
            elif before[:2] != current[:2]:
                upcoming[source.name] = cron.next_run(current[0], self._clock(), timezone=current[1])
        if self._scheduler is not None and self._sqs is not None:
            try:
                for name in fire_one_time(self._scheduler, self._sqs, self._group, self._clock()):
                    logs.line("SCHED", f"one-time schedule {name} sent its message")
            except Exception as exc:
                logs.line("SCHED", f"one-time schedules not fired: {type(exc).__name__}: {exc}")

    def run(self) -> None:
        upcoming: dict[str, datetime | None] = {}
        while not self._stop.is_set():
            self._refresh(upcoming)
            due = [name for name, at in upcoming.items() if at is not None and at.timestamp() <= self._clock()]
            for name in due:
                source, at = self._by_name[name], upcoming[name]
                expression, zone, enabled = self._settings[name]
                assert at is not None
                upcoming[name] = cron.next_run(expression, at, timezone=zone)
                if enabled if source.schedule else self._enabled(source):
                    self._pool.submit(self.fire, name, at, "scheduled")
            times = [at.timestamp() for at in upcoming.values() if at is not None]
            wait = min(times) - self._clock() if times else 60.0
            self._stop.wait(max(0.05, min(wait / self._speed, self.REFRESH)))

    def shutdown(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def fast_clock(
    start: str | None = None, speed: float = 1.0, real: Callable[[], float] = time.time
) -> Callable[[], float]:
    """Epoch seconds on a clock that reads `start` (ISO 8601, default now) when made and then runs
    `speed` times faster than real time (the e2e tests see a day of schedules in seconds)."""
    if speed <= 0:
        raise ValueError("the scheduler's speed must be positive")
    origin = real()
    begin = datetime.fromisoformat(start.replace("Z", "+00:00")).timestamp() if start else origin
    return lambda: begin + (real() - origin) * speed


def _iso(moment: datetime | None) -> str | None:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ") if moment else None


def fire_one_time(scheduler: Any, sqs: Any, group: str, now: float) -> list[str]:
    """EventBridge Scheduler's one-time schedules (`at(...)`, the delayed jobs') that are due at
    `now`: send each one's input to its SQS target, then delete it (ActionAfterCompletion
    DELETE); returns their names. moto stores them and fires nothing: this is the firing."""
    fired: list[str] = []
    try:
        listed = scheduler.list_schedules(GroupName=group, NamePrefix="job-")["Schedules"]
    except Exception:
        return fired  # no group yet
    for summary in listed:
        found = scheduler.get_schedule(Name=summary["Name"], GroupName=group)
        expression = found.get("ScheduleExpression", "")
        if not expression.startswith("at(") or found.get("State") == "DISABLED":
            continue
        due = datetime.fromisoformat(expression[3:-1]).replace(tzinfo=UTC).timestamp()
        if due > now:
            continue
        target = found["Target"]
        url = sqs.get_queue_url(QueueName=target["Arn"].rsplit(":", 1)[-1])["QueueUrl"]
        message_group = (target.get("SqsParameters") or {}).get("MessageGroupId")
        extra = {"MessageGroupId": message_group} if message_group else {}
        sqs.send_message(QueueUrl=url, MessageBody=target["Input"], **extra)
        if found.get("ActionAfterCompletion") == "DELETE":
            scheduler.delete_schedule(Name=found["Name"], GroupName=group)
        fired.append(found["Name"])
    return fired
