"""Background jobs, the engine: SQS queues with retries, backoff and dead letters, and their
records. It knows no capability: each capability declares its own processors, and app.py hands
their table to the engine (`use_processors`).

The shared interface (other capabilities code against these names only):

- `enqueue(queue, type, payload, *, user_id=None, idempotency_key=None, delay_seconds=0)` -> the
  public job (as `GET /api/jobs/{id}` shows it);
- `get`, `list_page`, `counts`, `retry`, `promote`, `cancel`, `redrive_dead_letters`, `remove`
  for the job API and the dashboard;
- a processor (`processor.Processor`: queue, type, run and its hooks) raises `PermanentError`
  to fail at once; any other exception is retried; `use_processors(find)` is how app.py names
  them, once (the worker runs them, retry and cancel run their hooks);
- `worker.Worker(queue, jobs, sqs, holds=..., guards=..., find=...)`: app.py builds one per batch.

Layout: records.py (DynamoDB, the state machine), queues.py (SQS), service.py (the operations
above), worker.py (batches), processor.py (what a processor is, its context), sweep.py (the
expired-items sweep the capabilities' cleanup jobs use), backoff.py, ratelimit.py, pause.py,
timeline.py, monitor.py (JobEvent), errors.py, routes.py.

The operations are read from service.py when first used, not when this package is imported:
every Lambda imports it (the schedules and the worker do), and service.py brings in pydantic
(the job messages, `http`), which only the functions that enqueue or read jobs need.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalicelib.jobs.errors import EnqueueError, JobNotFound, JobStateRefused, PermanentError, RetryRefused
from chalicelib.jobs.processor import use as use_processors

if TYPE_CHECKING:
    from chalicelib.jobs.service import (
        cancel,
        counts,
        enqueue,
        get,
        list_page,
        promote,
        redrive_dead_letters,
        remove,
        retry,
    )

__all__ = [
    "EnqueueError",
    "JobNotFound",
    "JobStateRefused",
    "PermanentError",
    "RetryRefused",
    "cancel",
    "counts",
    "enqueue",
    "get",
    "list_page",
    "promote",
    "redrive_dead_letters",
    "remove",
    "retry",
    "use_processors",
]

_SERVICE = frozenset(
    {"cancel", "counts", "enqueue", "get", "list_page", "promote", "redrive_dead_letters", "remove", "retry"}
)


def __getattr__(name: str) -> Any:
    """`jobs.enqueue` and the other operations: service.py's, imported on first use."""
    if name in _SERVICE:
        from chalicelib.jobs import service

        return getattr(service, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
