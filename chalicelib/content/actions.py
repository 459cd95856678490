"""The article actions that queue a job: generate, publish, archive.

`generate` moves the article DRAFT (or PUBLISHED/ARCHIVED) -> PROCESSING with a conditional write
naming the job, then queues the job; if queueing fails the article is rolled back and the caller
gets `errors.Unavailable`. publish and archive check the transition now (`errors.Conflict` if it
is not allowed) and queue the job that applies it. Only the article's author or an admin may ask.
Each returns the public job. A generation may be asked for with a priority and a delay
(`GenerateOptions`, the optional body of `POST /api/articles/{id}/generate`).
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from pydantic import Field, StrictInt

from chalicelib import audit, errors, events, http, jobs
from chalicelib.content import articles as content
from chalicelib.jobs.queues import MAX_JOB_DELAY_SECONDS

log = logging.getLogger("inkwell.content")

NOT_YOURS = "only the article's author or an admin may do this"


class GenerateOptions(http.Body):
    priority: Literal["high", "normal"] = "normal"
    delay_seconds: StrictInt = Field(default=0, ge=0, le=MAX_JOB_DELAY_SECONDS)


def generation_options(request: Any) -> GenerateOptions:
    """The optional body: none (or an empty one) is normal priority, now."""
    if not request.raw_body:
        return GenerateOptions()
    return http.parse(GenerateOptions, request)


def start_generation(article_id: str, user: dict[str, Any], options: GenerateOptions | None = None) -> dict[str, Any]:
    from chalicelib.jobs import records

    options = options or GenerateOptions()

    store = content.articles()
    job_id = records.new_id()
    author = None if user["role"] == "admin" else user["id"]
    try:  # one conditional write checks existence, authorship and the transition
        item = store.transition(article_id, "generate", extra={"job_id": job_id}, author_id=author)
    except content.ArticleNotFound:
        raise errors.NotFound(f"article {article_id}") from None
    except content.NotTheAuthor:
        raise errors.Forbidden(NOT_YOURS) from None
    except content.InvalidTransition as exc:
        raise errors.Conflict(str(exc)) from None
    events.publish(events.ArticleStatusChanged(article_id, "PROCESSING", item["author_id"], job_id))
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
            restored = store.rollback(article_id, job_id)
            events.publish(events.ArticleStatusChanged(article_id, restored["status"], restored["author_id"], job_id))
        except Exception:
            log.exception("could not roll back article %s after a failed enqueue", article_id)
        raise
    details = {"job_id": job["id"], "priority": options.priority, "delay_seconds": options.delay_seconds}
    audit.record("article.generate", resource=("article", article_id), details=details)
    return job


def request_transition(article_id: str, action: str, user: dict[str, Any]) -> dict[str, Any]:
    """publish / archive: Conflict unless allowed now; otherwise the job applying it. Asking
    twice for the same article version returns the same job (idempotency key)."""
    article = content.find(article_id)
    if user["role"] != "admin" and article["author_id"] != user["id"]:
        raise errors.Forbidden(NOT_YOURS)
    if not content.check_transition(action, article["status"], bool(article.get("content"))):
        raise errors.Conflict(f"cannot {action} article {article_id} while it is {article['status']}")
    job = jobs.enqueue(
        "articles",
        action,
        {"article_id": article_id},
        user_id=user["id"],
        idempotency_key=f"{action}:{article_id}:{article['updated_at']}",
    )
    audit.record(f"article.{action}", resource=("article", article_id), details={"job_id": job["id"]})
    return job
