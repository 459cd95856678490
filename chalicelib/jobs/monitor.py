"""The one place a job's state changes are announced.

Every change (active, progress, completed, failed, retrying, cancelled) is logged as one line, its `event`,
`job_id`, `queue`, `state`, ... as fields of the structured line (`chalicelib.observe.logs`), and
published as `events.JobEvent`; the realtime emitters and the audit logger subscribe to that
event type, so neither the worker nor a processor knows about them.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib import events
from chalicelib.jobs.records import public

log = logging.getLogger("inkwell.jobs")

KINDS = ("active", "progress", "completed", "failed", "retrying", "cancelled")


def emit(kind: str, record: dict[str, Any], error: dict[str, Any] | None = None) -> None:
    if kind not in KINDS:
        raise ValueError(f"unknown job event kind {kind!r}")
    job = public(record)
    line = {
        "event": f"job.{kind}",
        "job_id": job["id"],
        "queue": job["queue"],
        "type": job["type"],
        "state": job["state"],
        "attempts": job["attempts"],
        "progress": job["progress"],
    }
    if error:
        line["error"] = error
    level = logging.WARNING if kind in ("failed", "retrying") else logging.INFO
    log.log(level, "job.%s %s", kind, job["id"], extra={"fields": line})
    events.publish(events.JobEvent(kind=kind, job=job, error=error))
