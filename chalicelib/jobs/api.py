"""The REST side of jobs: the article actions that queue them, and the job endpoints.

`POST /api/articles/{id}/generate` moves the article DRAFT (or PUBLISHED/ARCHIVED) ->
PROCESSING with a conditional write naming the job, then queues the job; if queueing fails the
article is rolled back and the client gets a 503. publish and archive check the transition now
(409 if it is not allowed) and queue the job that applies it. All three answer 202
`{"job_id", "queue", ...the job}`; only the article's author or an admin may ask.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib import audit, catalog, events, http
from chalicelib.content import articles as content
from chalicelib.content import reports
from chalicelib.jobs import errors, records, service

log = logging.getLogger("inkwell.jobs.api")

ACTIONS = ("generate", "publish", "archive")


def _accepted(job: dict[str, Any]) -> Any:
    return http.accepted({"job_id": job["id"], **job})


def _article_for(article_id: str, user: dict[str, Any]) -> dict[str, Any]:
    article = content.find(article_id)
    if user["role"] != "admin" and article["author_id"] != user["id"]:
        raise http.HttpError(403, "only the article's author or an admin may do this")
    return article


def start_generation(article_id: str, user: dict[str, Any]) -> Any:
    store = content.articles()
    job_id = records.new_id()
    author = None if user["role"] == "admin" else user["id"]
    try:  # one conditional write checks existence, authorship and the transition
        item = store.transition(article_id, "generate", extra={"job_id": job_id}, author_id=author)
    except content.ArticleNotFound:
        raise http.not_found(f"article {article_id}") from None
    except content.NotTheAuthor:
        raise http.HttpError(403, "only the article's author or an admin may do this") from None
    except content.InvalidTransition as exc:
        raise http.conflict(str(exc)) from None
    events.publish(events.ArticleStatusChanged(article_id, "PROCESSING", item["author_id"], job_id))
    payload = {
        "article_id": article_id,
        "title": item["title"],
        "topic": item["topic"],
        "keywords": list(item.get("keywords") or []),
    }
    try:
        job = service.enqueue("articles", "generate", payload, user_id=user["id"], job_id=job_id)
    except errors.EnqueueError:
        try:
            restored = store.rollback(article_id, job_id)
            events.publish(events.ArticleStatusChanged(article_id, restored["status"], restored["author_id"], job_id))
        except Exception:
            log.exception("could not roll back article %s after a failed enqueue", article_id)
        raise http.HttpError(503, "the job could not be queued; try again") from None
    audit.record("article.generate", resource=("article", article_id), details={"job_id": job["id"]})
    return _accepted(job)


def request_transition(article_id: str, action: str, user: dict[str, Any]) -> Any:
    """publish / archive: 409 unless allowed now; otherwise 202 with the job applying it. Asking
    twice for the same article version returns the same job (idempotency key)."""
    article = _article_for(article_id, user)
    if not content.check_transition(action, article["status"], bool(article.get("content"))):
        raise http.conflict(f"cannot {action} article {article_id} while it is {article['status']}")
    try:
        job = service.enqueue(
            "articles",
            action,
            {"article_id": article_id},
            user_id=user["id"],
            idempotency_key=f"{action}:{article_id}:{article['updated_at']}",
        )
    except errors.EnqueueError:
        raise http.HttpError(503, "the job could not be queued; try again") from None
    audit.record(f"article.{action}", resource=("article", article_id), details={"job_id": job["id"]})
    return _accepted(job)


# --- jobs ------------------------------------------------------------------------------------------


def job_for(job_id: str, user: dict[str, Any]) -> dict[str, Any]:
    """GET /api/jobs/{id}: admins, or the user who caused the job (404 for anyone else, so ids
    of other people's jobs are not confirmed)."""
    job = service.get(job_id)
    if job is None or (user["role"] != "admin" and job.get("user_id") != user["id"]):
        raise http.not_found(f"job {job_id[:64]}")
    return job


def retry(job_id: str) -> Any:
    try:
        job = service.retry(job_id)
    except LookupError:
        raise http.not_found(f"job {job_id[:64]}") from None
    except errors.RetryRefused as exc:
        raise http.conflict(str(exc)) from None
    except errors.EnqueueError:
        raise http.HttpError(503, "the retry could not be queued; try again") from None
    audit.record("job.retry", resource=("job", job_id), details={"queue": job.get("queue"), "via": "job"})
    return _accepted(job)


def queue_jobs(queue: str, params: dict[str, str]) -> dict[str, Any]:
    """GET /api/queues/{queue}/jobs?state= (default waiting), newest change first."""
    if queue not in catalog.job_queues():
        raise http.not_found(f"queue {queue[:64]}")
    state = params.get("state") or "waiting"
    if state not in records.STATES:
        raise http.bad_request(f"must be one of {', '.join(records.STATES)}", "state")
    return service.list_page(queue, state, params)


# --- reports ---------------------------------------------------------------------------------------


def report(period: str, params: dict[str, str]) -> dict[str, Any]:
    """GET /api/analytics/reports/daily?date= | weekly?week=: 400 on a bad value, 404 until the
    report is generated."""
    name, parse, key = (
        ("date", reports.parse_day, reports.daily_key)
        if period == "daily"
        else ("week", reports.parse_week, reports.weekly_key)
    )
    value = params.get(name)
    if not value:
        raise http.bad_request("is required", name)
    try:
        parse(value)
    except ValueError as exc:
        raise http.bad_request(str(exc), name) from None
    found = reports.stored(key(value))
    if found is None:
        raise http.not_found(f"the {period} report for {value}")
    return found
