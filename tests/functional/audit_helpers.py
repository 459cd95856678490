"""Helpers for the audit tests: events written at chosen times."""

from __future__ import annotations

from chalicelib import audit, timeutil


def seed(n, start, step=1.0, user_id="u-1", action="article.status_changed"):
    """n events at start, start + step, ... each written at its own time."""

    def write(i):
        event = audit.record(action, details={"n": i}, user_id=user_id)
        audit.flush()
        return event

    return [with_clock(start + i * step, lambda i=i: write(i)) for i in range(n)]


def with_clock(at, fn):
    real = timeutil.now
    timeutil.now = lambda: at
    try:
        return fn()
    finally:
        timeutil.now = real
