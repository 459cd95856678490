"""Lifecycle news that belongs in the audit trail, taken from the event publisher: a job that
finally failed, an article whose status changed. Publishers never call the audit log directly;
app.py subscribes these listeners."""

from __future__ import annotations

from chalicelib import events
from chalicelib.audit.logger import record


def on_job_event(event: events.JobEvent) -> None:
    if event.kind != "failed":
        return
    job = event.job
    record(
        "job.failed",
        resource=("job", str(job.get("id"))),
        details={
            "queue": job.get("queue"),
            "type": job.get("type"),
            "attempts": job.get("attempts"),
            "caused_by": job.get("user_id"),
            "error": event.error or job.get("error"),
        },
    )


def on_article_status(event: events.ArticleStatusChanged) -> None:
    record(
        "article.status_changed",
        resource=("article", event.article_id),
        details={"status": event.status, "author_id": event.author_id, "job_id": event.job_id},
    )
