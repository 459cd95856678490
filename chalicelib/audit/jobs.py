"""The audit capability's job that either cleanup consumer may run: `cleanup/activity_logs`
(weekly) deletes the audit events past their retention (a TTL per category, set on every event)
that DynamoDB's TTL has not removed yet, with the cleanup queue's sweep (bounded, continued by a
follow-up job). A digest keeps each event's TTL, so verify knows the absence of an expired one
is expected. The jobs that seal, count and export are in seal_jobs (one function runs them)."""

from __future__ import annotations

from typing import Any

from chalicelib import audit
from chalicelib.jobs.processor import JobContext, Processor
from chalicelib.jobs.sweep import carry_on, sweep


def activity_logs(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    result = carry_on(job, sweep("audit_events", ctx))
    audit.record("audit.cleanup", resource=("job", job["id"]), details=result)
    return result


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (Processor("cleanup", "activity_logs", activity_logs),)
