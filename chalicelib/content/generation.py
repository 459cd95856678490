"""An article's generation around its run: start (the route), and the hooks of the job's lifecycle
(roll back on a final failure or a cancel, back into PROCESSING on an admin's retry). The run
itself, the only part that calls the generator (and reads its webhook secret), is
`generation_job.py`: the REST function runs this module (the route, and the hooks through a retry
or a cancel), never the run.

start: one conditional write moves the article DRAFT (or PUBLISHED/ARCHIVED) -> PROCESSING naming
the job, then the job is queued; if queueing fails the article is rolled back and the caller gets
`errors.Unavailable`. Only the article's author or an admin may ask; a generation may be asked for
with a priority and a delay (`GenerateOptions`, the optional body of
`POST /api/articles/{id}/generate`). It returns the public job.

When the job fails for good the article rolls back to the status it had, and an alert is raised;
when it is cancelled the article rolls back too; an admin's retry puts it back into PROCESSING first.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field, StrictInt

from chalicelib import audit, errors, events, http, jobs
from chalicelib.content import articles as content
from chalicelib.content.actions import NOT_YOURS, status_changed, store
from chalicelib.jobs.errors import RetryRefused
from chalicelib.jobs.processor import Job
from chalicelib.jobs.processor import log as job_log
from chalicelib.jobs.queues import MAX_JOB_DELAY_SECONDS

log = logging.getLogger("inkwell.content")

# --- start ----------------------------------------------------------------------------------------


class GenerateOptions(http.Body):
    priority: Literal["high", "normal"] = "normal"
    delay_seconds: StrictInt = Field(default=0, ge=0, le=MAX_JOB_DELAY_SECONDS)


def generation_options(request: Any) -> GenerateOptions:
    """The optional body: none (or an empty one) is normal priority, now."""
    if not request.raw_body:
        return GenerateOptions()
    return http.parse(GenerateOptions, request)


def start(article_id: str, user: dict[str, Any], options: GenerateOptions | None = None) -> dict[str, Any]:
    from chalicelib.jobs import records

    options = options or GenerateOptions()
    articles = store()
    job_id = records.new_id()
    author = None if user["role"] == "admin" else user["id"]
    if options.delay_seconds:  # before the article changes: a refused job leaves it as it was
        from chalicelib import limits, quotas

        quotas.hold_delayed(user["id"], job_id, limits.limits().delayed_jobs)
    try:  # one conditional write checks existence, authorship and the transition
        item = articles.transition(article_id, "generate", extra={"job_id": job_id}, author_id=author)
    except content.ArticleNotFound:
        raise errors.NotFound(f"article {article_id}") from None
    except content.NotTheAuthor:
        raise errors.Forbidden(NOT_YOURS) from None
    except content.InvalidTransition as exc:
        raise errors.Conflict(str(exc)) from None
    status_changed(item, job_id)
    payload = {
        "article_id": article_id,
        "title": item["title"],
        "topic": item["topic"],
        "keywords": list(item.get("keywords") or []),
    }
    try:
        job = jobs.enqueue(
            "articles",
            "generate",
            payload,
            user_id=user["id"],
            job_id=job_id,
            priority=options.priority,
            delay_seconds=options.delay_seconds,
        )
    except jobs.EnqueueError:  # a 503 for the caller, once the article is back as it was
        try:
            status_changed(articles.rollback(article_id, job_id), job_id)
        except Exception:
            log.exception("could not roll back article %s after a failed enqueue", article_id)
        raise
    details = {"job_id": job["id"], "priority": options.priority, "delay_seconds": options.delay_seconds}
    audit.record("article.generate", resource=("article", article_id), details=details)
    return job


# --- roll back: a final failure, a cancel; an admin's retry --------------------------------------


def _roll_back(job: Job, articles: content.Articles) -> dict[str, Any] | None:
    """The article of a generation that will not run (any more) back to its previous status,
    announced; None when there is nothing to roll back (done already, or the article moved on)."""
    article_id = str(job["payload"].get("article_id", ""))
    try:
        restored = articles.rollback(article_id, job["id"])
    except (content.ArticleNotFound, content.InvalidTransition) as exc:
        log.warning("no rollback for job %s: %s", job["id"], exc)
        return None
    status_changed(restored, job["id"])
    job_log("warning", f"article {article_id} rolled back to {restored['status']}")
    return restored


def generation_failed(job: Job, error: dict[str, str], articles: content.Articles | None = None) -> None:
    """The final failure: roll the article back, announce it, raise an alert. Runs before the
    job is recorded failed; run again after a crash, the rollback finds nothing left to do."""
    article_id = str(job["payload"].get("article_id", ""))
    restored = _roll_back(job, articles or store())
    events.publish(
        events.Alert(
            level="critical",
            message=f"generation of article {article_id} failed: {error['message']}",
            details={
                "job_id": job["id"],
                "article_id": article_id,
                "error": error,
                "attempts": job["attempts"],
                "rolled_back_to": restored["status"] if restored else None,
            },
        )
    )


def generation_cancelled(job: Job, articles: content.Articles | None = None) -> None:
    """A cancelled generation: the article rolls back (idempotent: run again, it finds nothing)."""
    _roll_back(job, articles or store())


def generation_retried(job: Job, articles: content.Articles | None = None) -> None:
    """Before an admin's retry: the article goes back into PROCESSING under this job."""
    article_id = str(job["payload"].get("article_id", ""))
    try:
        item = (articles or store()).transition(article_id, "generate", extra={"job_id": job["id"]})
    except content.ArticleNotFound:
        raise RetryRefused(f"article {article_id} no longer exists") from None
    except content.InvalidTransition as exc:
        raise RetryRefused(str(exc)) from None
    status_changed(item, job["id"])
