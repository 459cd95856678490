"""The worker shared by the four SQS handlers: each record of a batch on its own.

For every record: parse the message, claim its job (a conditional update with a lease), run the
processor, record the outcome, announce it through the monitor. The answer is
`{"batchItemFailures": [...]}` naming only the records that failed, so SQS deletes the rest.

- A failure that may pass (any exception but a PermanentError) hides the message for a backoff
  computed from `ApproximateReceiveCount` (`ChangeMessageVisibility`) and marks the job
  `delayed`; SQS delivers it again when the backoff ends.
- The last attempt's failure, or a PermanentError at any attempt, fails the job: its processor's
  `on_final_failure` hook runs first (the job noted `failing`, so a worker dying after the hook
  leaves the next delivery to finish the failure without running the job again), then the job is
  recorded `failed` and announced, and the worker copies the message to the dead-letter queue
  itself and acknowledges the original (so "retry" works later, and nothing waits for SQS's redrive);
  the job notes the copy, so a redelivery of the message does not copy it again.
- A redelivered message of a completed job is acknowledged without running; a job active under a
  live lease (a concurrent delivery, or one killed) is retried when the lease ends, by a copy of
  the message sent delayed till then and the delivery acknowledged (waiting out a dead run uses
  no receive before SQS's redrive); an expired lease (its handler died) is taken over.
- The worker stops before the Lambda deadline: records it has no time for are failed (retried
  later) without being started, and processors bound their own waits by `ctx.time_left()`.
- A message that arrives before its `run_at` (a delay beyond SQS's 15 minutes) is sent on with
  what remains (at most 900 s) and acknowledged, using no attempt, while its job is delayed in
  that run; otherwise the claim decides (a promoted job's old message is stale, a cancelled
  job's is acknowledged after the processor's idempotent `on_cancel` hook).
- A hold (`holds`, e.g. a paused queue) puts a record's message back with a delay and
  acknowledges it, so holding a queue does not use up its jobs' attempts.
- The limiter (`limiter`, e.g. the queue's rate limit) is asked before the claim: a job it refuses
  is put back the same way, delayed until the limit lets it start, its attempts untouched.
- A `Throttled` failure (a generator's 429 with Retry-After) waits as long as asked without using
  an attempt, at most MAX_THROTTLED_WAITS times per job; after that it is an ordinary failure, so
  a dependency that only ever answers 429 still fails the job in bounded time.
- An attempt that failed only because AWS (DynamoDB, SQS, ...) still refused after the SDK's
  retries waits the backoff without using an attempt, sharing the bound of MAX_THROTTLED_WAITS.
- Guards (`guards`, e.g. the schedules' lease) are context managers entered around every
  processor run; one may raise before the run starts, to fail or retry the job as the processor
  itself would.

A worker runs one job queue's jobs; `source` names the SQS queue its batches come from (the job
queue, or its `-high` priority queue), where messages are hidden, held and sent on. Dead letters
go to the job queue's own dead-letter queue either way, where retry and the dashboard look.

What a Worker holds and guards with is given to it (app.py's `job_worker` builds the deployed
ones); nothing is registered globally.
"""

from __future__ import annotations

import logging
import math
import random
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager, ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from chalicelib import catalog, runtime, timeutil
from chalicelib.jobs import backoff, errors, joblog, monitor, processor
from chalicelib.jobs.records import BUSY, CANCELLED, CLAIMED, DEAD, DONE, MISSING, STALE, JobStore, public
from chalicelib.util import from_dynamo

if TYPE_CHECKING:
    from chalicelib.jobs.queues import JobMessage, JobQueues

log = logging.getLogger("inkwell.jobs")

STOP_MARGIN_SECONDS = 5.0  # kept back before the Lambda deadline to record outcomes
LEASE_GRACE_SECONDS = 5.0  # a lease outlives its Lambda's deadline by this much
HOLD_DELAY_SECONDS = 30
MAX_THROTTLED_WAITS = 10  # waits a job may take for a Throttled (429) before one counts as a failure
# Retention is trimmed at a container's 1st, (1+TRIM_EVERY)th, ... final transition of a queue and
# state: the trim reads up to keep+25 whole records (the index projects them all) and deletes at
# most 25, so a container deletes more than it adds: a queue holds its retention plus at most
# TRIM_EVERY - 1 records per warm container (the first final transition of a container trims).
TRIM_EVERY = 10
_finished: Counter[tuple[str, str]] = Counter()  # final transitions per (queue, state) in this container

