"""What the rest of Inkwell does with jobs: enqueue, read, list, count, retry, promote, cancel,
remove, redrive.

`enqueue` is the one way in, used by routes, schedules and processors alike: it writes the job
record (with its idempotency item, in one transaction) and then sends the message. If the send
fails, or AWS keeps refusing the record's write, the record is removed again (503), so a job that
exists is a job that will run.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from chalicelib import aws, catalog, http, timeutil
from chalicelib.jobs import errors, later, processor
from chalicelib.jobs.queues import (
    MAX_DELAY_SECONDS,
    MAX_JOB_DELAY_SECONDS,
    JobQueues,
    first_hop,
    message_for,
    parse_body,
)
from chalicelib.jobs.records import STATES, JobStore, public
from chalicelib.util import storable_problem

log = logging.getLogger("inkwell.jobs")

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_KEY_LENGTH = 200


def store() -> JobStore:
    return JobStore(aws.table("jobs"))


def queues() -> JobQueues:
    return JobQueues(aws.client("sqs"), aws.queue_url)


def check_request(
    queue: str,
    job_type: str,
    payload: Any,
    idempotency_key: str | None,
    delay_seconds: int,
    priority: str = "normal",
) -> None:
    """Raise ValueError for a job that cannot be enqueued (pure)."""
    if queue not in catalog.QUEUES:
        raise ValueError(f"unknown queue {queue!r}")
    if job_type not in catalog.queue(queue).job_types:
        raise ValueError(f"queue {queue!r} has no job type {job_type!r}")
    if not isinstance(payload, dict):
        raise ValueError("the payload must be a JSON object")
    if len(json.dumps(payload)) > MAX_PAYLOAD_BYTES:
        raise ValueError(f"the payload must be at most {MAX_PAYLOAD_BYTES} bytes as JSON")
    problem = storable_problem(payload)
    if problem:
        raise ValueError(f"the payload {problem}")
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH:
        raise ValueError(f"an idempotency key has 1 to {MAX_KEY_LENGTH} characters")
    if not 0 <= delay_seconds <= MAX_JOB_DELAY_SECONDS:
        raise ValueError(f"the delay must be between 0 and {MAX_JOB_DELAY_SECONDS} seconds")
    if priority not in catalog.PRIORITIES:
        raise ValueError(f"the priority must be one of {', '.join(catalog.PRIORITIES)}")


def enqueue(
    queue: str,
    type: str,  # noqa: A002 - the shared interface's name
    payload: dict[str, Any],
    *,
    user_id: str | None = None,
    idempotency_key: str | None = None,
    delay_seconds: int = 0,
    priority: str = "normal",
    job_id: str | None = None,
    jobs: JobStore | None = None,
    sqs: JobQueues | None = None,
) -> dict[str, Any]:
    """Queue a job and return it as `GET /api/jobs/{id}` shows it.

    With `idempotency_key`, a second call with the same key (on the same queue) returns the
    first job and queues nothing. `delay_seconds` (up to a year) holds the message back, in hops
    of at most 900 s (see queues.py); the job is `delayed` with its `run_at` until then.
    `priority` is `high` or `normal`. `job_id` lets a caller that must name the job first (the article
    routes write it on the article) choose it. Raises ValueError for a bad request and
    EnqueueError (503) when the message could not be sent (the cause is logged).
    """
    check_request(queue, type, payload, idempotency_key, delay_seconds, priority)
    jobs = jobs or store()
    record = jobs.new_record(
        queue,
        type,
        payload,
        max_attempts=catalog.queue(queue).attempts,
        job_id=job_id,
        user_id=user_id,
        idempotency_key=idempotency_key,
        delay_seconds=delay_seconds,
        priority=priority,
    )
    if delay_seconds > 0 and user_id:  # a user's delayed jobs are bounded (chalicelib.quotas)
        from chalicelib import limits, quotas

        quotas.hold_delayed(user_id, record["id"], limits.limits().delayed_jobs)
    try:
        record, created = jobs.create(record)
    except Exception as exc:
        if not aws.unavailable(exc):
            raise
        log.warning("could not write job %s on %s: %s", record["id"], queue, exc)
        _discard(jobs, record)  # it may have been written after all (its answer lost)
        raise errors.EnqueueError("the job could not be queued; try again") from exc
    if not created:
        return public(record)
    try:
        _send(sqs or queues(), record, delay_seconds)
    except Exception as exc:
        log.exception("could not queue job %s on %s", record["id"], queue)
        _discard(jobs, record)
        raise errors.EnqueueError("the job could not be queued; try again") from exc
    return public(record)


def _discard(jobs: JobStore, record: dict[str, Any]) -> None:
    try:
        jobs.discard(record)
    except Exception:
        log.exception("could not remove the unqueued job %s", record["id"])


def get(job_id: str, jobs: JobStore | None = None) -> dict[str, Any] | None:
    """The public job, or None (also for ids this API never issues)."""
    if not _valid_id(job_id):
        return None
    record = (jobs or store()).get(job_id)
    return public(record) if record else None


def list_page(queue: str, state: str, params: dict[str, str], jobs: JobStore | None = None) -> dict[str, Any]:
    """One page (`?limit=&cursor=`) of a queue's jobs in `state`, newest change first."""
    jobs = jobs or store()
    return http.query_page(
        jobs.table, params, {"queue_state", "updated_at", "id"}, public, **jobs.list_query(queue, state)
    )


