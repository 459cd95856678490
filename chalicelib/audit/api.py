"""The audit REST endpoints' logic: parameters checked into 400s, the right query, and the read
itself recorded (reading or exporting the audit log is audited too); asking for an export and
its presigned URL (the export itself is the `cleanup/audit_export` job, export.py)."""

from __future__ import annotations

import os
import time
from typing import Any

from pydantic import Field

from chalicelib import aws, config, errors, http, timeutil
from chalicelib.audit import chain, counts, model, store
from chalicelib.audit.actions import CATEGORIES, MAX_RETENTION_SECONDS, NAME_PATTERN
from chalicelib.audit.logger import record

DAY = 86400
DEFAULT_LIST_DAYS = 30
MAX_REPORT_DAYS = 92
MAX_VERIFY_DAYS = 7
VERIFY_SECONDS = 15.0  # a verify call stops starting hours after this long
CURSOR_KEYS = {"p", "s"}
SUMMARY_PROJECTION = {"ProjectionExpression": "#a, category, ts, sk", "ExpressionAttributeNames": {"#a": "action"}}


def time_range(params: dict[str, str], default_days: float, max_days: float | None = None) -> tuple[float, float]:
    now = timeutil.now()
    until = http.time_param(params, "until", now)
    since = http.time_param(params, "since", until - default_days * DAY)
    if since > until:
        raise http.bad_request("must not be after until", "since")
    if max_days is not None and until - since > max_days * DAY:
        raise http.bad_request(f"the range may span at most {max_days} days", "since")
    # Nothing is older than the longest retention, nothing is in the future: keep the walk short.
    until = min(until, now + DAY)
    since = min(max(since, now - MAX_RETENTION_SECONDS - 31 * DAY), until)
    return since, until


