"""Metrics as CloudWatch embedded metric format (EMF) documents on stdout: CloudWatch Logs turns
each into metrics, so no AWS API call is made on the hot path.

Values are gathered per invocation (`count`, `timing`, in `BUFFER`) and written by `flush`, which
runs at the end of every invocation (`end_flush`, the buffer's, run by app.py's middleware after
the other buffers' flushes, which count metrics) and by itself once a metric holds 100 values,
EMF's limit per document: one JSON line per set of dimensions, namespace `Inkwell`.
The names, units and dimensions are the table `METRICS` (and docs/operations.md's).
"""

from __future__ import annotations

import json
import sys
import threading
import time
from typing import Any

from chalicelib import events, runtime, timeutil

NAMESPACE = "Inkwell"
COUNT = "Count"
MS = "Milliseconds"
METRICS: dict[str, tuple[str, tuple[str, ...]]] = {  # name -> (unit, dimensions)
    "JobStarted": (COUNT, ("Queue",)),
    "JobCompleted": (COUNT, ("Queue",)),
    "JobFailed": (COUNT, ("Queue",)),
    "JobRetried": (COUNT, ("Queue",)),
    "JobRateLimited": (COUNT, ("Queue",)),  # a job put back for a rate limit (flow control)
    "JobDuration": (MS, ("Queue",)),  # start of the attempt to its completion or failure
    "JobQueueWait": (MS, ("Queue",)),  # enqueue to the first attempt's start
    "GeneratorCalls": (COUNT, ("Status",)),  # Status: 2xx | 4xx | 429 | 5xx | timeout | error
    "GeneratorLatency": (MS, ("Status",)),
    "WebSocketPosts": (COUNT, ()),
    "WebSocketGone": (COUNT, ()),
    "AuditWrites": (COUNT, ()),  # audit events written to the table
    "AuditFallbacks": (COUNT, ()),  # audit events handed to the audit queue instead
    "AuditFallbackRefused": (COUNT, ()),  # queued audit events refused: unsigned or from the future
    "ApiRequests": (COUNT, ("Route", "Status")),
    "ApiLatency": (MS, ("Route", "Status")),
}
MAX_VALUES = 100  # EMF: at most 100 values of a metric in one document

Values = dict[Any, dict[str, list[float]]]  # sorted dimension pairs -> metric name -> values
_lock = threading.Lock()


def count(name: str, value: float = 1, **dimensions: str) -> None:
    """Add `value` to Count metric `name` (dimensions as METRICS declares, e.g. Queue="articles")."""
    _put(name, value, dimensions)


def timing(name: str, milliseconds: float, **dimensions: str) -> None:
    """Record one Milliseconds value of metric `name`."""
    _put(name, round(float(milliseconds), 3), dimensions)


def _put(name: str, value: float, dimensions: dict[str, str]) -> None:
    _unit, expected = METRICS[name]
    if tuple(sorted(dimensions)) != tuple(sorted(expected)):
        raise ValueError(f"metric {name} takes dimensions {expected}, not {tuple(dimensions)}")
    key = tuple(sorted((k, str(v)) for k, v in dimensions.items()))
    with _lock:
        values = BUFFER.get().setdefault(key, {}).setdefault(name, [])
        values.append(value)
        full = len(values) >= MAX_VALUES
    if full:
        flush()


def flush() -> list[dict[str, Any]]:
    """Write the invocation's metrics as EMF documents (one line each) and forget them."""
    with _lock:
        buffer = BUFFER.take()
    documents = [document(dict(key), values) for key, values in (buffer or {}).items()]
    if documents:
        sys.stdout.write("".join(json.dumps(d, separators=(",", ":")) + "\n" for d in documents))
        sys.stdout.flush()
    return documents


def end_flush() -> None:
    """`BUFFER`'s end flush: a REST invocation's own metrics (`on_request_end`), then `flush`."""
    on_request_end()
    flush()


BUFFER: runtime.Buffer[Values] = runtime.Buffer("metrics", dict, end_flush)


def document(dimensions: dict[str, str], values: dict[str, list[float]], ts: float | None = None) -> dict[str, Any]:
    """One EMF document: these dimensions, each metric's values (Counts summed)."""
    doc: dict[str, Any] = {
        "_aws": {
            "Timestamp": int((ts if ts is not None else time.time()) * 1000),
            "CloudWatchMetrics": [
                {
                    "Namespace": NAMESPACE,
                    "Dimensions": [sorted(dimensions)],
                    "Metrics": [{"Name": name, "Unit": METRICS[name][0]} for name in sorted(values)],
                }
            ],
        },
        **dimensions,
    }
    for name, vals in values.items():
        if METRICS[name][0] == COUNT:
            doc[name] = sum(vals)
        else:
            doc[name] = vals[0] if len(vals) == 1 else vals
    return doc


def on_request_end() -> None:
    """ApiRequests and ApiLatency of a REST invocation, by route and status (at its end)."""
    inv = runtime.current()
    if inv.kind != "rest":
        return
    route = f"{inv.method or '?'} {inv.route or 'unrouted'}"
    status = str(inv.status or 500)
    count("ApiRequests", Route=route, Status=status)
    timing("ApiLatency", (time.perf_counter() - inv.started) * 1000, Route=route, Status=status)


def on_job_event(event: events.JobEvent) -> None:
    """Job metrics from the monitor's announcements (a JobEvent listener)."""
    job = event.job
    queue = str(job.get("queue"))
    if event.kind == "active":
        count("JobStarted", Queue=queue)
        if job.get("attempts") == 1 and job.get("created_at") and job.get("started_at"):
            wait = _ms_between(job["created_at"], job["started_at"])
            if wait is not None:
                timing("JobQueueWait", wait, Queue=queue)
    elif event.kind in ("completed", "failed"):
        count("JobCompleted" if event.kind == "completed" else "JobFailed", Queue=queue)
        if job.get("started_at") and job.get("finished_at"):
            duration = _ms_between(job["started_at"], job["finished_at"])
            if duration is not None:
                timing("JobDuration", duration, Queue=queue)
    elif event.kind == "retrying":
        count("JobRetried", Queue=queue)


def _ms_between(start: str, end: str) -> float | None:
    try:
        return max(0.0, (timeutil.parse_iso(end) - timeutil.parse_iso(start)) * 1000)
    except (TypeError, ValueError):
        return None


def status_class(status: int | None) -> str:
    """The generator's Status dimension: 2xx, 4xx, 429, 5xx (None: no answer, `error`)."""
    if status is None:
        return "error"
    if status == 429:
        return "429"
    return f"{status // 100}xx"
