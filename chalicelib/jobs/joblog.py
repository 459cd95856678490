"""Per-job logs: the lines a processor writes through its context (`ctx.log(level, message)`),
kept per attempt on the job's own record, so they go when the job goes (its TTL, trim, removal).

A running attempt's lines are buffered in the invocation (`AttemptLog`): at most MAX_LINES lines
and MAX_BYTES bytes of messages an attempt (what is over is counted in one last line), each
message masked as the logs and the audit trail mask secrets (`redact.scrub`). They are written
once, before the attempt's outcome is recorded, as the record's attribute `log_<run>_<attempt>`
with the attempt's start, end, outcome and error (the job page's timeline; the logs of runs
older than KEEP_RUNS are removed by the same write), together with the word
items of the attempt's error for search (indexes.py): one request an attempt, none for an attempt
that logged nothing and did not fail. A write that fails is logged and never fails the job.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from typing import Any

from chalicelib import redact, timeutil
from chalicelib.jobs import indexes
from chalicelib.util import from_dynamo

log = logging.getLogger("inkwell.jobs")

LEVELS = ("debug", "info", "warning", "error")
MAX_LINES = 100
MAX_BYTES = 8 * 1024
MAX_MESSAGE = 1024
KEEP_RUNS = 3  # the logs of this many latest runs (an admin's retry is a new run) stay
PREFIX = "log_"
_ATTRIBUTE = re.compile(r"^log_(\d+)_(\d+)$")


@dataclass
class AttemptLog:
    """One attempt's lines, bounded."""

    lines: list[dict[str, str]] = field(default_factory=list)
    size: int = 0
    dropped: int = 0
    started: str = field(default_factory=timeutil.iso_ms)  # when the attempt started (its context)

    def add(self, level: str, message: str) -> None:
        if level not in LEVELS:
            raise ValueError(f"a log level is one of {', '.join(LEVELS)}")
        text = redact.scrub(str(message))[:MAX_MESSAGE]
        if len(self.lines) >= MAX_LINES - 1 or self.size + len(text.encode()) > MAX_BYTES - 64:
            self.dropped += 1
            return
        self.lines.append({"ts": timeutil.iso_ms(), "level": level, "message": text})
        self.size += len(text.encode())

    def written(self) -> list[dict[str, str]]:
        """The lines to store: what fitted, then how many did not."""
        if not self.dropped:
            return list(self.lines)
        note = f"{self.dropped} more lines not kept (at most {MAX_LINES} lines, {MAX_BYTES} bytes an attempt)"
        return [*self.lines, {"ts": timeutil.iso_ms(), "level": "warning", "message": note}]


def attribute(run: int, attempt: int) -> str:
    return f"{PREFIX}{run}_{attempt}"


def write(
    table: Any,
    job: dict[str, Any],
    attempt_log: AttemptLog | None,
    error: dict[str, Any] | None,
    outcome: str = "completed",
) -> None:
    """Store an attempt on its job (its start, end, outcome, error and lines: the job page's
    timeline) with its error's words, in one request; none for an attempt that logged nothing and
    did not fail (the record's own `started_at`/`finished_at` tell of it)."""
    lines = attempt_log.written() if attempt_log else []
    words = indexes.word_items(job["id"], error, timeutil.now()) if error else []
    if not lines and not words:
        return
    run, attempt = int(job.get("run", 1)), int(job.get("attempts", 1))
    entry = {
        "started": attempt_log.started if attempt_log else None,
        "ended": timeutil.iso_ms(),
        "outcome": outcome,
        "error": error,
        "lines": lines,
    }
    names = {"#l": attribute(run, attempt)}
    stale = (
        [attribute(run - KEEP_RUNS, a) for a in range(1, int(job.get("max_attempts", 1)) + 1)]
        if run > KEEP_RUNS
        else []
    )
    names.update({f"#o{i}": name for i, name in enumerate(stale)})
    update = "SET #l = :l" + (" REMOVE " + ", ".join(f"#o{i}" for i in range(len(stale))) if stale else "")
    change = {
        "Key": {"id": job["id"]},
        "UpdateExpression": update,
        "ConditionExpression": "attribute_exists(id)",
        "ExpressionAttributeNames": names,
        "ExpressionAttributeValues": {":l": entry},
    }
    try:
        if not words:
            table.update_item(**change)
            return
        items = [{"Update": {"TableName": table.name, **change}}]
        items += [{"Put": {"TableName": table.name, "Item": w}} for w in words]
        # the Table's client takes plain values (boto3's resource layer serializes them)
        table.meta.client.transact_write_items(TransactItems=items)
    except Exception:
        log.exception("could not store the log of job %s (attempt %d)", job["id"], attempt)


def attempts_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """The stored attempts of a job record, oldest first: `{"run", "attempt", "started_at",
    "ended_at", "outcome", "error", "lines"}`."""
    found = []
    for name, value in record.items():
        match = _ATTRIBUTE.match(name)
        if match:
            entry = from_dynamo(value) or {}
            found.append(
                {
                    "run": int(match.group(1)),
                    "attempt": int(match.group(2)),
                    "started_at": entry.get("started"),
                    "ended_at": entry.get("ended"),
                    "outcome": entry.get("outcome"),
                    "error": entry.get("error"),
                    "lines": entry.get("lines") or [],
                }
            )
    return sorted(found, key=lambda a: (a["run"], a["attempt"]))


def lines_of(record: dict[str, Any]) -> list[dict[str, Any]]:
    """Every stored line of a job record, oldest attempt first:
    `{"ts", "run", "attempt", "level", "message"}`."""
    return [
        {"ts": line.get("ts"), "run": a["run"], "attempt": a["attempt"], **_shown(line)}
        for a in attempts_of(record)
        for line in a["lines"]
    ]


def _shown(line: dict[str, Any]) -> dict[str, Any]:
    return {"level": line.get("level", "info"), "message": line.get("message", "")}
