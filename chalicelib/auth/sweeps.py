"""Auth's sweeps (cleanup queue): the expired sessions and refresh tokens, and the login attempts
past their window, that DynamoDB's TTL has not removed yet (`chalicelib.jobs.sweep`)."""

from __future__ import annotations

from typing import Any

from chalicelib.jobs.processor import Job, JobContext, Processor
from chalicelib.jobs.sweep import carry_on, sweep


def sessions(job: Job, ctx: JobContext) -> dict[str, Any]:
    """Expired sessions, then expired refresh tokens."""
    result = sweep("sessions", ctx)
    tokens = sweep("refresh_tokens", ctx)
    return carry_on(job, {**result, "refresh_tokens": tokens, "more": result["more"] or tokens["more"]})


def login_attempts(job: Job, ctx: JobContext) -> dict[str, Any]:
    return carry_on(job, sweep("login_attempts", ctx))


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (
    Processor("cleanup", "sessions", sessions),
    Processor("cleanup", "login_attempts", login_attempts),
)
