"""An article's publish and archive, asked for (the routes) and applied (their jobs).

`request_transition` checks the transition now (`errors.Conflict` if it is not allowed) and
queues the job that applies it; only the article's author or an admin may ask, and it returns the
public job. The job applies it (conditionally); if the article is already where the job would
take it (a second request, or a crash after the write), the job succeeds without changing anything.
The generation (the other action that queues a job) is `generation.py`'s.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from chalicelib import audit, errors, events, jobs
from chalicelib.content import articles as content
from chalicelib.jobs.errors import PermanentError
from chalicelib.jobs.processor import Job, JobContext, Processor

NOT_YOURS = "only the article's author or an admin may do this"


class ArticlePayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    article_id: str = Field(pattern=r"^[0-9a-f]{32}$")


def payload_of(model: type[BaseModel], job: Job) -> Any:
    """An article job's payload as `model`; PermanentError when it is not one."""
    try:
        return model.model_validate(job["payload"])
    except ValidationError as exc:
        raise PermanentError(f"invalid payload: {exc.errors()[0]['msg']}", kind="invalid_payload") from None


def status_changed(item: dict[str, Any], job_id: str | None, *, again: bool = False) -> None:
    """Announce and audit an article's new status (`again`: it may have been already, by a killed
    run of this job: the listeners check)."""
    events.publish(
        events.ArticleStatusChanged(
            item["id"], item["status"], item["author_id"], job_id, again, item.get("updated_at")
        )
    )


def store() -> content.Articles:
    return content.articles()


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


def run_transition(job: Job, action: str, articles: content.Articles) -> dict[str, Any]:
    payload = payload_of(ArticlePayload, job)
    target = content.TRANSITIONS[action][1]
    try:
        item = articles.transition(payload.article_id, action)
    except content.ArticleNotFound:
        raise PermanentError(f"article {payload.article_id} no longer exists", kind="article_missing") from None
    except content.InvalidTransition as exc:
        if exc.status == target:
            return {"article_id": payload.article_id, "status": target, "changed": False}
        raise PermanentError(str(exc), kind="invalid_transition") from None
    status_changed(item, job["id"])
    return {"article_id": payload.article_id, "status": target, "changed": True}


def publish(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_transition(job, "publish", store())


def archive(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_transition(job, "archive", store())


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (
    Processor("articles", "publish", publish),
    Processor("articles", "archive", archive),
)
