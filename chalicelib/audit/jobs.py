"""The audit capability's jobs: `cleanup/audit_digest` seals the trail (hourly; a backlog larger
than one run's time or segments continues in a follow-up job), `cleanup/audit_tally` counts
the finished minutes for the report (every 5 minutes, `audit.counts`), and
`cleanup/activity_logs` (weekly) deletes the audit events past their retention (a TTL per
category, set on every event) that DynamoDB's TTL has not removed yet, with the cleanup queue's
sweep (bounded, continued by a follow-up job). A digest keeps each event's TTL, so verify knows
the absence of an expired one is expected."""

from __future__ import annotations

from typing import Any

from chalicelib import audit, timeutil
from chalicelib.audit import chain, export, sealer, tally
from chalicelib.jobs.errors import PermanentError
from chalicelib.jobs.processor import JobContext, Processor
from chalicelib.jobs.sweep import carry_on, sweep


def audit_digest(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    try:
        result = sealer.seal(timeutil.now(), ctx.time_left)
    except chain.TamperDetected as exc:
        audit.record("audit.tamper_detected", details={"job_id": job["id"], "error": str(exc)})
        raise PermanentError(str(exc)) from None
    audit.record("audit.sealed", resource=("job", job["id"]), details=result)
    return carry_on(job, result)


def audit_tally(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Count the finished minutes (every 5 minutes), so that a report reads counts up to a few
    minutes ago; not audited (it runs 288 times a day and changes nothing readable). First, the
    refusals of floods counted but not recorded yet become events (`audit.floods`)."""
    from chalicelib.audit import floods

    flooded = floods.flush()
    return {**tally.count(timeutil.now(), ctx.time_left), "flood_events": flooded}


def activity_logs(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    result = carry_on(job, sweep("audit_events", ctx))
    audit.record("audit.cleanup", resource=("job", job["id"]), details=result)
    return result


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (
    Processor("cleanup", "audit_digest", audit_digest),
    Processor("cleanup", "audit_tally", audit_tally),
    Processor("cleanup", "activity_logs", activity_logs),
    Processor("cleanup", "audit_export", export.run),
)
