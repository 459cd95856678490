"""The errors a job can end with, and how the worker treats each; and the jobs' refusals.

A processor raises `PermanentError` (or a subclass) when trying again cannot help: the job fails
at once and its message goes to the dead-letter queue. Any other exception is retried with
backoff until the queue's attempts are spent. `kind` is the short machine-readable reason stored
in the job record's `error` (clients see `{"message", "kind"}`, never a stack trace).

What the jobs refuse to do for a caller (`JobNotFound`, `JobStateRefused`, `RetryRefused`,
`EnqueueError`) are the domain's refusals (`chalicelib.errors`), so a route lets them through and
the middleware answers 404, 409 or 503.
"""

from __future__ import annotations

from chalicelib import errors

__all__ = [
    "DeadlineExceeded",
    "EnqueueError",
    "JobError",
    "JobNotFound",
    "JobStateRefused",
    "LeaseLost",
    "PermanentError",
    "RetryRefused",
    "Throttled",
    "UnknownJobType",
]

MAX_MESSAGE = 500


class JobError(Exception):
    """A failure the worker records with a chosen kind; retried unless permanent."""

    kind = "error"
    permanent = False

    def __init__(self, message: str, kind: str | None = None) -> None:
        super().__init__(message)
        if kind:
            self.kind = kind


class PermanentError(JobError):
    """Fails the job at once: invalid payload, a refused webhook call, an impossible transition."""

    kind = "permanent"
    permanent = True


class UnknownJobType(PermanentError):
    kind = "unknown_type"


class DeadlineExceeded(JobError):
    """Too little of the Lambda's time is left to start or finish this step; retried later."""

    kind = "deadline"


class LeaseLost(JobError):
    """Another worker took the job over (our lease had expired); this run must stop."""

    kind = "lease_lost"


class Throttled(JobError):
    """A dependency asked to be called again after `retry_after` seconds (HTTP 429 with
    Retry-After): the job waits that long without using an attempt, a bounded number of times."""

    kind = "throttled"

    def __init__(self, message: str, retry_after: float, kind: str | None = None) -> None:
        super().__init__(message, kind)
        self.retry_after = retry_after


class EnqueueError(errors.Unavailable):
    """The job could not be queued (its record was removed again); nothing will run (503)."""


class RetryRefused(errors.Conflict):
    """The job cannot be retried now (not failed, or its subject refuses, e.g. the article moved on) (409)."""


class JobStateRefused(errors.Conflict):
    """The job is not in a state the operation needs (promote: delayed; cancel: waiting or delayed) (409)."""


class JobNotFound(errors.NotFound, LookupError):
    """No such job (404); also a LookupError."""

    def __init__(self, job_id: str) -> None:
        super().__init__(f"job {job_id[:64]}")


def describe(exc: BaseException) -> dict[str, str]:
    """The `error` of a job record for an exception: a message and a kind, never a traceback."""
    if isinstance(exc, JobError):
        message, kind = str(exc), exc.kind
    else:
        message, kind = f"{type(exc).__name__}: {exc}", "error"
    return {"message": message[:MAX_MESSAGE] or kind, "kind": kind}


def is_permanent(exc: BaseException) -> bool:
    return isinstance(exc, JobError) and exc.permanent
