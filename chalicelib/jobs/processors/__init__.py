"""The processors of the four queues, registered per (queue, job type) on import.

`cleanup/activity_logs` and `cleanup/audit_digest` belong to the audit capability: it registers
them from a module of its own, added to `MODULES` below.
"""

from __future__ import annotations

import importlib

from chalicelib.jobs.processors.registry import JobContext, Processor, add_guard, get, processor, registered, run

MODULES = ("articles", "analytics", "cleanup", "emails", "audit")

for _name in MODULES:
    importlib.import_module(f"{__name__}.{_name}")

__all__ = ["JobContext", "Processor", "add_guard", "get", "processor", "registered", "run"]
