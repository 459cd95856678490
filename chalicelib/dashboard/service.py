"""What the dashboard's routes do: stats, metrics over time, health, retry-all, remove, clean, pause
and resume, limits.

Job records, listing, retry and removal belong to `chalicelib.jobs`; this module composes them
with the queues' own numbers (SQS attributes, the dead-letter queue, the event source mapping).
Every call here answers with the contract's shapes or raises `errors.Refused`; every control
action is audited (`queue.pause`, `queue.resume`, `job.retry`, `job.remove`, `queue.clean`,
`queue.limits`).
"""

from __future__ import annotations

import logging
from concurrent.futures import ThreadPoolExecutor
from typing import Annotated, Any, Literal

from boto3.dynamodb.conditions import Key
from pydantic import BaseModel, ConfigDict, Field, StrictInt

from chalicelib import audit, aws, catalog, config, errors, events, jobs, timeutil
from chalicelib.content import settings
from chalicelib.dashboard import health
from chalicelib.dashboard.gateway import NoMapping, QueueControl
from chalicelib.jobs import errors as job_errors
from chalicelib.jobs import pause, ratelimit
from chalicelib.jobs import service as job_service
from chalicelib.jobs.queues import parse_body

log = logging.getLogger("inkwell.dashboard")

POOL_SIZE = 8  # the queues' SQS and Lambda calls, concurrently
MAX_FAILED_RETRIED = 500  # failed records retried by one retry-all (retention keeps 50 a queue)
MAX_REDRIVEN = 1000  # dead-letter messages moved by hand by one retry-all ...
REDRIVE_CHUNK = 50  # ... in chunks, each handled well within the 60 s they stay hidden
MAX_CLEANED = 1000  # records removed by one clean
DLQ_SWEEP = 100  # dead-letter messages looked at when a clean removes failed jobs
COUNTED = ("completed", "failed", "cancelled")  # stats counted from the records, not from SQS


def control() -> QueueControl:
    # The local stack's emulator (INKWELL_AWS_ENDPOINT, a moto server) lacks StartMessageMoveTask
    # and answers 500 only after botocore's retries, seconds later: there, retry-all moves by hand.
    # The Lambda consuming a queue runs app.py's handler `jobs_<queue>` (`jobs_articles_high`).
    can_move = config.get().aws_endpoint is None
    return QueueControl(
        aws.client("sqs"),
        aws.client("lambda"),
        aws.queue_url,
        lambda queue: config.function_name(f"jobs_{queue.replace('-', '_')}"),
        can_move=can_move,
    )


def known(queue: str) -> str:
    """A job queue's name, else errors.NotFound (`audit`, the audit trail's fallback queue, is no
    job queue)."""
    if queue not in catalog.job_queues():
        raise errors.NotFound(f"queue {queue[:64]}")
    return queue


def _audit(action: str, resource: tuple[str, str], details: dict[str, Any] | None = None) -> None:
    audit.record(action, resource=resource, details=details or {})


# --- reading ------------------------------------------------------------------------------------


def _queue_facts(ctl: QueueControl, queue: str) -> dict[str, Any]:
    """One queue's SQS and Lambda numbers, and those of its `-high` priority queue (run in the pool)."""
    high = catalog.priority_queue(queue, "high")
    depth, high_depth = ctl.depth(queue), ctl.depth(high)
    mapping, high_mapping = ctl.mapping(queue, depth.arn), ctl.mapping(high, high_depth.arn)
    return {
        "depth": depth,
        "high": high_depth,
        "dead_letter": ctl.dead_letter_depth(queue),
        "high_dead_letter": ctl.dead_letter_depth(high),
        "mapping_paused": bool(mapping and mapping.paused),
        "mapping_since": mapping.changed_at if mapping else None,
        "concurrency": (mapping and mapping.concurrency) or catalog.queue(queue).concurrency,
        "high_concurrency": (high_mapping and high_mapping.concurrency) or catalog.queue(high).concurrency,
    }


def _paused(facts: dict[str, Any], flagged: dict[str, float], queue: str) -> tuple[bool, float | None]:
    """Paused by an admin (the flag), or its mapping disabled by other means (the console)."""
    if queue in flagged:
        return True, flagged[queue]
    return facts["mapping_paused"], facts["mapping_since"] if facts["mapping_paused"] else None


