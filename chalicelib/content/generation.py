"""An article's generation, its whole lifecycle: start (the route), run (the job), roll back,
cancel, retry.

start: one conditional write moves the article DRAFT (or PUBLISHED/ARCHIVED) -> PROCESSING naming
the job, then the job is queued; if queueing fails the article is rolled back and the caller gets
`errors.Unavailable`. Only the article's author or an admin may ask; a generation may be asked for
with a priority and a delay (`GenerateOptions`, the optional body of
`POST /api/articles/{id}/generate`). It returns the public job.

run (`articles/generate`): the job calls the generator (`generator.py`; progress 10 -> 90), then
moves the article PROCESSING -> PUBLISHED with the content, conditionally on that job id; the
webhook call carries the job id as its `Idempotency-Key` (a generator answers a repeated key with
its first result). When the
job fails for good the article rolls back to the status it had, and an alert is raised; when it is
cancelled the article rolls back too; an admin's retry puts it back into PROCESSING first. A run
killed after the article was published is recognised by the next (PUBLISHED under this job id,
read before the generator is called): it is not generated again, and its announcement and audit
event are published `again` (each listener checks it did not act on them already).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt

from chalicelib import audit, aws, config, errors, events, http, jobs, secret
from chalicelib.content import articles as content
from chalicelib.content.actions import NOT_YOURS, payload_of, status_changed, store
from chalicelib.content.generator import ArticleGenerator, WebhookLogs
from chalicelib.jobs.errors import PermanentError, RetryRefused
from chalicelib.jobs.processor import Job, JobContext, Processor
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


# --- run, roll back, cancel, retry ----------------------------------------------------------


class GeneratePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    article_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    title: str
    topic: str
    keywords: list[str] = Field(default_factory=list)

    def request(self) -> dict[str, Any]:
        """The webhook's body, exactly as the contract lists it."""
        return {"article_id": self.article_id, "title": self.title, "topic": self.topic, "keywords": self.keywords}


def generator() -> ArticleGenerator:
    settings = config.get()
    return ArticleGenerator(
        settings.article_webhook_url,
        secret.get(config.WEBHOOK_SECRET),
        WebhookLogs(aws.table("webhook_logs")),
        timeout=settings.webhook_timeout_seconds,
    )


def run_generate(job: Job, ctx: JobContext, articles: content.Articles, webhook: ArticleGenerator) -> dict[str, Any]:
    payload = payload_of(GeneratePayload, job)
    try:
        current = articles.get(payload.article_id)
    except content.ArticleNotFound:
        raise PermanentError(f"article {payload.article_id} no longer exists", kind="article_missing") from None
    if _published_by(current, job):  # a run killed after publishing: finish it, without generating again
        ctx.log("info", f"article {payload.article_id} was PUBLISHED by an earlier run of this job")
        return _finish(current, job, again=True)
    ctx.progress(10)
    ctx.log("info", f"calling the generator for article {payload.article_id} (attempt {ctx.attempt})")
    began = time.monotonic()
    try:
        text = webhook.generate(payload.request(), job_id=job["id"], attempt=ctx.attempt, time_left=ctx.time_left())
    except Exception as exc:
        took = (time.monotonic() - began) * 1000
        ctx.log("error", f"the generator failed after {took:.0f} ms: {exc}")
        raise
    ctx.log("info", f"the generator answered {len(text)} characters in {(time.monotonic() - began) * 1000:.0f} ms")
    ctx.progress(90)
    try:
        item = articles.complete_generation(payload.article_id, job["id"], text)
    except content.ArticleNotFound:
        raise PermanentError(f"article {payload.article_id} no longer exists", kind="article_missing") from None
    except content.InvalidTransition as exc:
        current = articles.get(payload.article_id)
        if _published_by(current, job):  # by a run of this job that is still going (or was killed)
            return _finish(current, job, again=True)
        raise PermanentError(str(exc), kind="invalid_transition") from None
    ctx.log("info", f"article {payload.article_id} is PUBLISHED")
    return _finish(item, job, again=False)


def _published_by(article: dict[str, Any], job: Job) -> bool:
    return article["status"] == "PUBLISHED" and article.get("job_id") == job["id"]


def _finish(item: dict[str, Any], job: Job, *, again: bool) -> dict[str, Any]:
    """Announce and audit the publication (`again`: only what an earlier run did not). The audit
    event is written now, before the job is completed: an invocation killed after the completion
    (its end flush not reached) is not run again, and would lose it."""
    status_changed(item, job["id"], again=again)
    audit.flush()
    return {"article_id": item["id"], "status": "PUBLISHED", "content_length": len(item.get("content") or "")}


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


def generate(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_generate(job, ctx, store(), generator())


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (
    Processor(
        "articles",
        "generate",
        generate,
        on_final_failure=generation_failed,
        on_retry=generation_retried,
        on_cancel=generation_cancelled,
    ),
)
