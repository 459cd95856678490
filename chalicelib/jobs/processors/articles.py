"""The articles queue: generate (through the webhook), publish, archive.

generate: the route put the article in PROCESSING with this job's id; the processor calls the
webhook (progress 10 -> 90), then moves the article PROCESSING -> PUBLISHED with the content,
conditionally on that job id. When the job fails for good the article rolls back to the status
it had, and an alert is raised; when it is cancelled the article rolls back too. A crash after the article was published is recognised on the
next attempt (PUBLISHED under this job id) and not repeated.

publish / archive: the route checked the transition was allowed when it was asked for; the job
applies it (conditionally). If the article is already where the job would take it (a second
request, or a crash after the write), the job succeeds without changing anything.
"""

from __future__ import annotations

import logging
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib import aws, config, events
from chalicelib.content import articles as content
from chalicelib.jobs.errors import PermanentError, RetryRefused
from chalicelib.jobs.processors.registry import Job, JobContext, Processor
from chalicelib.jobs.webhook import ArticleGenerator, WebhookLogs

log = logging.getLogger("inkwell.jobs.articles")


class GeneratePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    article_id: str = Field(pattern=r"^[0-9a-f]{32}$")
    title: str
    topic: str
    keywords: list[str] = Field(default_factory=list)

    def request(self) -> dict[str, Any]:
        """The webhook's body, exactly as the contract lists it."""
        return {"article_id": self.article_id, "title": self.title, "topic": self.topic, "keywords": self.keywords}


class ArticlePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    article_id: str = Field(pattern=r"^[0-9a-f]{32}$")


def _payload(model: type[BaseModel], job: Job) -> Any:
    try:
        return model.model_validate(job["payload"])
    except ValidationError as exc:
        raise PermanentError(f"invalid payload: {exc.errors()[0]['msg']}", kind="invalid_payload") from None


def store() -> content.Articles:
    return content.articles()


def generator() -> ArticleGenerator:
    settings = config.get()
    return ArticleGenerator(
        settings.article_webhook_url,
        config.secret(config.WEBHOOK_SECRET),
        WebhookLogs(aws.table("webhook_logs")),
        timeout=settings.webhook_timeout_seconds,
    )


def _status_changed(item: dict[str, Any], job_id: str | None) -> None:
    events.publish(events.ArticleStatusChanged(item["id"], item["status"], item["author_id"], job_id))


# --- generate -------------------------------------------------------------------------------------


def run_generate(job: Job, ctx: JobContext, articles: content.Articles, webhook: ArticleGenerator) -> dict[str, Any]:
    payload = _payload(GeneratePayload, job)
    ctx.progress(10)
    text = webhook.generate(payload.request(), job_id=job["id"], attempt=ctx.attempt, time_left=ctx.time_left())
    ctx.progress(90)
    try:
        item = articles.complete_generation(payload.article_id, job["id"], text)
    except content.ArticleNotFound:
        raise PermanentError(f"article {payload.article_id} no longer exists", kind="article_missing") from None
    except content.InvalidTransition as exc:
        current = articles.get(payload.article_id)
        if current["status"] == "PUBLISHED" and current.get("job_id") == job["id"]:
            return {"article_id": payload.article_id, "status": "PUBLISHED", "content_length": len(text)}
        raise PermanentError(str(exc), kind="invalid_transition") from None
    _status_changed(item, job["id"])
    return {"article_id": payload.article_id, "status": "PUBLISHED", "content_length": len(text)}


def _roll_back(job: Job, articles: content.Articles) -> dict[str, Any] | None:
    """The article of a generation that will not run (any more) back to its previous status,
    announced; None when there is nothing to roll back (done already, or the article moved on)."""
    article_id = str(job["payload"].get("article_id", ""))
    try:
        restored = articles.rollback(article_id, job["id"])
    except (content.ArticleNotFound, content.InvalidTransition) as exc:
        log.warning("no rollback for job %s: %s", job["id"], exc)
        return None
    _status_changed(restored, job["id"])
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
    _status_changed(item, job["id"])


def generate(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_generate(job, ctx, store(), generator())


# --- publish / archive ------------------------------------------------------------------------------


def run_transition(job: Job, action: str, articles: content.Articles) -> dict[str, Any]:
    payload = _payload(ArticlePayload, job)
    target = content.TRANSITIONS[action][1]
    try:
        item = articles.transition(payload.article_id, action)
    except content.ArticleNotFound:
        raise PermanentError(f"article {payload.article_id} no longer exists", kind="article_missing") from None
    except content.InvalidTransition as exc:
        if exc.status == target:
            return {"article_id": payload.article_id, "status": target, "changed": False}
        raise PermanentError(str(exc), kind="invalid_transition") from None
    _status_changed(item, job["id"])
    return {"article_id": payload.article_id, "status": target, "changed": True}


def publish(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_transition(job, "publish", store())


def archive(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_transition(job, "archive", store())


# What this module runs, per (queue, job type): collected by `processors.table()`.
PROCESSORS = (
    Processor(
        "articles",
        "generate",
        generate,
        on_final_failure=generation_failed,
        on_retry=generation_retried,
        on_cancel=generation_cancelled,
    ),
    Processor("articles", "publish", publish),
    Processor("articles", "archive", archive),
)