def stats() -> dict[str, Any]:
    """GET /api/queues/stats: depths from SQS (the job queue and its `-high` priority queue, summed
    and per priority), completed/failed/cancelled from the records' index (COUNT). `concurrency`
    and `dead_letter` are the job queue's own (what limits and retry-failed change); `priorities`
    has each priority queue's depths, maximum concurrency and dead letters."""
    ctl = control()
    store = job_service.store()
    names = catalog.job_queues()
    with ThreadPoolExecutor(max_workers=min(POOL_SIZE, len(names))) as pool:
        futures = {name: pool.submit(_queue_facts, ctl, name) for name in names}
        # The record counts run here meanwhile (one Table resource is not shared across threads).
        counted = {name: {s: store.count(name, s) for s in COUNTED} for name in names}
        flagged = pause.flags().paused()
        rates = ratelimit.settings().all()
        facts = {name: future.result() for name, future in futures.items()}
    queues = {}
    for name, f in facts.items():
        depth, high = f["depth"], f["high"]
        queues[name] = {
            "waiting": depth.waiting + high.waiting,
            "active": depth.active + high.active,
            "delayed": depth.delayed + high.delayed,
            "completed": counted[name]["completed"],
            "failed": counted[name]["failed"],
            "cancelled": counted[name]["cancelled"],
            "dead_letter": f["dead_letter"],
            "paused": _paused(f, flagged, name)[0],
            "concurrency": f["concurrency"],
            "rate_limit": rates[name].public() if name in rates else None,
            "priorities": {
                "high": {**_depths(high), "concurrency": f["high_concurrency"], "dead_letter": f["high_dead_letter"]},
                "normal": {**_depths(depth), "concurrency": f["concurrency"], "dead_letter": f["dead_letter"]},
            },
        }
    return {"queues": queues, "generated_at": timeutil.iso()}


def metrics(queue: str, params: dict[str, str]) -> dict[str, Any]:
    """GET /api/queues/{queue}/metrics: per-minute points over [since, until] (default the last
    hour, at most the retention)."""
    from chalicelib import http
    from chalicelib.jobs import timeline

    known(queue)
    now = timeutil.now()
    until = http.time_param(params, "until", now)
    since = http.time_param(params, "since", until - 3600)
    if since > until:
        raise errors.Invalid("must not be after until", "since")
    if until - since > timeline.RETENTION_SECONDS:
        raise errors.Invalid(f"the range may span at most {timeline.RETENTION_SECONDS // 3600} hours", "since")
    # Nothing is older than the items' TTL, nothing is in the future: no Query outside the data.
    since, until = max(since, now - timeline.TTL_SECONDS), min(until, now + timeline.INTERVAL)
    points = timeline.points(queue, since, until) if since <= until else []
    return {"queue": queue, "interval_seconds": timeline.INTERVAL, "points": points}


def _depths(depth: Any) -> dict[str, int]:
    return {"waiting": depth.waiting, "active": depth.active, "delayed": depth.delayed}


def _count_since(table: Any, queue: str, state: str, since: str) -> int:
    pages = aws.query_pages(
        table,
        IndexName="by_queue_state",
        KeyConditionExpression=Key("queue_state").eq(f"{queue}#{state}") & Key("updated_at").gte(since),
        Select="COUNT",
    )
    return sum(page["Count"] for page in pages)


def _oldest_waiting(table: Any, queue: str) -> float | None:
    result = table.query(
        **job_service.store().list_query(queue, "waiting", newest_first=False),
        Limit=1,
        ProjectionExpression="updated_at",
    )
    items = result.get("Items", [])
    return timeutil.parse_iso(items[0]["updated_at"]) if items else None


