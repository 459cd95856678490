"""The processors of the four queues, per (queue, job type).

Each module of MODULES declares what it runs as `PROCESSORS`; `table()` collects them on first
use (importing a module registers nothing), so the API Lambda, which imports this package without
running jobs, does not pay for the processors' imports. `cleanup/activity_logs` and
`cleanup/audit_digest` belong to the audit capability (module `audit`).
"""

from __future__ import annotations

import functools
import importlib

from chalicelib.jobs.processors.registry import JobContext, Processor

MODULES = ("articles", "analytics", "cleanup", "emails", "audit")


@functools.cache
def table() -> dict[tuple[str, str], Processor]:
    """(queue, job type) -> its processor. Tests may put a stand-in into it (monkeypatch.setitem)."""
    found: dict[tuple[str, str], Processor] = {}
    for name in MODULES:
        for proc in importlib.import_module(f"{__name__}.{name}").PROCESSORS:
            found[(proc.queue, proc.type)] = proc
    return found


def get(queue: str, job_type: str) -> Processor | None:
    return table().get((queue, job_type))


def registered() -> list[tuple[str, str]]:
    return sorted(table())


__all__ = ["JobContext", "Processor", "get", "registered", "table"]
