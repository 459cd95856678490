"""EventBridge Scheduler, the AWS side of schedules: one schedule group per stage
(`inkwell-<stage>`) holding a recurring schedule per catalogue schedule (and the one-time
schedules of delayed jobs, `chalicelib.jobs.later`).

A recurring schedule invokes its handler Lambda with `fire_input`: the schedule's name and the
time it fired for (Scheduler's `<aws.scheduler.scheduled-time>`), which is the run's slot, so a
repeated delivery is the same slot whatever the expression is now. Its flexible time window is
off and its expression is read in its time zone. `definition` is the one description of a
schedule, used by the deploy paths (infra) and by run-time changes (`update`).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import aws, config
from chalicelib.catalog import Schedule

__all__ = ["definition", "fire_input", "group_name", "update"]


def group_name(stage: str | None = None) -> str:
    """The stage's schedule group, `inkwell-<stage>` (the delayed jobs' schedules are in it too)."""
    return config.physical_name(stage or config.get().stage)


def fire_input(name: str) -> str:
    """The event a recurring schedule sends its Lambda (Scheduler fills in the placeholders)."""
    return json.dumps(
        {
            "schedule": name,
            "time": "<aws.scheduler.scheduled-time>",
            "id": "<aws.scheduler.execution-id>",
            "source": "aws.scheduler",
            "detail-type": "Scheduled Event",
            "resources": ["<aws.scheduler.schedule-arn>"],
            "detail": {},
        },
        separators=(",", ":"),
    )


def definition(schedule: Schedule, function_arn: str, role: str, group: str | None = None) -> dict[str, Any]:
    """CreateSchedule / UpdateSchedule arguments of a catalogue schedule (as the catalogue has it,
    or as an admin changed it)."""
    return {
        "Name": schedule.name,
        "GroupName": group or group_name(),
        "Description": schedule.description,
        "ScheduleExpression": schedule.expression,
        "ScheduleExpressionTimezone": schedule.timezone,
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED" if schedule.enabled else "DISABLED",
        "Target": {
            "Arn": function_arn,
            "RoleArn": role,
            "Input": fire_input(schedule.name),
            "RetryPolicy": {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600},
        },
    }


def update(schedule: Schedule) -> None:
    """Make the deployed schedule run as `schedule` says (expression, zone, state): it keeps its
    target. Two requests (GetSchedule, UpdateSchedule); Scheduler applies it at once."""
    client = aws.client("scheduler")
    current = client.get_schedule(Name=schedule.name, GroupName=group_name())
    target = current["Target"]
    client.update_schedule(**{**definition(schedule, target["Arn"], target["RoleArn"]), "Target": target})
