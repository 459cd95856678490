"""Helpers for the audit tests: events written at chosen times."""

from __future__ import annotations

from chalicelib import audit, timeutil
from tests.conftest import body


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


def all_events(api, **params):
    """Every event matching params, following cursors (as admin)."""
    items, cursor = [], None
    query = dict(params, limit="200")
    for _ in range(50):
        if cursor:
            query["cursor"] = cursor
        response = api.get("/api/audit?" + "&".join(f"{k}={v}" for k, v in query.items()), as_="admin")
        assert response.status_code == 200, response.body
        page = body(response)
        items += page["items"]
        cursor = page["next_cursor"]
        if not cursor:
            return items
    raise AssertionError("pagination did not end")
