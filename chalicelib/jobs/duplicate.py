"""Duplicate a job: a new job with the same queue, type, payload, priority and causing user, for
a re-run with the original's data (`POST /api/jobs/{id}/duplicate`).

The processor's `on_retry` hook runs first for the new job, as for an admin's retry (the article
generator puts its article back into PROCESSING under the new job; it refuses, a 409, while the
article is busy); if the new job then cannot be queued, its `on_cancel` hook undoes that.

With the client's `Idempotency-Key`, a repeat (after a lost answer, a 503) returns the job the
first call made, and makes none: the key, scoped to the original job, is the new job's
idempotency key (`jobs.enqueue`), looked up (one GetItem) before the hook runs. Without a key,
each call makes a new job: a client that may repeat the call sends a key.
"""

from __future__ import annotations

import logging
from typing import Any

from chalicelib.jobs import errors, processor, service
from chalicelib.jobs.queues import JobQueues
from chalicelib.jobs.records import JobStore, new_id
from chalicelib.util import from_dynamo

log = logging.getLogger("inkwell.jobs")


def duplicate(
    job_id: str, *, key: str | None = None, jobs: JobStore | None = None, sqs: JobQueues | None = None
) -> tuple[dict[str, Any], bool]:
    """The new job (public) and True; with `key`, the job an earlier call with that key made and
    False, if there is one. Raises JobNotFound (404), RetryRefused (409) when the processor
    refuses, EnqueueError (503) when it could not be queued."""
    jobs = jobs or service.store()
    record = service.get(job_id, jobs)
    if record is None:
        raise errors.JobNotFound(job_id)
    idempotency_key = f"duplicate#{job_id}#{key}" if key else None
    if idempotency_key:
        held = jobs.table.get_item(
            Key={"id": jobs.idempotency_id(record["queue"], idempotency_key)}, ConsistentRead=True
        )
        earlier = service.get(held["Item"]["job_id"], jobs) if "Item" in held else None
        if earlier is not None:
            return earlier, False
    view = {**record, "id": new_id(), "state": "waiting", "attempts": 0, "result": None, "error": None}
    proc = processor.find(record["queue"], record["type"])
    if proc is not None and proc.on_retry is not None:
        proc.on_retry(view)
    try:
        made = service.enqueue(
            record["queue"],
            record["type"],
            from_dynamo(record["payload"]),
            user_id=record.get("user_id"),
            priority=record.get("priority") or "normal",
            idempotency_key=idempotency_key,
            job_id=view["id"],
            jobs=jobs,
            sqs=sqs,
        )
    except Exception:
        if proc is not None and proc.on_cancel is not None:
            try:
                proc.on_cancel(view)
            except Exception:
                log.exception("could not undo the start of duplicate %s of job %s", view["id"], job_id)
        raise
    return made, made["id"] == view["id"]
