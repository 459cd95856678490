"""The audit trail: complete, batched without loss, queryable and tamper-evident.

Recording is one call, from any route, WebSocket handler, processor or schedule::

    from chalicelib import audit

    audit.record("queue.pause", resource=("queue", name))
    audit.record("job.retry", resource=("job", job_id), details={"attempts": 2})
    audit.record("system.startup")                      # any `system.*` name
    audit.record("billing.charge", "system", "warning")  # an uncatalogued name needs its category

`record(action, category=None, severity=None, *, resource=None, details=None, critical=None,
user_id=None) -> event` takes the actor (user, IP, user agent, request id) from
`runtime.current()`; `user_id` names the actor where nobody is authenticated (a login). Names,
categories and severities come from `actions.ACTIONS` (add yours there). Secrets in `details`
(passwords, tokens, tickets, signatures...) are masked. Critical actions (auth.*, user.*,
settings.*, queue control, job.retry/remove, schedule.run, security.*, audit reads) are written
before `record` returns; the rest are buffered (`logger.BUFFER`) and written 25 per
BatchWriteItem at the end of the invocation, by the buffer's end flush that app.py's middleware
runs around every handler. Outside a handler (scripts, tests) call `audit.flush()`; from a thread of your own, run the work in
`contextvars.copy_context()` so that `record` sees the invocation (and its end flushes).

Published for the realtime emitters: every event, as the admin room's `activity` (what
`GET /api/audit` lists, the live feed shows too), in one `events.AuditRecorded(events)` per flush
(the end of the invocation, or every `logger.ACTIVITY_BATCH` events), after the events were
written; and `events.Alert` for lockouts and tampering. Jobs: `sealer.seal(now)` is
`cleanup/audit_digest` and `tally.count(now)` is `cleanup/audit_tally` (import those submodules
where they are used: this package loads only what `record` needs, for cold starts); `cleanup/activity_logs` is the cleanup queue's sweep of
`audit_events` (chalicelib.audit.jobs; the sealing ones are chalicelib.audit.seal_jobs, run by
the cleanup queue's own consumer only).

Modules: actions (catalogue), model (keys, fingerprints), logger (record, buffer,
writer, fallback queue), manifest (the flush manifests: write-time evidence), store (queries, summary,
report), chain (verify: the hash chain of digests), sealer (seal: its one writer), signing (the digest key's
public half), counts (the
minute and hour counts the report and summary read, and their one writer), api, jobs.
Redaction is `chalicelib.redact` (the logs use it too).
"""

from __future__ import annotations

from chalicelib.audit.actions import ACTIONS, CATEGORIES, UnknownAction
from chalicelib.audit.logger import flush, pending, process_fallback_message, record

__all__ = [
    "ACTIONS",
    "CATEGORIES",
    "UnknownAction",
    "flush",
    "pending",
    "process_fallback_message",
    "record",
]
