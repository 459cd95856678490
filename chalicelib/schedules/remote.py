"""EventBridge Scheduler, the AWS side of schedules: one schedule group per stage
(`inkwell-<stage>`) holding a recurring schedule per catalogue schedule, and the one-time
schedules (`at(...)`) that hold jobs delayed past SQS's 15 minutes.

A recurring schedule invokes its handler Lambda with `fire_input`: the schedule's name and the
time it fired for (Scheduler's `<aws.scheduler.scheduled-time>`), which is the run's slot, so a
repeated delivery is the same slot whatever the expression is now. Its flexible time window is
off and its expression is read in its time zone. `definition` is the one description of a
schedule, used by the deploy paths (infra) and by run-time changes (`update`).

A one-time schedule sends a job's message to its queue when due and deletes itself
(ActionAfterCompletion DELETE); it is named after the job and its run, so promote and cancel
find it without a lookup.
"""

from __future__ import annotations

import json
import logging
import os
from datetime import UTC, datetime
from typing import Any

from chalicelib import aws, config
from chalicelib.catalog import Schedule

log = logging.getLogger("inkwell.schedules")

__all__ = [
    "ROLE_ARN",
    "at_expression",
    "create_one_time",
    "definition",
    "delete_one_time",
    "fire_input",
    "group_name",
    "one_time_name",
    "role_arn",
    "update",
]

ROLE_ARN = "INKWELL_SCHEDULER_ROLE_ARN"  # the role Scheduler assumes to send delayed jobs' messages
ROLE_NAME = "scheduler"  # inkwell-<stage>-scheduler unless ROLE_ARN says otherwise


def group_name(stage: str | None = None) -> str:
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


def account_of(queue_url: str) -> str:
    """The account id in an SQS queue URL (`https://sqs.<region>.amazonaws.com/<account>/<name>`)."""
    return queue_url.rstrip("/").split("/")[-2]


def queue_arn(queue_url: str) -> str:
    name = queue_url.rstrip("/").split("/")[-1]
    return f"arn:aws:sqs:{config.get().region}:{account_of(queue_url)}:{name}"


def role_arn(queue_url: str) -> str:
    return (
        os.environ.get(ROLE_ARN)
        or f"arn:aws:iam::{account_of(queue_url)}:role/{config.physical_name(config.get().stage, ROLE_NAME)}"
    )


def one_time_name(job_id: str, run: int) -> str:
    return f"job-{job_id}-{run}"


def at_expression(run_at: float) -> str:
    """`at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded up to the second (never early)."""
    moment = datetime.fromtimestamp(int(-(-run_at // 1)), UTC)
    return f"at({moment:%Y-%m-%dT%H:%M:%S})"


def create_one_time(name: str, queue_url: str, body: str, run_at: float) -> None:
    """One request: a schedule that sends `body` to the queue at `run_at` and then deletes itself."""
    aws.client("scheduler").create_schedule(
        Name=name,
        GroupName=group_name(),
        ScheduleExpression=at_expression(run_at),
        ScheduleExpressionTimezone="UTC",
        FlexibleTimeWindow={"Mode": "OFF"},
        ActionAfterCompletion="DELETE",
        Target={
            "Arn": queue_arn(queue_url),
            "RoleArn": role_arn(queue_url),
            "Input": body,
            "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
        },
    )


def delete_one_time(name: str) -> bool:
    """Delete a job's one-time schedule; False when there was none (it fired, or never existed)."""
    client = aws.client("scheduler")
    try:
        client.delete_schedule(Name=name, GroupName=group_name())
        return True
    except client.exceptions.ResourceNotFoundException:
        return False
