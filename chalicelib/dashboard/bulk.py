"""Bulk actions on a queue's jobs (`POST /api/queues/{queue}/bulk`): retry, promote, cancel or
remove the jobs in one state, optionally only those one user caused.

A call reads at most `limit` (default and most: MAX_PER_CALL) of the queue's jobs in that state
from the `by_queue_state` index, newest change first, and acts on each as the single-job action
does (so hooks run and every refusal is the job's own: a job that moved on is counted as matched,
not done); `next_cursor`, when there may be more, continues after them. Audited once a call as
`queue.bulk` with the counts. A retried job's old dead-letter message is left where it is: its run
is stale, so a redrive drops it.
"""

from __future__ import annotations

import logging
from typing import Any, Literal

from boto3.dynamodb.conditions import Attr
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from chalicelib import audit, errors, http, jobs
from chalicelib.jobs import errors as job_errors
from chalicelib.jobs import service as job_service

log = logging.getLogger("inkwell.dashboard")

MAX_PER_CALL = 100
ALLOWED = {  # action -> the states it applies to (the first is the default)
    "retry": ("failed",),
    "promote": ("delayed",),
    "cancel": ("waiting", "delayed"),
    "remove": ("failed", "completed", "cancelled", "waiting", "delayed"),
}


class BulkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    action: Literal["retry", "promote", "cancel", "remove"]
    state: Literal["waiting", "delayed", "completed", "failed", "cancelled"] | None = None
    user_id: str | None = Field(default=None, min_length=1, max_length=200)
    cursor: str | None = Field(default=None, max_length=2000)
    limit: StrictInt = Field(default=MAX_PER_CALL, ge=1, le=MAX_PER_CALL)


def bulk(queue: str, request: BulkRequest) -> dict[str, Any]:
    state = request.state or ALLOWED[request.action][0]
    if state not in ALLOWED[request.action]:
        allowed = " or ".join(ALLOWED[request.action])
        raise errors.Invalid(f"`{request.action}` applies to jobs {allowed}, not {state}", "state")
    store = job_service.store()
    query: dict[str, Any] = {**store.list_query(queue, state), "ProjectionExpression": "id"}
    if request.user_id:
        query["FilterExpression"] = Attr("s_user").eq(request.user_id)
    scope = f"bulk:{http.query_scope(query)}:{request.user_id or ''}"
    start = http.decode_cursor({"cursor": request.cursor or ""}, {"queue_state", "updated_at", "id"}, scope)
    if start:
        query["ExclusiveStartKey"] = start
    result = store.table.query(**query, Limit=request.limit)
    ids = [item["id"] for item in result.get("Items", [])]
    done = sum(1 for job_id in ids if _act(request.action, job_id))
    if request.action == "remove" and state == "failed" and ids:
        from chalicelib.dashboard.service import _forget_dead_letters

        _forget_dead_letters(queue, set(ids))
    counts = {"action": request.action, "matched": len(ids), "done": done}
    details = {**counts, "state": state, "user_id": request.user_id, "continued": bool(request.cursor)}
    audit.record("queue.bulk", resource=("queue", queue), details=details)
    answer: dict[str, Any] = dict(counts)
    cursor = http.encode_cursor(result.get("LastEvaluatedKey"), scope)
    if cursor:
        answer["next_cursor"] = cursor
    return answer


def _act(action: str, job_id: str) -> bool:
    """The single-job action; False when the job refused it (it moved on, its hook refused)."""
    try:
        if action == "retry":
            jobs.retry(job_id, tidy=False)
        elif action == "promote":
            jobs.promote(job_id)
        elif action == "cancel":
            jobs.cancel(job_id)
        else:
            return jobs.remove(job_id) is not None
    except (
        job_errors.JobNotFound,
        job_errors.RetryRefused,
        job_errors.JobStateRefused,
        job_errors.EnqueueError,
    ) as exc:
        log.info("bulk %s of job %s not done: %s", action, job_id, exc)
        return False
    return True
