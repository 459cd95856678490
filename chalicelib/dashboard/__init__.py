"""The queue dashboard: a protected API over the four queues and the page at `/dashboard`.

- `service`: stats, health (503 + `system.alert` when it turns bad), retry-all, remove, clean,
  pause/resume; every control action audited. Job listing, detail and single retry are the
  jobs API's (`chalicelib.jobs`); this package adds what is about queues as a whole.
- `gateway`: SQS depths, StartMessageMoveTask, the Lambda event source mapping (pause).
- `health`: the checks and thresholds (setting `queues.health`), pure; the last status.
- `routes`: the REST routes and the page's.
- `page`: the static page and its script.

A pause is the jobs' (`jobs.pause`): its flag, and the worker hold that makes it strict.
"""