def health_report() -> tuple[int, dict[str, Any]]:
    """GET /api/queues/health: (200 | 503, {"status","checks","generated_at"}); an alert when the
    overall status changes. Four checks per job queue, and one (`"queue": null`) on the dead
    letters of `audit`, the audit trail's fallback queue: audit events that could not be written."""
    now = timeutil.now()
    setting = settings.settings().value(health.SETTING_KEY)
    table = job_service.store().table
    since = timeutil.iso_ms(now - health.RATE_WINDOW_SECONDS)
    names = catalog.job_queues()
    with ThreadPoolExecutor(max_workers=min(POOL_SIZE, len(names) + 1)) as pool:
        futures = {name: pool.submit(_queue_facts, control(), name) for name in names}
        audit_dead = pool.submit(control().dead_letter_depth, "audit")
        records = {
            name: (
                _oldest_waiting(table, name),
                _count_since(table, name, "completed", since),
                _count_since(table, name, "failed", since),
            )
            for name in names
        }
        flagged = pause.flags().paused()
        measured = {name: future.result() for name, future in futures.items()}
    checks: list[dict[str, Any]] = []
    for name, f in measured.items():
        oldest, completed, failed = records[name]
        dead = f["dead_letter"] + f["high_dead_letter"]  # both priorities' dead-letter queues
        facts = health.Facts(dead, oldest, completed, failed, *_paused(f, flagged, name), f["high_dead_letter"])
        checks += health.evaluate(name, facts, health.thresholds(setting, name), now)
    checks.append(health.audit_fallback(audit_dead.result(), health.thresholds(setting, "audit")))
    failing = [health.label(c) for c in checks if not c["ok"]]
    status = "unhealthy" if failing else "healthy"
    _notice(status, failing, checks)
    return (503 if failing else 200), {"status": status, "checks": checks, "generated_at": timeutil.iso(now)}


def _notice(status: str, failing: list[str], checks: list[dict[str, Any]]) -> None:
    try:
        before = health.HealthState(aws.table("settings")).swap(status, failing, timeutil.iso())
    except Exception:  # the answer matters more than the alert
        log.exception("could not store the queues' health")
        return
    if status == "unhealthy" and before != "unhealthy":
        events.publish(events.Alert("critical", f"queues unhealthy: {health.summary(checks)}", {"failing": failing}))
    elif status == "healthy" and before == "unhealthy":
        events.publish(events.Alert("info", "queues healthy again", {"failing": []}))


# --- control ------------------------------------------------------------------------------------


def set_paused(queue: str, paused: bool, user: dict[str, Any]) -> dict[str, Any]:
    """POST /api/queues/{queue}/pause | resume: the flag (which the worker's hold obeys at once)
    and the queue's event source mapping (so Lambda stops polling it)."""
    known(queue)
    pause.flags().set(queue, paused, user.get("id"))
    ctl = control()
    for source in (queue, catalog.priority_queue(queue, "high")):
        try:
            ctl.set_paused(source, paused)
        except NoMapping:
            log.warning("queue %s has no event source mapping; only the worker's hold applies", source)
    _audit("queue.pause" if paused else "queue.resume", ("queue", queue))
    return {"queue": queue, "paused": paused}


class RateLimitBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    max: StrictInt = Field(ge=1, le=1_000_000)
    duration_seconds: Annotated[float, Field(gt=0, le=86400, strict=True, allow_inf_nan=False)]


def _no_default(schema: dict[str, Any]) -> None:
    schema.pop("default", None)


class LimitsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    # absent: unchanged (model_fields_set); the 0 is no value a client may send: not documented
    concurrency: StrictInt = Field(default=0, ge=2, le=1000, json_schema_extra=_no_default)
    rate_limit: RateLimitBody | None = None  # absent: unchanged; null: no limit


def set_limits(queue: str, body: LimitsRequest, user: dict[str, Any]) -> dict[str, Any]:
    """PUT /api/queues/{queue}/limits: the maximum concurrency on the queue's event source mapping
    (409 when it has none) and the rate limit in the settings; answers the limits now in force."""
    known(queue)
    given = body.model_fields_set
    limit = None
    if body.rate_limit is not None:
        limit = ratelimit.RateLimit(body.rate_limit.max, body.rate_limit.duration_seconds)
        if limit.max / limit.duration_seconds > ratelimit.MAX_RATE_PER_SECOND:
            raise errors.Invalid(
                f"at most {ratelimit.MAX_RATE_PER_SECOND} starts a second (max / duration_seconds)", field="rate_limit"
            )
    ctl = control()
    if "concurrency" in given:
        try:
            ctl.set_concurrency(queue, body.concurrency)
        except NoMapping:
            raise errors.Conflict(f"queue {queue} has no event source mapping (its consumer is not deployed)") from None
    if "rate_limit" in given:
        ratelimit.settings().set(queue, limit, user.get("id"))
    else:
        limit = ratelimit.settings().get(queue)
    mapping = ctl.mapping(queue, ctl.arn(queue))
    most = body.concurrency if "concurrency" in given else (mapping and mapping.concurrency)
    answer = {
        "queue": queue,
        "concurrency": most or catalog.queue(queue).concurrency,
        "rate_limit": limit.public() if limit else None,
    }
    _audit("queue.limits", ("queue", queue), {k: answer[k] for k in ("concurrency", "rate_limit") if k in given})
    return answer