def counts(queue: str, jobs: JobStore | None = None) -> dict[str, int]:
    """How many of a queue's jobs are in each state (Select COUNT per state, no scan)."""
    jobs = jobs or store()
    return {state: jobs.count(queue, state) for state in STATES}


def remove(job_id: str, jobs: JobStore | None = None) -> dict[str, Any] | None:
    """Delete a job record and return it as it was (None when there was none). A message still
    in flight for it is acknowledged without running when it arrives."""
    if not _valid_id(job_id):
        return None
    record = (jobs or store()).remove(job_id)
    return public(record) if record else None


def retry(job_id: str, *, jobs: JobStore | None = None, sqs: JobQueues | None = None, tidy: bool = True) -> dict:
    """Run a failed job again, with fresh attempts: a new run of the same record and a new
    message. Raises JobNotFound (404), RetryRefused (409) unless it is failed or when its processor
    refuses; EnqueueError (503) when the message could not be sent (the job stays failed).

    With `tidy`, the run's old message is looked for in the dead-letter queue (a bounded look)
    and deleted, so the dead-letter count stays true; one that is missed is harmless: its run
    is stale, so the worker acknowledges it without running it.
    """
    jobs, sqs = jobs or store(), sqs or queues()
    record = _record(jobs, job_id)
    old_run = int(record.get("run", 1))
    reset = jobs.reset_for_retry(record)
    if reset is None:
        raise errors.RetryRefused(f"job {job_id} is {record['state']}; only a failed job can be retried")
    proc = processor.find(reset["queue"], reset["type"])
    try:
        if proc and proc.on_retry:
            proc.on_retry(public(reset))
        _send(sqs, reset)
    except Exception as exc:
        jobs.undo_retry(reset, record.get("error") or errors.describe(exc))
        if isinstance(exc, errors.RetryRefused):
            raise
        log.exception("could not queue the retry of job %s", job_id)
        raise errors.EnqueueError("the retry could not be queued; try again") from exc
    if tidy:
        _forget_dead_letter(sqs, reset["queue"], job_id, old_run)
    return public(reset)


def promote(job_id: str, *, jobs: JobStore | None = None, sqs: JobQueues | None = None) -> dict[str, Any]:
    """Run a delayed job now: a new run (its delayed message turns stale and is acknowledged when
    it shows) and a fresh message. Raises JobNotFound (404), JobStateRefused (409) unless delayed,
    and EnqueueError (503) when the message could not be sent (the job stays delayed as it was)."""
    jobs, sqs = jobs or store(), sqs or queues()
    record = _record(jobs, job_id)
    promoted = jobs.promote(record)
    if promoted is None:
        raise errors.JobStateRefused(f"job {job_id} is {record['state']}; only a delayed job can be promoted")
    try:
        _send(sqs, promoted)
    except Exception as exc:
        log.exception("could not queue the promoted job %s", job_id)
        jobs.undo_promote(record)
        raise errors.EnqueueError("the job could not be queued; try again") from exc
    _release(record)  # its one-time schedule, if it waited on one (its message would be stale)
    return public(promoted)


