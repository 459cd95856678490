"""The `articles/generate` job's run: the only code that calls the article generator, hence the
only reader of its webhook secret (`WEBHOOK_SECRET`), run by the articles queues' consumers alone.
Starting a generation and the job's hooks (roll back, retry) are `generation.py`'s.

The job calls the generator (`generator.py`; progress 10 -> 90), then moves the article
PROCESSING -> PUBLISHED with the content, conditionally on that job id; the webhook call carries
the job id as its `Idempotency-Key` (a generator answers a repeated key with its first result). A
run killed after the article was published is recognised by the next (PUBLISHED under this job
id, read before the generator is called): it is not generated again, and its announcement and
audit event are published `again` (each listener checks it did not act on them already).
"""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from chalicelib import audit, aws, config, secret
from chalicelib.content import articles as content
from chalicelib.content import generation
from chalicelib.content.actions import payload_of, status_changed, store
from chalicelib.content.generator import ArticleGenerator, WebhookLogs
from chalicelib.jobs.errors import PermanentError
from chalicelib.jobs.processor import Job, JobContext, Processor


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


def generate(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_generate(job, ctx, store(), generator())


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (
    Processor(
        "articles",
        "generate",
        generate,
        on_final_failure=generation.generation_failed,
        on_retry=generation.generation_retried,
        on_cancel=generation.generation_cancelled,
    ),
)
