"""The audit trail's retention: `cleanup/activity_logs` (weekly) deletes the audit events past
their retention (a TTL per category, set on every event) that DynamoDB's TTL has not removed
yet, with the cleanup queue's sweep (bounded, continued by a follow-up job). A digest keeps each
event's TTL, so verify knows the absence of an expired one is expected.

Deleting audit events is the sealer's right alone: `activity_logs` is a `normal_only` type of
the cleanup queue, run only by its own consumer (`jobs_cleanup`, which seals), and the delete
is made here (`_delete`), so that only the functions reaching this module (that one) may
BatchWriteItem on `audit_events`; every other role writes them with Puts only. The jobs that
seal, count and export are in seal_jobs."""

from __future__ import annotations

from typing import Any

from chalicelib import audit, aws, catalog
from chalicelib.jobs.processor import JobContext, Processor
from chalicelib.jobs.sweep import carry_on, sweep_expired


def _delete(table: Any, key_names: list[str], items: list[dict[str, Any]]) -> None:
    with table.batch_writer(overwrite_by_pkeys=key_names) as writer:
        for item in items:
            writer.delete_item(Key={name: item[name] for name in key_names})


def activity_logs(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    result = carry_on(job, sweep_expired(aws.table("audit_events"), catalog.table("audit_events"), ctx, _delete))
    audit.record("audit.cleanup", resource=("job", job["id"]), details=result)
    return result


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (Processor("cleanup", "activity_logs", activity_logs),)
