"""The authorization matrix: every endpoint x anonymous / viewer / editor / admin.

One row per endpoint: who may call it. A caller who may not gets 401 (anonymous) or 403 (signed
in without the role); a caller who may gets neither, and never a 5xx. Paths and bodies may use the
placeholders of `tests.conftest.PLACEHOLDERS` (`{article_id}` is an article written by `editor`).
Add your endpoint as one line.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from tests.conftest import ANONYMOUS, ROLE_PASSWORD, fill

ROLES = (ANONYMOUS, "viewer", "editor", "admin")
ANYONE = frozenset(ROLES)
USERS = frozenset({"viewer", "editor", "admin"})
EDITORS = frozenset({"editor", "admin"})
ADMIN = frozenset({"admin"})


class Endpoint(NamedTuple):
    method: str
    path: str
    allowed: frozenset[str]
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    Endpoint("GET", "/api/health", ANYONE),
    Endpoint("POST", "/api/auth/login", ANYONE, {"email": "{viewer_email}", "password": ROLE_PASSWORD}),
    Endpoint("POST", "/api/auth/logout", USERS),
    Endpoint("POST", "/api/auth/refresh", ANYONE),  # the refresh token is the credential: 400 without one
    Endpoint("POST", "/api/auth/password", USERS, {"current_password": "wrong", "new_password": "long enough"}),
    Endpoint("GET", "/api/users", ADMIN),
    Endpoint("GET", "/api/users?role=viewer", ADMIN),
    Endpoint("PATCH", "/api/users/{user_id}", ADMIN, {"disabled": False}),
    Endpoint("GET", "/api/auth/me", USERS),
    Endpoint("POST", "/api/users", ADMIN, {"email": "new@example.com", "password": "long enough", "role": "viewer"}),
    Endpoint("POST", "/api/articles", EDITORS, {"title": "A title", "topic": "a topic"}),
    Endpoint("GET", "/api/articles/{article_id}", USERS),
    Endpoint("GET", "/api/articles", USERS),
    Endpoint("GET", "/api/articles?status=DRAFT", USERS),
    Endpoint("POST", "/api/analytics/events", USERS, {"article_id": "{article_id}", "type": "view"}),
    Endpoint("GET", "/api/settings", ADMIN),
    Endpoint("PUT", "/api/settings/site.name", ADMIN, {"value": "Inkwell"}),
    Endpoint("GET", "/api/schedules", ADMIN),
    Endpoint("POST", "/api/schedules/daily-analytics/run", ADMIN),
    Endpoint("POST", "/api/schedules/no-such-schedule/run", ADMIN),  # 404 for admins, refused before that
    Endpoint("GET", "/api/schedules?limit=2", ADMIN),
    Endpoint("GET", "/api/audit", ADMIN),
    Endpoint("GET", "/api/audit/users/{editor_id}/summary", EDITORS),  # admin, or that user
    Endpoint("GET", "/api/audit/report", ADMIN),
    Endpoint("GET", "/api/audit/verify", ADMIN),
    Endpoint("GET", "/api/queues/stats", ADMIN),
    Endpoint("GET", "/api/queues/health", ADMIN),
    Endpoint("GET", "/api/queues/articles/metrics", ADMIN),
    Endpoint("POST", "/api/queues/articles/retry-failed", ADMIN),
    Endpoint("POST", "/api/queues/articles/pause", ADMIN),
    Endpoint("POST", "/api/queues/articles/resume", ADMIN),
    Endpoint("POST", "/api/queues/articles/clean", ADMIN, {"state": "completed", "older_than_seconds": 60}),
    Endpoint("PUT", "/api/queues/articles/limits", ADMIN, {"rate_limit": {"max": 5, "duration_seconds": 1}}),
    Endpoint("DELETE", "/api/jobs/" + "0" * 32, ADMIN),
    Endpoint("POST", "/api/articles/{article_id}/generate", EDITORS),  # the author (editor) or an admin
    Endpoint("POST", "/api/articles/{article_id}/publish", EDITORS),
    Endpoint("POST", "/api/articles/{article_id}/archive", EDITORS),
    Endpoint("GET", "/api/jobs/" + "0" * 32, USERS),  # admin, or who caused it (others: 404)
    Endpoint("POST", "/api/jobs/" + "0" * 32 + "/retry", ADMIN),
    Endpoint("POST", "/api/jobs/" + "0" * 32 + "/promote", ADMIN),
    Endpoint("POST", "/api/jobs/" + "0" * 32 + "/cancel", USERS),  # admin, or who caused it (others: 404)
    Endpoint("POST", "/api/articles/{article_id}/generate", EDITORS, {"priority": "high", "delay_seconds": 60}),
    Endpoint("GET", "/api/queues/articles/jobs?state=failed", ADMIN),
    Endpoint("GET", "/api/analytics/reports/daily?date=2026-11-27", ADMIN),
    Endpoint("GET", "/api/analytics/reports/weekly?week=2026-W48", ADMIN),
    Endpoint("GET", "/dashboard", ANYONE),  # the page asks for a login itself
    Endpoint("GET", "/static/dashboard.js", ANYONE),
    Endpoint("POST", "/api/realtime/ticket", USERS),
    Endpoint("GET", "/static/realtime.js", ANYONE),
    Endpoint("GET", "/api/openapi.json", ANYONE),
    Endpoint("GET", "/api/asyncapi.json", ANYONE),
    Endpoint("GET", "/docs", ANYONE),
]


def fill_body(api: Any, value: Any) -> Any:
    """A body with the placeholders in its strings filled (see `tests.conftest.fill`)."""
    if isinstance(value, str):
        return fill(api, value)
    if isinstance(value, dict):
        return {k: fill_body(api, v) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_body(api, v) for v in value]
    return value


def expected(endpoint: Endpoint, role: str) -> str:
    if role in endpoint.allowed:
        return "allowed"
    return "401" if role == ANONYMOUS else "403"


def outcome(status: int) -> str:
    # 503 is a designed answer (an unhealthy queue, no event source mapping): it passed the guard.
    return {401: "401", 403: "403"}.get(status, "allowed" if status < 500 or status == 503 else f"{status}!")


@pytest.mark.parametrize("endpoint", ENDPOINTS, ids=str)
def test_each_role_is_allowed_or_refused_as_the_row_says(api, endpoint):
    path, body = fill(api, endpoint.path), fill_body(api, endpoint.body)
    got, want = {}, {}
    for role in ROLES:
        response = api.request(endpoint.method, path, body, as_=role)
        got[role], want[role] = outcome(response.status_code), expected(endpoint, role)
    assert got == want


def test_every_route_of_the_app_has_a_row(app):
    """A new route without a row here fails, so the matrix stays complete."""
    rows = {(e.method, e.path.split("?")[0]) for e in ENDPOINTS}
    routes = {(method, path) for path, entries in app.routes.items() for method in entries}
    missing = {route for route in routes if not _covered(route, rows)}
    assert not missing, f"add a row to ENDPOINTS for {sorted(missing)}"


def _covered(route: tuple[str, str], rows: set[tuple[str, str]]) -> bool:
    """A route `/api/x/{id}` is covered by a row `/api/x/<anything>` of the same method."""
    method, path = route
    parts = path.split("/")
    for row_method, row_path in rows:
        row_parts = row_path.split("/")
        if (
            row_method == method
            and len(row_parts) == len(parts)
            and all(p == r or p.startswith("{") for p, r in zip(parts, row_parts, strict=True))
        ):
            return True
    return False
