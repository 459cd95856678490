"""Scheduled tasks on EventBridge, exactly once per slot (see `service` for the flow, `slots` for
what a slot is, `store` for the last runs and the run lease)."""

from chalicelib.schedules.service import (
    ScheduleBusy,
    exclusive,
    fire,
    get,
    handler,
    listing,
    on_job_event,
    run_now,
    runs,
    schedule_of,
)

__all__ = [
    "ScheduleBusy",
    "exclusive",
    "fire",
    "get",
    "handler",
    "listing",
    "on_job_event",
    "run_now",
    "runs",
    "schedule_of",
]
