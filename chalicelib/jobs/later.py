"""Jobs delayed past SQS's 15 minutes wait on EventBridge Scheduler one-time schedules.

`hold(...)` creates, in the stage's schedule group (`inkwell-<stage>`, see
chalicelib.schedules.remote), a schedule `at(<run_at UTC>)` whose target is the job's queue and
whose input is the job's message: Scheduler sends it when due and then deletes the schedule
(ActionAfterCompletion DELETE). One request, whatever the delay (a year is one request too,
where hops of 15 minutes took about 35,000 messages). The schedule is named after the job and
its run (`job-<id>-<run>`), so promote and cancel find it without a lookup (`release`). The role
Scheduler assumes to send is `inkwell-<stage>-scheduler` in the queue's account, or
`INKWELL_SCHEDULER_ROLE_ARN`.
"""

from __future__ import annotations

import logging
import os
from datetime import UTC, datetime
from typing import Any

from chalicelib import aws, config

log = logging.getLogger("inkwell.jobs")

__all__ = ["ROLE_ARN", "at_expression", "hold", "release", "schedule_name"]

ROLE_ARN = "INKWELL_SCHEDULER_ROLE_ARN"
ROLE_NAME = "scheduler"


def schedule_name(job_id: str, run: int) -> str:
    return f"job-{job_id}-{run}"


def at_expression(run_at: float) -> str:
    """`at(yyyy-mm-ddThh:mm:ss)` in UTC, rounded up to the second (never early)."""
    moment = datetime.fromtimestamp(-(-run_at // 1), UTC)
    return f"at({moment:%Y-%m-%dT%H:%M:%S})"


def _account(queue_url: str) -> str:
    return queue_url.rstrip("/").split("/")[-2]  # https://sqs.<region>.amazonaws.com/<account>/<name>


def queue_arn(queue_url: str) -> str:
    name = queue_url.rstrip("/").split("/")[-1]
    return f"arn:aws:sqs:{config.get().region}:{_account(queue_url)}:{name}"


def role_arn(queue_url: str) -> str:
    default = f"arn:aws:iam::{_account(queue_url)}:role/{config.physical_name(config.get().stage, ROLE_NAME)}"
    return os.environ.get(ROLE_ARN) or default


def hold(name: str, queue_url: str, body: str, run_at: float, group: str | None = None) -> None:
    """One CreateSchedule: `body` goes to the queue at `run_at` (with MessageGroupId `group` on a
    fair queue), then the schedule is gone. A ConflictException (the name exists) means done."""
    target: dict[str, Any] = {
        "Arn": queue_arn(queue_url),
        "RoleArn": role_arn(queue_url),
        "Input": body,
        "RetryPolicy": {"MaximumRetryAttempts": 185, "MaximumEventAgeInSeconds": 86400},
    }
    if group:
        target["SqsParameters"] = {"MessageGroupId": group}
    client = aws.client("scheduler")
    try:
        client.create_schedule(
            Name=name,
            GroupName=config.physical_name(config.get().stage),
            ScheduleExpression=at_expression(run_at),
            ScheduleExpressionTimezone="UTC",
            FlexibleTimeWindow={"Mode": "OFF"},
            ActionAfterCompletion="DELETE",
            Target=target,
        )
    except client.exceptions.ConflictException:
        # The name is the job's and its run's, which only this call holds: the schedule is this
        # very request's, applied but its answer lost and sent again by the SDK. Done.
        log.info("one-time schedule %s exists already: held", name)


def release(name: str) -> bool:
    """Delete a job's one-time schedule; False when there is none (it fired, or never was).
    Best effort: a failure is logged, and a message that comes anyway is stale (acknowledged)."""
    client = aws.client("scheduler")
    try:
        client.delete_schedule(Name=name, GroupName=config.physical_name(config.get().stage))
        return True
    except client.exceptions.ResourceNotFoundException:
        return False
    except Exception:
        log.exception("could not delete the one-time schedule %s", name)
        return False
