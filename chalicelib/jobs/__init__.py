"""Background jobs: SQS queues with retries, backoff and dead letters, and their records.

The shared interface (other capabilities code against these names only):

- `enqueue(queue, type, payload, *, user_id=None, idempotency_key=None, delay_seconds=0)` -> the
  public job (as `GET /api/jobs/{id}` shows it);
- `get`, `list_page`, `counts`, `retry`, `redrive_dead_letters`, `remove` for the job API and
  the dashboard;
- processors registered per (queue, type) with `processors.processor`, raising
  `PermanentError` to fail at once; any other exception is retried;
- `worker.handle(queue, event, context)`, called by the SQS handlers in app.py.

Layout: records.py (DynamoDB, the state machine), queues.py (SQS), service.py (the operations
above), worker.py (batches), backoff.py, monitor.py (JobEvent), errors.py, processors/.
"""

from __future__ import annotations

from chalicelib.jobs.errors import EnqueueError, PermanentError, RetryRefused
from chalicelib.jobs.service import counts, enqueue, get, list_page, redrive_dead_letters, remove, retry

__all__ = [
    "EnqueueError",
    "PermanentError",
    "RetryRefused",
    "counts",
    "enqueue",
    "get",
    "list_page",
    "redrive_dead_letters",
    "remove",
    "retry",
]