def cancel(job_id: str, *, jobs: JobStore | None = None) -> dict[str, Any]:
    """Cancel a waiting or delayed job: it never runs (its message is acknowledged), and its
    processor's `on_cancel` hook undoes what starting it did (a generation's article rolls back).
    A hook that fails is logged: the job's message runs it again when it arrives (the worker).
    Announced once, after the hook (`JobEvent` `cancelled`; its message's arrival announces
    nothing). Raises JobNotFound (404), JobStateRefused (409) unless waiting or delayed."""
    from chalicelib.jobs import monitor, worker

    jobs = jobs or store()
    record = _record(jobs, job_id)
    cancelled = jobs.cancel(record)
    if cancelled is None:
        state = (jobs.get(job_id) or record)["state"]
        raise errors.JobStateRefused(f"job {job_id} is {state}; only a waiting or delayed job can be cancelled")
    if record["state"] == "delayed":
        _release(record)
    worker.retain(jobs, cancelled["queue"], "cancelled", catalog.queue(cancelled["queue"]).keep_cancelled)
    proc = processor.find(cancelled["queue"], cancelled["type"])
    if proc is not None and proc.on_cancel is not None:
        try:
            proc.on_cancel(public(cancelled))
        except Exception:
            log.exception("on_cancel of job %s failed; its message will run it again", job_id)
    monitor.emit("cancelled", cancelled)
    return public(cancelled)


def _send(sqs: JobQueues, record: dict[str, Any], delay_seconds: float = 0) -> None:
    """Send a job's message to the queue of its priority: with DelaySeconds up to SQS's 15
    minutes, or, for a longer delay, to a one-time schedule that sends it when due (`later`)."""
    target = catalog.priority_queue(record["queue"], record.get("priority") or "normal", record["type"])
    group = fair_group(record)
    if delay_seconds > MAX_DELAY_SECONDS:
        name = later.schedule_name(record["id"], int(record.get("run", 1)))
        later.hold(name, sqs.url(target), message_for(record).body(), timeutil.now() + delay_seconds, group)
        return
    delay, run_at = first_hop(delay_seconds, timeutil.now())
    sqs.send(target, message_for(record, run_at), delay, group)


def fair_group(record: dict[str, Any]) -> str | None:
    """The MessageGroupId of a job's message on a fair queue: its user (jobs of no user share
    one group, `system`); None on other queues."""
    if not catalog.queue(record["queue"]).fair:
        return None
    return str(record.get("user_id") or "system")


def _release(record: dict[str, Any]) -> None:
    """Delete the one-time schedule a delayed job waits on (a job delayed past 15 minutes)."""
    if record.get("state") == "delayed" and _delay_left(record) > MAX_DELAY_SECONDS:
        later.release(later.schedule_name(record["id"], int(record.get("run", 1))))


def _delay_left(record: dict[str, Any]) -> float:
    """Seconds from the job's creation to its `run_at`: did it go to a one-time schedule?"""
    try:
        return timeutil.parse_iso(record["run_at"]) - timeutil.parse_iso(record["created_at"])
    except (KeyError, TypeError, ValueError):
        return 0.0


def _record(jobs: JobStore, job_id: str) -> dict[str, Any]:
    record = jobs.get(job_id) if _valid_id(job_id) else None
    if record is None:
        raise errors.JobNotFound(job_id)
    return record


def redrive_dead_letters(
    queue: str, limit: int = 100, *, jobs: JobStore | None = None, sqs: JobQueues | None = None
) -> int:
    """Send up to `limit` dead-letter messages of `queue` back to it; returns how many went.

    A message of a failed job is retried (a new run, as `retry` does); a message whose job is
    gone, done or already retried is dropped; an unreadable one goes back as it is."""
    jobs, sqs = jobs or store(), sqs or queues()
    requeued = 0
    for body, receipt in list(sqs.dead_letters(queue, limit)):
        message = parse_body(body)
        if message is None:
            sqs.send(queue, body)
            requeued += 1
        else:
            record = jobs.get(message.job_id)
            current = record is not None and record["state"] == "failed" and int(record.get("run", 1)) == message.run
            if current:
                try:
                    retry(message.job_id, jobs=jobs, sqs=sqs, tidy=False)
                    requeued += 1
                except errors.RetryRefused:
                    log.info("dead letter of job %s not retried: its processor refused", message.job_id)
                    continue  # leave it in the dead-letter queue
        sqs.delete_dead_letter(queue, receipt)
    return requeued


def _forget_dead_letter(sqs: JobQueues, queue: str, job_id: str, run: int, look_at: int = 20) -> None:
    try:
        for body, receipt in list(sqs.dead_letters(queue, look_at, visibility=5)):
            message = parse_body(body)
            if message is not None and message.job_id == job_id and message.run <= run:
                sqs.delete_dead_letter(queue, receipt)
            else:
                sqs.release_dead_letter(queue, receipt)
    except Exception:
        log.exception("could not tidy the dead-letter queue of %s", queue)


def _valid_id(job_id: str) -> bool:
    return len(job_id) == 32 and all(c in "0123456789abcdef" for c in job_id)
