"""Lifecycle news that belongs in the audit trail, taken from the event publisher: a job that
finally failed, an article whose status changed. Publishers never call the audit log directly;
app.py subscribes these listeners."""

from __future__ import annotations

import logging

from chalicelib import events
from chalicelib.audit.logger import record

log = logging.getLogger("inkwell.audit")


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
    if event.again and recorded_change(event):
        return
    record(
        "article.status_changed",
        resource=("article", event.article_id),
        details={"status": event.status, "author_id": event.author_id, "job_id": event.job_id},
    )


AGAIN_WINDOW_SECONDS = 86400.0  # how far back a run finishing a killed one looks for its audit event


def recorded_change(event: events.ArticleStatusChanged) -> bool:
    """Whether the article's trail already holds this change by this job (a killed run wrote it
    before it died): one query of the resource index, its latest 100 events of the last day. When
    the trail cannot be read, False: an event recorded twice (same job) beats one lost."""
    from chalicelib import aws, timeutil
    from chalicelib.audit import model, store

    now = timeutil.now()
    since, until = now - AGAIN_WINDOW_SECONDS, now + 60
    try:
        source, rest = store.source_for({"resource_type": "article", "resource_id": event.article_id}, since, until)
        items, _ = store.AuditStore(aws.table("audit_events")).merge_page(
            source, store.sort_key_bounds(since, until), 100, None, rest
        )
    except Exception:
        log.exception("could not read the audit trail of article %s; recording its change", event.article_id)
        return False
    for item in map(model.public, items):
        details = item.get("details") or {}
        if item.get("action") == "article.status_changed" and (details.get("status"), details.get("job_id")) == (
            event.status,
            event.job_id,
        ):
            return True
    return False
