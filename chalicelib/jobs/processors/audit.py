"""The audit capability's jobs: `cleanup/audit_digest` seals the trail (hourly), and
`cleanup/activity_logs` sweeps audit events past their retention (weekly)."""

from __future__ import annotations

from typing import Any

from chalicelib import audit, timeutil
from chalicelib.audit import digest, retention
from chalicelib.jobs.errors import PermanentError
from chalicelib.jobs.processors.registry import JobContext, processor


@processor("cleanup", "audit_digest")
def audit_digest(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    try:
        result = digest.seal(timeutil.now())
    except digest.TamperDetected as exc:
        audit.record("audit.tamper_detected", details={"job_id": job["id"], "error": str(exc)})
        raise PermanentError(str(exc)) from None
    audit.record("audit.sealed", resource=("job", job["id"]), details=result)
    return result


@processor("cleanup", "activity_logs")
def activity_logs(job: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    result = retention.cleanup(timeutil.now())
    audit.record("audit.cleanup", resource=("job", job["id"]), details=result)
    return result
