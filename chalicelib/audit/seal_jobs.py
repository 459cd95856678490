"""The jobs that sign or write `audit_digests`: `cleanup/audit_digest` seals the trail (hourly; a
backlog larger than one run's time or segments continues in a follow-up job),
`cleanup/audit_tally` counts the finished minutes for the report (every 5 minutes,
`audit.counts`) and `cleanup/audit_export` writes an export (export.py). They are the cleanup
queue's `normal_only` types: only its own consumer (`jobs_cleanup`) runs them, and only that
function reaches this module (`infra.reach`), so it alone may `kms:Sign` and write
`audit_digests`; the other audit job (audit/jobs.py) runs on both cleanup consumers."""

from __future__ import annotations

from typing import Any

from chalicelib import audit, timeutil
from chalicelib.audit import chain, export, sealer, tally
from chalicelib.jobs.errors import PermanentError
from chalicelib.jobs.processor import JobContext, Processor
from chalicelib.jobs.sweep import carry_on


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


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (
    Processor("cleanup", "audit_digest", audit_digest),
    Processor("cleanup", "audit_tally", audit_tally),
    Processor("cleanup", "audit_export", export.run),
)
