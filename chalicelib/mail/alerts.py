"""The alert email for a job that failed for good: app.py subscribes `alert_on_failure` to every
`JobEvent`; it queues one `emails/send` per failure (its idempotency key is the failure, so a
duplicate event sends nothing more), never for a failed email (which would loop)."""

from __future__ import annotations

from typing import Any

from chalicelib import events

Job = dict[str, Any]


def failure_email(job: Job, error: dict[str, Any] | None) -> dict[str, Any]:
    """The payload of the alert email for a failed job (pure)."""
    error = error or job.get("error") or {}
    return {
        "template": "job_failed",
        "data": {
            "job_id": job["id"],
            "queue": job["queue"],
            "type": job["type"],
            "attempts": job["attempts"],
            "error": error.get("message", ""),
            "error_kind": error.get("kind", ""),
            "finished_at": job.get("finished_at") or job.get("updated_at"),
        },
    }


def alert_on_failure(event: events.JobEvent) -> None:
    if event.kind != "failed" or event.job["queue"] == "emails":
        return
    from chalicelib import jobs

    job = event.job
    jobs.enqueue(
        "emails",
        "send",
        failure_email(job, event.error),
        idempotency_key=f"job-failed:{job['id']}:{job.get('finished_at') or job['updated_at']}",
    )
