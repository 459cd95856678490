"""What a processor is, and the context a running job gets.

A processor is a plain function `(job, ctx) -> result dict` where `job` is the public job
(`GET /api/jobs/{id}`'s shape). It may have two hooks: `on_final_failure(job, error)`, run
when the job fails for good (after its last attempt, or at once for a PermanentError) and before
the job is recorded `failed`, so whoever sees it failed sees the hook's work too; it runs again
if the Lambda died before the failure was recorded, so it must be idempotent; and
`on_retry(job)`, run before an admin's retry re-queues a failed job (raise
`errors.RetryRefused` to refuse it; the article generator uses it to put its article back into
PROCESSING); and `on_cancel(job)`, run once a waiting or delayed job is cancelled (and again by
the worker when the cancelled job's message arrives, so it must be idempotent).

Processors belong to the capabilities (each declares its own as `PROCESSORS`); app.py builds the
(queue, job type) table from those declarations and hands its lookup to the engine once with
`use(find)`: the worker runs what `find` names, and the job operations (retry, cancel) run the hooks.
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from chalicelib.jobs.errors import DeadlineExceeded
from chalicelib.jobs.joblog import AttemptLog

Job = dict[str, Any]
Run = Callable[[Job, "JobContext"], dict[str, Any] | None]
Find = Callable[[str, str], "Processor | None"]  # (queue, job type) -> its processor


@dataclass(frozen=True)
class Processor:
    queue: str
    type: str
    run: Run
    on_final_failure: Callable[[Job, dict[str, str]], None] | None = None
    on_retry: Callable[[Job], None] | None = None
    on_cancel: Callable[[Job], None] | None = None


@dataclass
class JobContext:
    """What a running processor may ask of the worker."""

    job: Job
    attempt: int  # 1 for the first delivery of this run
    final_attempt: bool  # a failure now fails the job
    report_progress: Callable[[int], None] = field(repr=False)
    remaining: Callable[[], float] = field(repr=False)  # seconds left before the Lambda's deadline
    margin: float = 5.0  # seconds kept back for recording the outcome
    effects: dict[str, Any] = field(default_factory=dict)  # side effects done, by name (see `once`)
    record_effects: Callable[[dict[str, Any]], object] = field(default=lambda effects: None, repr=False)
    attempt_log: AttemptLog = field(default_factory=AttemptLog, repr=False)

    def log(self, level: str, message: str) -> None:
        """A line in this attempt's log (`GET /api/jobs/{id}/logs`): level debug, info, warning or
        error; secrets masked, at most 100 lines and 8 KB an attempt, stored with the outcome."""
        self.attempt_log.add(level, message)

    def once(self, name: str, action: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        """Run the side effect `action` at most once per job: its result is stored on the job
        record before `once` returns, and a redelivery (a crash before the job completed, a
        duplicate message) gets the stored result without running it again. Only a crash
        between `action` and that one write can still repeat it."""
        if name not in self.effects:
            done = dict(self.effects, **{name: action()})
            self.record_effects(done)
            self.effects = done
        return dict(self.effects[name])

    def progress(self, percent: int) -> None:
        """Record and announce progress (0-100); repeated or lower values are ignored."""
        percent = max(0, min(100, int(percent)))
        if percent > self.job.get("progress", 0):
            self.job["progress"] = percent
            self.report_progress(percent)

    def time_left(self) -> float:
        """Seconds this job may still spend (the Lambda's remaining time less the margin)."""
        return self.remaining() - self.margin

    def check_deadline(self, needed: float = 0.0) -> None:
        """Raise DeadlineExceeded (retried later) unless `needed` seconds are left."""
        if self.time_left() <= needed:
            raise DeadlineExceeded("stopped before the Lambda deadline")


CURRENT: ContextVar[JobContext | None] = ContextVar("job_context", default=None)


def log(level: str, message: str) -> None:
    """A line in the log of the attempt being handled (for hooks, which get no context); nothing
    outside an attempt."""
    ctx = CURRENT.get()
    if ctx is not None:
        ctx.log(level, message)


_found: list[Find] = []  # the lookup app.py hands over (`use`)


def use(find: Find) -> None:
    """Run the processors `find` names (app.py's table of every capability's declarations)."""
    _found[:] = [find]


def find(queue: str, job_type: str) -> Processor | None:
    """The processor of (queue, job type), as app.py's table names it (None before `use`)."""
    return _found[0](queue, job_type) if _found else None