Hold = Callable[[str], bool]  # hold(queue) -> True while no job of that queue may start
Limiter = Callable[[str], float]  # limiter(queue) -> 0 to start one job now (counted), else seconds to wait
Guard = Callable[[dict[str, Any], processor.JobContext], AbstractContextManager[Any]]


@dataclass(frozen=True)
class Record:
    message_id: str
    receipt_handle: str
    body: str
    receive_count: int
    group: str | None = None  # MessageGroupId (a fair queue's user): a message sent on keeps it

    @classmethod
    def of(cls, raw: dict[str, Any]) -> Record:
        attributes = raw.get("attributes") or {}
        try:
            count = int(attributes.get("ApproximateReceiveCount", 1))
        except (TypeError, ValueError):
            count = 1
        group = attributes.get("MessageGroupId")
        body = raw.get("body") or ""
        return cls(
            raw["messageId"], raw["receiptHandle"], body, max(1, count), group if isinstance(group, str) else None
        )


class Worker:
    def __init__(
        self,
        queue: catalog.Queue,
        jobs: JobStore,
        sqs: JobQueues,
        *,
        holds: Sequence[Hold] = (),
        guards: Sequence[Guard] = (),
        limiter: Limiter | None = None,
        find: processor.Find | None = None,
        rng: Callable[[], float] | None = None,
        margin: float = STOP_MARGIN_SECONDS,
        source: str | None = None,
    ) -> None:
        self.queue = queue
        self.source = source or queue.name
        self.jobs = jobs
        self.sqs = sqs
        self.holds = tuple(holds)
        self.guards = tuple(guards)
        self.limiter = limiter
        self.find = find or processor.find
        self.rng = rng or random.random
        self.margin = margin

    def _find(self, job_type: str) -> processor.Processor | None:
        """The job type's processor; none on a priority queue for the queue's `normal_only`
        types (their rights are its own consumer's: a message of one here fails, never runs)."""
        if self.source != self.queue.name and job_type in self.queue.normal_only:
            return None
        return self.find(self.queue.name, job_type)

    def handle(self, event: dict[str, Any], context: Any = None) -> dict[str, Any]:
        remaining = _remaining(context, self.queue.function_timeout)
        records = [Record.of(raw) for raw in event.get("Records") or []]
        failed: list[str] = []
        for i, record in enumerate(records):
            if remaining() <= self.margin:
                log.warning(
                    "%s: stopping before the Lambda deadline; %d records left", self.queue.name, len(records) - i
                )
                for late in records[i:]:
                    self._back_off(late)
                    failed.append(late.message_id)
                break
            try:
                with runtime.correlate(queue=self.queue.name):  # job_id, run, attempt: added by _one
                    ok = self._one(record, remaining, context)
            except Exception:  # the machinery itself failed (e.g. DynamoDB unreachable): retry the record
                log.exception("%s: record %s could not be handled", self.queue.name, record.message_id)
                self._back_off(record)
                ok = False
            if not ok:
                failed.append(record.message_id)
        return {"batchItemFailures": [{"itemIdentifier": message_id} for message_id in failed]}

    # --- one record ------------------------------------------------------------------------------

    def _one(self, record: Record, remaining: Callable[[], float], context: Any) -> bool:
        """Handle one record; True when its message may be deleted."""
        from chalicelib.jobs.queues import parse_body  # pydantic: loaded by the first record, not by app.py

        processor.CURRENT.set(None)
        message = parse_body(record.body)
        if message is None:
            log.warning(
                "%s: malformed message %s (delivery %d)", self.queue.name, record.message_id, record.receive_count
            )
            if record.receive_count >= self.queue.attempts:
                return self._to_dead_letters(record)
            self._back_off(record)
            return False
        runtime.annotate(job_id=message.job_id, run=message.run)
        if message.early_by(timeutil.now()) >= 1 and self._hop(record, message):
            return True
        if any(hold(self.queue.name) for hold in self.holds):
            self.sqs.send(self.source, record.body, HOLD_DELAY_SECONDS, record.group)
            return True
        if self.limiter is not None and (wait := self.limiter(self.queue.name)) > 0:
            return self._rate_limited(record, message.job_id, wait)
        owner = f"{record.message_id}:{getattr(context, 'aws_request_id', '') or id(self)}"
        lease_until = timeutil.now() + remaining() + LEASE_GRACE_SECONDS
        claim = self.jobs.claim(self.queue.name, message.job_id, message.run, owner, lease_until)
        if claim.outcome != CLAIMED:
            return self._refused(record, claim.outcome, claim.job, message.job_id)
        job = claim.job
        assert job is not None
        payload = from_dynamo(job.get("payload") or {})
        scheduled = payload if isinstance(payload, dict) else {}  # a scheduled job names its slot
        runtime.annotate(attempt=int(job["attempts"]), schedule=scheduled.get("schedule"), slot=scheduled.get("slot"))
        if job.get("failing"):  # its last worker died inside the final failure: finish that, no rerun
            note = from_dynamo(job["failing"])
            log.warning("%s: finishing the interrupted failure of job %s", self.queue.name, job["id"])
            proc = self._find(job["type"])
            return self._fail(job, owner, note["error"], record, proc, attempts=int(note["attempts"]))
        monitor.emit("active", job)
        attempt = int(job["attempts"])
        final = attempt >= int(job["max_attempts"]) or record.receive_count >= self.queue.attempts
        proc = self._find(job["type"])
        view = public(job)
        ctx = processor.JobContext(
            job=view,
            attempt=attempt,
            final_attempt=final,
            report_progress=lambda pct: self._progress(job, owner, pct),
            remaining=remaining,
            margin=self.margin,
            effects=from_dynamo(job.get("effects") or {}),
            record_effects=lambda done: self.jobs.record_effects(job, owner, done),
        )
        processor.CURRENT.set(ctx)
        try:
            if proc is None:
                raise errors.UnknownJobType(f"no processor for {self.queue.name}/{job['type']}")
            with ExitStack() as guarded:
                for guard in self.guards:
                    guarded.enter_context(guard(view, ctx))
                result = proc.run(view, ctx)
        except errors.LeaseLost as exc:
            log.warning("%s: %s", self.queue.name, exc)
            self._back_off(record)
            return False
        except errors.Throttled as exc:
            if int(job.get("throttled") or 0) < MAX_THROTTLED_WAITS:
                joblog.write(self.jobs.table, job, ctx.attempt_log, None, "throttled")
                return self._throttled(job, owner, exc, record)
            error = errors.describe(exc)  # waited often enough: an ordinary failed attempt
            if final:
                return self._fail(job, owner, error, record, proc, ctx=ctx)
            return self._retry_later(job, owner, error, record, ctx)
        except Exception as exc:
            error = errors.describe(exc)
            if _aws_refused(exc) and int(job.get("throttled") or 0) < MAX_THROTTLED_WAITS:
                return self._aws_unavailable(job, owner, error, record)
            if final or errors.is_permanent(exc):
                return self._fail(job, owner, error, record, proc, ctx=ctx)
            return self._retry_later(job, owner, error, record, ctx)
        joblog.write(self.jobs.table, job, ctx.attempt_log, None)
        try:
            done = self.jobs.complete(job, owner, result)
        except errors.LeaseLost as exc:
            log.warning("%s: finished but %s", self.queue.name, exc)
            return True
        monitor.emit("completed", done)
        self._trim("completed", self.queue.keep_completed)
        return True

    def _hop(self, record: Record, message: JobMessage) -> bool:
        """Send an early message on, delayed by what remains (SQS's 900 s at most); True when it
        went. Only while its job waits in that run: else the claim decides what it is."""
        from chalicelib.jobs.queues import MAX_DELAY_SECONDS

        job = self.jobs.get(message.job_id)
        if job is None or job["state"] != "delayed" or int(job.get("run", 1)) != message.run:
            return False
        wait = min(MAX_DELAY_SECONDS, round(message.early_by(timeutil.now())))
        self.sqs.send(self.source, record.body, wait, record.group)
        return True

    def _refused(self, record: Record, outcome: str, old: dict[str, Any] | None, job_id: str) -> bool:
        if outcome == CANCELLED and old is not None:
            return self._cancelled(record, old)
        if outcome == DONE:
            log.info("%s: job %s is completed already; redelivery acknowledged", self.queue.name, job_id)
            return True
        if outcome == DEAD:
            return self._to_dead_letters(record, old)
        if outcome == BUSY and old is not None:
            from chalicelib.jobs.queues import MAX_DELAY_SECONDS

            # A copy delayed past the lease, this delivery acknowledged: waiting out a run that may
            # have died (killed, timed out) must not use up the receives before the dead-letter queue.
            wait = max(1, min(MAX_DELAY_SECONDS, round(float(old["lease_until"]) - timeutil.now() + 1)))
            log.info("%s: job %s is running elsewhere; trying again in %d s", self.queue.name, job_id, wait)
            self.sqs.send(self.source, record.body, wait, record.group)
            return True
        if outcome in (MISSING, STALE):
            log.info("%s: message for job %s is %s; acknowledged", self.queue.name, job_id, outcome)
            return True
        # Refused, yet claimable as read (a race lost, or a record in no state the claim expects):
        # never drop the message; it comes back after a backoff and claims again.
        log.warning("%s: claim of job %s refused (%s); trying again later", self.queue.name, job_id, outcome)
        self._back_off(record)
        return False

    def _throttled(self, job: dict[str, Any], owner: str, exc: errors.Throttled, record: Record) -> bool:
        """Wait as long as the dependency asked (capped at SQS's longest delay) without using an
        attempt: the attempt is given back (job `delayed`), the message put back delayed and this
        delivery acknowledged, so its receive count starts again too."""
        from chalicelib.jobs.queues import MAX_DELAY_SECONDS

        error = errors.describe(exc)
        try:
            job = self.jobs.give_back(job, owner, error)
        except errors.LeaseLost as lost:
            log.warning("%s: %s", self.queue.name, lost)
            self._back_off(record)
            return False
        delay = min(MAX_DELAY_SECONDS, max(1, math.ceil(exc.retry_after)))
        self.sqs.send(self.source, record.body, delay, record.group)
        log.info("%s: job %s throttled; waits %d s without using an attempt", self.queue.name, job["id"], delay)
        monitor.emit("retrying", job, error)
        return True

    def _aws_unavailable(self, job: dict[str, Any], owner: str, error: dict[str, str], record: Record) -> bool:
        """An attempt that failed only because AWS (DynamoDB, SQS, ...) still refused after the
        SDK's retries: the attempt is given back (as for a Throttled one, sharing its bound) and
        the message put back after the backoff of the job's waits so far, a new message whose
        receive count starts again; this delivery is acknowledged. If AWS refuses that too, the
        record is simply failed back to SQS (its attempt then counts)."""
        from chalicelib.jobs.queues import MAX_DELAY_SECONDS

        try:
            job = self.jobs.give_back(job, owner, error)
            delay = min(
                MAX_DELAY_SECONDS, backoff.delay(int(job.get("throttled") or 1), self.queue.backoff_base, self.rng)
            )
            self.sqs.send(self.source, record.body, delay)
        except Exception as exc:
            log.warning("%s: could not put job %s back (%s); backing off", self.queue.name, job["id"], exc)
            self._back_off(record)
            return False
        log.warning(
            "%s: job %s met an AWS fault; waits %d s without using an attempt", self.queue.name, job["id"], delay
        )
        monitor.emit("retrying", job, error)
        return True

    def _cancelled(self, record: Record, job: dict[str, Any]) -> bool:
        """A cancelled job's message: its cancel hook again (finishing one that failed at cancel
        time; idempotent), then acknowledged without running."""
        proc = self._find(job["type"])
        if proc is not None and proc.on_cancel is not None:
            try:
                proc.on_cancel(public(job))
            except Exception:
                log.exception("%s: on_cancel of job %s failed; trying again later", self.queue.name, job["id"])
                self._back_off(record)
                return False
        log.info("%s: job %s is cancelled; message acknowledged", self.queue.name, job["id"])
        return True

    def _retry_later(
        self, job: dict[str, Any], owner: str, error: dict[str, str], record: Record, ctx: processor.JobContext
    ) -> bool:
        joblog.write(self.jobs.table, job, ctx.attempt_log, error, "retrying")
        try:
            job = self.jobs.retry_later(job, owner, error)
        except errors.LeaseLost:
            pass
        else:
            monitor.emit("retrying", job, error)
        self._back_off(record)
        return False

    def _fail(
        self,
        job: dict[str, Any],
        owner: str,
        error: dict[str, str],
        record: Record,
        proc: processor.Processor | None,
        attempts: int | None = None,
        ctx: processor.JobContext | None = None,
    ) -> bool:
        """Fail the job for good. Its processor's `on_final_failure` runs first, so that whoever
        sees the job `failed` (its record, `job.failed`) also sees what the hook did (the article
        rolled back). The job is noted `failing` before the hook: if the Lambda dies between the
        hook and the failed record, the next delivery finishes the failure (`_one`). A hook that
        raises is logged; the job fails all the same."""
        if proc is not None and proc.on_final_failure is not None:
            try:
                if not job.get("failing"):
                    job = self.jobs.failing(job, owner, error)
            except errors.LeaseLost as exc:
                log.warning("%s: %s", self.queue.name, exc)
                self._back_off(record)
                return False
            view = public(job)
            if attempts is not None:
                view["attempts"] = attempts
            try:
                proc.on_final_failure(view, error)
            except Exception:
                log.exception("%s: on_final_failure of job %s failed", self.queue.name, job["id"])
        joblog.write(self.jobs.table, job, ctx.attempt_log if ctx else None, error, "failed")
        try:
            job = self.jobs.fail(job, owner, error, attempts)
        except errors.LeaseLost as exc:
            log.warning("%s: %s", self.queue.name, exc)
            self._back_off(record)
            return False
        monitor.emit("failed", job, error)
        self._trim("failed", self.queue.keep_failed)
        return self._to_dead_letters(record, job)

    # --- queue operations ------------------------------------------------------------------------

    def _rate_limited(self, record: Record, job_id: str, wait: float) -> bool:
        """Put the message back, delayed until the queue's rate limit lets the job start, and
        acknowledge this delivery: a new message starts at receive count 1 and the job was not
        claimed, so no attempt is used (BullMQ's rate-limit error). The one place a job is put
        back for its rate limit."""
        from chalicelib.jobs.queues import MAX_DELAY_SECONDS
        from chalicelib.observe import metrics

        delay = min(MAX_DELAY_SECONDS, max(1, math.ceil(wait)))
        self.sqs.send(self.source, record.body, delay, record.group)
        metrics.count("JobRateLimited", Queue=self.queue.name)
        log.info("%s: job %s is over the rate limit; put back for %d s", self.queue.name, job_id, delay)
        return True

    def _to_dead_letters(self, record: Record, job: dict[str, Any] | None = None) -> bool:
        """Copy the message to the dead-letter queue, once per failed run: the job notes the copy
        (`dead_letter`) after it went, so a redelivery of the message (its DeleteMessage lost, a
        worker killed after the copy) is acknowledged without a second copy."""
        run = int(job.get("run", 1)) if job else 0
        if job and int(job.get("dead_letter") or 0) == run:
            log.info("%s: job %s is in the dead-letter queue already; acknowledged", self.queue.name, job["id"])
            return True
        try:
            self.sqs.dead_letter(self.queue.name, record.body)
        except Exception:
            log.exception("%s: could not dead-letter %s; SQS's redrive will", self.queue.name, record.message_id)
            self._back_off(record)
            return False
        if job:
            try:
                self.jobs.dead_lettered(job)
            except Exception:  # unnoted, a redelivery copies it again: twice beats never
                log.warning("%s: could not note the dead letter of job %s", self.queue.name, job["id"], exc_info=True)
        return True

    def _back_off(self, record: Record) -> None:
        seconds = backoff.delay(record.receive_count, self.queue.backoff_base, self.rng)
        try:
            self.sqs.hide(self.source, record.receipt_handle, seconds)
        except Exception:
            log.exception("%s: could not set the backoff of %s", self.queue.name, record.message_id)

    def _progress(self, job: dict[str, Any], owner: str, percent: int) -> None:
        updated = self.jobs.progress(job, owner, percent)
        monitor.emit("progress", updated)

    def _trim(self, state: str, keep: int) -> None:
        retain(self.jobs, self.queue.name, state, keep)


def retain(jobs: JobStore, queue: str, state: str, keep: int) -> None:
    """After a final transition: trim the queue's jobs in `state` to the newest `keep` at this
    container's 1st, (1+TRIM_EVERY)th, ... such transition (a failed trim is only logged)."""
    _finished[queue, state] += 1
    if (_finished[queue, state] - 1) % TRIM_EVERY:
        return
    try:
        jobs.trim(queue, state, keep)
    except Exception:
        log.exception("%s: could not trim %s jobs", queue, state)


def _aws_refused(exc: BaseException) -> bool:
    """Whether AWS itself failed the attempt (`aws.unavailable`), not the job's own work."""
    from chalicelib import aws

    return aws.unavailable(exc)


def _remaining(context: Any, default_timeout: float) -> Callable[[], float]:
    """Seconds left before the Lambda deadline, from the context (or the queue's timeout)."""
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        return lambda: context.get_remaining_time_in_millis() / 1000.0
    deadline = timeutil.now() + default_timeout
    return lambda: deadline - timeutil.now()
