"""Per-minute job metrics per queue: completed and failed counts and a duration histogram, kept
`TTL_SECONDS` in the `job_metrics` table and read back as points (`GET /api/queues/{q}/metrics`).

Cheap by construction: `on_job_event` (a JobEvent listener) only adds to the running
invocation's tally (`BUFFER`); `flush` (the buffer's end flush, which app.py's middleware runs)
writes it as one UpdateItem per (queue, minute) touched, ADDing to the counters and to the
histogram's buckets. An item is keyed `<queue>#<UTC day>` / the minute's epoch second, so the
endpoint reads a range with one Query per day, and no partition takes more than one queue's day.

Durations (finish minus start of the job's last attempt) fall into log-spaced buckets, four per
doubling: bucket 0 holds durations under 1 ms, bucket i >= 1 holds [2^((i-1)/4), 2^(i/4)) ms, the
last also everything longer. A percentile is read as its bucket's geometric middle, so it is
within `RELATIVE_ERROR` (2^(1/8) - 1, about 9.1%) of the true nearest-rank percentile, or within
0.5 ms below 1 ms (and the last bucket, past 70 minutes, only says "longer").

A write that fails (after botocore's retries) is kept in the container and added to the next
invocation's flush, so a throttled minute is late, not lost; each write carries a token and is
refused once its counter carries it (`util.ONCE_CONDITION`), so a write applied whose answer was
lost, repeated by the SDK or by the next flush, is not counted twice (unless another container's
write to the same minute came in between: metrics are approximate at that edge).
"""

from __future__ import annotations

import contextlib
import logging
import math
from collections import Counter
from typing import Any

from chalicelib import aws, events, runtime, timeutil
from chalicelib.util import ONCE_CONDITION, ONCE_NAMES, ONCE_SET, once_token

log = logging.getLogger("inkwell.jobs")

TABLE = "job_metrics"
INTERVAL = 60
RETENTION_SECONDS = 2 * 86400  # what the endpoint answers for
TTL_SECONDS = RETENTION_SECONDS + 86400  # DynamoDB removes items up to days after their TTL
PER_DOUBLING = 4
BUCKETS = PER_DOUBLING * 22 + 1  # up to 2^22 ms (70 minutes), longer in the last
RELATIVE_ERROR = 2 ** (1 / (2 * PER_DOUBLING)) - 1
MAX_UNSENT = 1000  # (queue, minute) tallies a container keeps for a later flush at most

# writes that failed, (queue, minute, counts, token): written again by the next flush under the
# same token, so one that was applied after all (its answer lost) is not counted twice
_unsent: list[tuple[str, int, Counter[str], str]] = []


def bucket(ms: float) -> int:
    if ms < 1:
        return 0
    return min(BUCKETS - 1, math.floor(math.log2(ms) * PER_DOUBLING) + 1)


def bucket_value(index: int) -> float:
    """The duration (ms) a bucket stands for: its geometric middle (0.5 for bucket 0)."""
    if index == 0:
        return 0.5
    return float(2 ** ((index - 0.5) / PER_DOUBLING))


def percentile(histogram: dict[int, int], p: float) -> float | None:
    """The nearest-rank `p` percentile (0 < p <= 1) of the durations a histogram counts."""
    total = sum(histogram.values())
    if total <= 0:
        return None
    rank = max(1, math.ceil(p * total))
    seen = 0
    for index in sorted(histogram):
        seen += histogram[index]
        if seen >= rank:
            return bucket_value(index)
    return None  # unreachable: seen reaches total


# --- writing --------------------------------------------------------------------------------------


def on_job_event(event: events.JobEvent) -> None:
    """Count a job that completed or failed for good in the running invocation's tally."""
    if event.kind not in ("completed", "failed"):
        return
    job = event.job
    finished = timeutil.parse_iso(job.get("finished_at") or job["updated_at"])
    started = job.get("started_at")
    ms = max(0.0, finished - timeutil.parse_iso(started)) * 1000 if started else 0.0
    minute = int(finished // INTERVAL) * INTERVAL
    counts = BUFFER.get().setdefault((job["queue"], minute), Counter())
    counts[event.kind] += 1
    counts[f"d{bucket(ms)}"] += 1


def flush() -> None:
    """Write the running invocation's tally, and any earlier one that failed: one UpdateItem per
    (queue, minute)."""
    tally = BUFFER.take()
    pending = list(_unsent) + [(q, m, counts, once_token()) for (q, m), counts in (tally or {}).items()]
    _unsent.clear()
    if not pending:
        return
    table = aws.table(TABLE)
    for queue, minute, counts, token in pending:
        try:
            _add(table, queue, minute, counts, token)
        except Exception:
            log.exception("could not write the job metrics of %s at %s; kept for the next flush", queue, minute)
            if len(_unsent) < MAX_UNSENT:
                _unsent.append((queue, minute, counts, token))


Tally = dict[tuple[str, int], Counter[str]]  # (queue, minute) -> completed, failed, d<bucket>
BUFFER: runtime.Buffer[Tally] = runtime.Buffer("job_minutes", dict, flush)


def _add(table: Any, queue: str, minute: int, counts: Counter[str], token: str) -> None:
    """ADD the counts, once for `token` (util.ONCE_CONDITION): a repeat of a write that was
    applied (its answer lost) is refused, and that refusal means done."""
    names = {"#ttl": "ttl", **ONCE_NAMES}
    values: dict[str, Any] = {":ttl": minute + TTL_SECONDS, ":once": token}
    adds = []
    for i, (name, n) in enumerate(sorted(counts.items())):
        names[f"#a{i}"] = name
        values[f":a{i}"] = n
        adds.append(f"#a{i} :a{i}")
    client = table.meta.client
    with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
        table.update_item(
            Key={"queue_day": f"{queue}#{timeutil.day(minute)}", "minute": minute},
            UpdateExpression=f"ADD {', '.join(adds)} SET #ttl = :ttl, {ONCE_SET}",
            ConditionExpression=ONCE_CONDITION,
            ExpressionAttributeNames=names,
            ExpressionAttributeValues=values,
        )


# --- reading --------------------------------------------------------------------------------------


def points(queue: str, since: float, until: float) -> list[dict[str, Any]]:
    """The minutes starting in [since, until] that had jobs, oldest first (one Query per UTC day)."""
    from boto3.dynamodb.conditions import Key

    table = aws.table(TABLE)
    first, last = math.ceil(since), math.floor(until)
    if first > last:  # DynamoDB refuses a BETWEEN whose bounds are reversed
        return []
    out: list[dict[str, Any]] = []
    day_start = first - first % 86400
    while day_start <= last:
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key("queue_day").eq(f"{queue}#{timeutil.day(day_start)}")
            & Key("minute").between(max(first, day_start), min(last, day_start + 86399)),
        }
        out += [point(item) for page in aws.query_pages(table, **kwargs) for item in page.get("Items", [])]
        day_start += 86400
    return [p for p in out if p["completed"] or p["failed"]]


def point(item: dict[str, Any]) -> dict[str, Any]:
    histogram = {int(k[1:]): int(v) for k, v in item.items() if k[:1] == "d" and k[1:].isdigit()}
    p50, p95 = percentile(histogram, 0.5), percentile(histogram, 0.95)
    return {
        "ts": timeutil.iso(int(item["minute"])),
        "completed": int(item.get("completed", 0)),
        "failed": int(item.get("failed", 0)),
        "duration_p50_ms": None if p50 is None else round(p50, 1),
        "duration_p95_ms": None if p95 is None else round(p95, 1),
    }
