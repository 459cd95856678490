"""The processors of the four queues, registered per (queue, job type).

Their modules are loaded on the first lookup (`get`, `registered`), not when this package is
imported: the API Lambda imports it (through the schedules' guard, for one) without running jobs,
and should not pay for the processors' imports. `cleanup/activity_logs` and
`cleanup/audit_digest` belong to the audit capability, registered from its own module (`audit`).
"""

from __future__ import annotations

import functools
import importlib

from chalicelib.jobs.processors import registry
from chalicelib.jobs.processors.registry import JobContext, Processor, processor

MODULES = ("articles", "analytics", "cleanup", "emails", "audit")


@functools.cache
def load() -> None:
    for name in MODULES:
        importlib.import_module(f"{__name__}.{name}")


def get(queue: str, job_type: str) -> Processor | None:
    load()
    return registry.get(queue, job_type)


def registered() -> list[tuple[str, str]]:
    load()
    return registry.registered()


__all__ = ["JobContext", "Processor", "get", "load", "processor", "registered"]