def filters(params: dict[str, str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for name in ("user_id", "action", "category", "resource_type", "resource_id"):
        value = params.get(name)
        if value:
            if len(value) > 256:
                raise http.bad_request("is too long", name)
            out[name] = value
    if "category" in out and out["category"] not in CATEGORIES:
        raise http.bad_request(f"must be one of {', '.join(CATEGORIES)}", "category")
    if "action" in out and not NAME_PATTERN.match(out["action"]):
        raise http.bad_request("must be a dotted action name such as auth.login", "action")
    if ("resource_type" in out) != ("resource_id" in out):
        raise http.bad_request("resource_type and resource_id go together", "resource_id")
    return out


def events_store() -> store.AuditStore:
    return store.AuditStore(aws.table("audit_events"))


def list_events(params: dict[str, str]) -> dict[str, Any]:
    """GET /api/audit: one page, newest first."""
    wanted = filters(params)
    since, until = time_range(params, DEFAULT_LIST_DAYS)
    source, rest = store.source_for(wanted, since, until)
    limit = http.limit_param(params)
    cursor = http.decode_cursor(params, CURSOR_KEYS)
    try:
        items, next_key = events_store().merge_page(source, store.sort_key_bounds(since, until), limit, cursor, rest)
    except store.InvalidCursor:
        raise http.bad_request("is not a cursor this query returned", "cursor") from None
    record("audit.read", details={"filters": wanted, "since": timeutil.iso(since), "returned": len(items)})
    return http.page([model.public(i) for i in items], next_key)


def user_summary(caller: dict[str, Any], user_id: str, params: dict[str, str]) -> dict[str, Any]:
    """GET /api/audit/users/{user_id}/summary: for admins, or for that user."""
    if caller["role"] != "admin" and caller["id"] != user_id:
        record("security.forbidden", resource=("user", user_id[:256]), details={"wanted": "audit summary"})
        raise errors.Forbidden("only admins may read another user's activity")
    try:
        days = int(params.get("days", "7"))
    except ValueError:
        raise http.bad_request("must be an integer", "days") from None
    if not 1 <= days <= 365:
        raise http.bad_request("must be between 1 and 365", "days")
    until = timeutil.now()
    since = until - days * DAY
    source = store.Source("by_user", "user_id", [(user_id, [user_id[:256]])])
    blocks = counts.counts().blocks(since, until, user_id[:256])
    tallies, ranges, cut = _counted(blocks, since, until)
    for lo, hi in ranges:
        items, more = events_store().all_of(source, (lo, hi), store.MAX_SUMMARY_EVENTS, **SUMMARY_PROJECTION)
        tallies, cut = tallies + list(store.user_tally(items).values()), cut or more
    record("audit.read", resource=("user", user_id), details={"summary": True, "days": days})
    return store.summary_from(user_id, store.merge_user(tallies), days, cut)


def _counted(
    blocks: list[counts.Block], since: float, until: float
) -> tuple[list[dict[str, Any]], list[tuple[str, str]], bool]:
    """The tallies of the counted blocks that tile [since, until] and the sort-key ranges left to
    the raw events (the first partial minute, what is newer than the last count, any gap). A
    block's retention classes whose time has passed since it ended are left out, as TTL removes
    their events. Whether a block's counts were cut."""
    lo, hi = store.sort_key_bounds(since, until)
    chosen, gaps = counts.cover(blocks, lo, hi[:-1])
    now = timeutil.now()
    tallies = [t for b in chosen for days, t in b.tallies.items() if timeutil.parse_iso(b.hi) + int(days) * DAY > now]
    return tallies, [(a, b) for a, b in gaps if a < b], any(b.cut for b in chosen)


def report(params: dict[str, str]) -> dict[str, Any]:
    """GET /api/audit/report: the system activity report over [since, until] (default 24 h).

    Read from counts (`counts.Counts.blocks`): the final hours inside the range, the minutes of
    the hour it starts or ends in and of those not final yet; only the events of what no count
    covers are read (the first partial minute, the last minute or two)."""
    since, until = time_range(params, 1, MAX_REPORT_DAYS)
    blocks = counts.counts().blocks(since, until)
    tallies, ranges, cut = _counted(blocks, since, until)
    events = 0
    for sk_lo, sk_hi in ranges:
        source, _ = store.source_for({}, _moment(sk_lo, since), _moment(sk_hi, until))
        items, more = events_store().all_of(source, (sk_lo, sk_hi), store.MAX_REPORT_EVENTS - events)
        events, cut = events + len(items), cut or more
        tallies += store.tally(items).values()
    details = {"export": "audit.report", "since": timeutil.iso(since), "events": events, "counted": len(blocks)}
    record("analytics.export", details=details)
    return store.report_from(store.merge(tallies), timeutil.iso(since), timeutil.iso(until), cut)


def _moment(sort_key: str, default: float) -> float:
    try:
        return timeutil.parse_iso(sort_key[:24])
    except ValueError:  # before the year 1000, `iso_ms` has fewer digits
        return default


def verify(params: dict[str, str]) -> dict[str, Any]:
    """GET /api/audit/verify: recompute digests over [since, until] (default 24 h, at most 7 days),
    as many whole hours as one call can check well inside API Gateway's 29 s (VERIFY_SECONDS, or
    chain.MAX_VERIFY_EVENTS events): `complete` false and `next_since` when hours are left."""
    since, until = time_range(params, 1, MAX_VERIFY_DAYS)
    deadline = time.monotonic() + VERIFY_SECONDS
    result = chain.digests().verify(since, until, timeutil.now(), lambda: deadline - time.monotonic())
    details = {"valid": result["valid"], "checked": result["checked"], "problems": len(result["problems"])}
    record("audit.verify", details=details)
    if not result["valid"]:
        first = result["problems"][0]["message"]
        record("audit.tamper_detected", details={**details, "first": first})
    return result


# --- exports (the job: export.py) ---------------------------------------------------------------

QUEUE, JOB_TYPE = "cleanup", "audit_export"
MAX_EXPORT_DAYS = 31
URL_SECONDS = 900
MAX_FOLLOW_UPS = 1000  # jobs one export may take (each a cleanup function's run)


def bucket() -> str:
    """The stage's audit export bucket (private, encrypted, versioned)."""
    return os.environ.get(config.AUDIT_EXPORT_BUCKET) or config.physical_name(config.get().stage, "audit-exports")


def object_key(export_id: str) -> str:
    return f"audit-exports/{export_id}.ndjson"


class ExportRange(http.Body):
    since: str = Field(min_length=1, max_length=40)
    until: str = Field(min_length=1, max_length=40)


def start_export(user: dict[str, Any], body: ExportRange) -> dict[str, Any]:
    """POST /api/audit/exports `{"since","until"}`: queue the export job (202)."""
    params = {"since": body.since, "until": body.until}
    until = http.time_param(params, "until", 0)
    since = http.time_param(params, "since", 0)
    if since > until:
        raise http.bad_request("must not be after until", "since")
    if until - since > MAX_EXPORT_DAYS * 86400:
        raise http.bad_request(f"the range may span at most {MAX_EXPORT_DAYS} days", "since")
    from chalicelib import jobs

    payload = {"since": timeutil.iso_ms(since), "until": timeutil.iso_ms(until)}
    job = jobs.enqueue(QUEUE, JOB_TYPE, payload, user_id=user["id"])
    record("audit.export", resource=("job", job["id"]), details={**payload, "state": "requested"})
    return {"export_id": job["id"], "job_id": job["id"]}


def export_status(export_id: str) -> dict[str, Any]:
    """GET /api/audit/exports/{export_id}: its state, and a presigned URL once ready."""
    from chalicelib import jobs

    job = jobs.get(export_id) if len(export_id) <= 64 else None
    if job is None or job.get("type") != JOB_TYPE or "export_id" in job.get("payload", {}):
        raise errors.NotFound(f"no audit export {export_id[:64]}")
    for _ in range(MAX_FOLLOW_UPS):  # a long export goes on in follow-up jobs: the last one says
        follow_up = (job.get("result") or {}).get("continued_by")
        if job["state"] != "completed" or not follow_up:
            break
        job = jobs.get(follow_up) or {"state": "failed"}  # removed: the export is lost
    result = job.get("result") or {}
    state = {"completed": "ready", "failed": "failed", "cancelled": "failed"}.get(job["state"], "pending")
    if result.get("continued_by"):
        state = "pending"
    out: dict[str, Any] = {"export_id": export_id, "state": state, "events": int(result.get("events", 0))}
    if state == "ready":
        out["url"] = aws.client("s3").generate_presigned_url(
            "get_object", Params={"Bucket": bucket(), "Key": object_key(export_id)}, ExpiresIn=URL_SECONDS
        )
        record("audit.export", resource=("job", export_id), details={"state": "downloaded", "events": out["events"]})
    return out
