"""The queue dashboard: a protected API over the four queues and the page at `/dashboard`.

- `service`: stats, health (503 + `system.alert` when it turns bad), retry-all, remove, clean,
  pause/resume; every control action audited. Job listing, detail and single retry are the
  jobs API's (`chalicelib.jobs`); this package adds what is about queues as a whole.
- `gateway`: SQS depths, StartMessageMoveTask, the Lambda event source mapping (pause).
- `health`: the checks and thresholds (setting `queues.health`), pure; the last status.
- `pause`: the paused flags and the worker hold that makes a pause strict (`is_paused`, which
  app.py registers with `jobs.worker.add_hold`).
- `page`: the static page and its script.
"""

from __future__ import annotations

from chalicelib.dashboard.pause import hold as is_paused
from chalicelib.dashboard.service import (
    CleanRequest,
    clean,
    health_report,
    known,
    remove_job,
    retry_all,
    set_paused,
    stats,
)

__all__ = [
    "CleanRequest",
    "clean",
    "health_report",
    "is_paused",
    "known",
    "remove_job",
    "retry_all",
    "set_paused",
    "stats",
]