def retry_all(queue: str) -> dict[str, int]:
    """POST /api/queues/{queue}/retry-failed: every failed job runs again with fresh attempts,
    and the dead-letter queues (the queue's and its high-priority queue's) are emptied back.

    The failed records are retried first (each a new run with a new message), so the old
    messages, when they arrive, are stale and acknowledged without running. Then SQS moves the
    dead-letter messages (StartMessageMoveTask); where it cannot, they are received, handed to
    `jobs.redrive_dead_letters` (which retries any failed job it finds there and drops the rest)
    and deleted, in bounded batches."""
    known(queue)
    store = job_service.store()
    requeued = 0
    seen = 0
    for page in aws.query_pages(store.table, **store.list_query(queue, "failed"), ProjectionExpression="id", Limit=100):
        for item in page.get("Items", []):
            seen += 1
            try:
                jobs.retry(item["id"], tidy=False)
                requeued += 1
            except (LookupError, job_errors.RetryRefused):
                continue
        if seen >= MAX_FAILED_RETRIED:
            break
    ctl = control()
    for sqs_queue in catalog.priority_queues(queue):  # SQS moves a high job's message to its own DLQ
        if not ctl.start_move(sqs_queue):
            for _ in range(MAX_REDRIVEN // REDRIVE_CHUNK):
                requeued += jobs.redrive_dead_letters(sqs_queue, limit=REDRIVE_CHUNK)
                if ctl.dead_letter_depth(sqs_queue, visible_only=True) == 0:
                    break
    _audit("job.retry", ("queue", queue), {"requeued": requeued, "via": "retry-failed"})
    return {"requeued": requeued}


def remove_job(job_id: str) -> None:
    """DELETE /api/jobs/{id}: the record, and its dead-letter message when it failed; a message
    still queued is acknowledged without running when it arrives (the record is gone)."""
    removed = jobs.remove(job_id)
    if removed is None:
        raise errors.NotFound(f"job {job_id[:64]}")
    if removed["state"] == "failed":
        _forget_dead_letters(removed["queue"], {removed["id"]})
    _audit("job.remove", ("job", job_id), {"queue": removed["queue"], "state": removed["state"]})


class CleanRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    state: Literal["completed", "failed"]
    older_than_seconds: StrictInt = Field(ge=0, le=366 * 86400)


def clean(queue: str, body: CleanRequest) -> dict[str, int]:
    """POST /api/queues/{queue}/clean: remove the queue's jobs in `state` unchanged for longer
    than `older_than_seconds` (an index Query on their time, at most MAX_CLEANED a call)."""
    known(queue)
    store = job_service.store()
    cutoff = timeutil.iso_ms(timeutil.now() - body.older_than_seconds)
    pages = aws.query_pages(
        store.table,
        IndexName="by_queue_state",
        KeyConditionExpression=Key("queue_state").eq(f"{queue}#{body.state}") & Key("updated_at").lte(cutoff),
        ProjectionExpression="id",
        Limit=100,
    )
    ids: list[str] = []
    for page in pages:
        ids += [item["id"] for item in page.get("Items", [])][: MAX_CLEANED - len(ids)]
        if len(ids) >= MAX_CLEANED:
            break
    with store.table.batch_writer() as writer:
        for job_id in ids:
            writer.delete_item(Key={"id": job_id})
    if ids and body.state == "failed":
        _forget_dead_letters(queue, set(ids))
    _audit(
        "queue.clean",
        ("queue", queue),
        {"state": body.state, "older_than_seconds": body.older_than_seconds, "removed": len(ids)},
    )
    return {"removed": len(ids)}


def _forget_dead_letters(queue: str, job_ids: set[str]) -> None:
    """Delete the dead-letter messages of removed jobs (a bounded look; others are released)."""
    sqs = job_service.queues()
    try:
        for body, receipt in list(sqs.dead_letters(queue, DLQ_SWEEP, visibility=5)):
            message = parse_body(body)
            if message is not None and message.job_id in job_ids:
                sqs.delete_dead_letter(queue, receipt)
            else:
                sqs.release_dead_letter(queue, receipt)
    except Exception:  # a missed one is harmless: its record is gone, so a redrive drops it
        log.exception("could not tidy the dead-letter queue of %s", queue)
