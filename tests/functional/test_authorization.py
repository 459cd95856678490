"""The authorization matrix: every endpoint x anonymous / viewer / editor / admin.

Who may call a route is read from its declaration (`chalicelib.routing.route`: `Op.who`); this
file only says how to call it. A caller who may not gets 401 (anonymous) or 403 (signed in
without the role); a caller who may gets neither, and never a 5xx. Paths and bodies may use the
placeholders of `tests.conftest.PLACEHOLDERS`; every resource in a path is `editor`'s (`{article_id}`
is an article written by `editor`), so a route whose service also admits the resource's owner
(`Who.owner`) admits `editor` and `admin`. Add a line for your route.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from chalicelib.apidoc import openapi
from chalicelib.routing import Who
from tests.conftest import ANONYMOUS, ROLE_PASSWORD, fill

ROLES = (ANONYMOUS, "viewer", "editor", "admin")
JOB = "0" * 32  # no such job: the routes that admit the job's owner answer 404 to anyone else


class Endpoint(NamedTuple):
    method: str
    path: str
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS = [
    Endpoint("GET", "/api/health"),
    Endpoint("POST", "/api/auth/login", {"email": "{viewer_email}", "password": ROLE_PASSWORD}),
    Endpoint("POST", "/api/auth/logout"),
    Endpoint("POST", "/api/auth/refresh"),  # the refresh token is the credential: 400 without one
    Endpoint("POST", "/api/auth/password", {"current_password": "wrong", "new_password": "long enough, really"}),
    Endpoint("GET", "/api/users"),
    Endpoint("GET", "/api/users?role=viewer"),
    Endpoint("PATCH", "/api/users/{user_id}", {"disabled": False}),
    Endpoint("GET", "/api/auth/me"),
    Endpoint("POST", "/api/users", {"email": "new@example.com", "password": "long enough, really", "role": "viewer"}),
    Endpoint("POST", "/api/articles", {"title": "A title", "topic": "a topic"}),
    Endpoint("GET", "/api/articles/{article_id}"),
    Endpoint("GET", "/api/articles"),
    Endpoint("GET", "/api/articles?status=DRAFT"),
    Endpoint("POST", "/api/analytics/events", {"article_id": "{article_id}", "type": "view"}),
    Endpoint("GET", "/api/settings"),
    Endpoint("PUT", "/api/settings/site.name", {"value": "Inkwell"}),
    Endpoint("GET", "/api/schedules"),
    Endpoint("POST", "/api/schedules/daily-analytics/run"),
    Endpoint("POST", "/api/schedules/no-such-schedule/run"),  # 404 for admins, refused before that
    Endpoint("PUT", "/api/schedules/session-cleanup", {"enabled": True}),
    Endpoint("GET", "/api/schedules?limit=2"),
    Endpoint("GET", "/api/audit"),
    Endpoint("GET", "/api/audit/users/{editor_id}/summary"),
    Endpoint("GET", "/api/audit/report"),
    Endpoint("GET", "/api/audit/verify"),
    Endpoint("GET", "/api/audit/public-key"),
    Endpoint("POST", "/api/audit/exports", {"since": "2026-11-27T00:00:00Z", "until": "2026-11-28T00:00:00Z"}),
    Endpoint("GET", f"/api/audit/exports/{JOB}"),
    Endpoint("GET", "/api/queues/stats"),
    Endpoint("GET", "/api/queues/health"),
    Endpoint("GET", "/api/queues/articles/metrics"),
    Endpoint("POST", "/api/queues/articles/retry-failed"),
    Endpoint("POST", "/api/queues/articles/pause"),
    Endpoint("POST", "/api/queues/articles/resume"),
    Endpoint("POST", "/api/queues/articles/clean", {"state": "completed", "older_than_seconds": 60}),
    Endpoint("PUT", "/api/queues/articles/limits", {"rate_limit": {"max": 5, "duration_seconds": 1}}),
    Endpoint("GET", "/api/queues/articles/jobs?state=failed"),
    Endpoint("DELETE", f"/api/jobs/{JOB}"),
    Endpoint("POST", "/api/articles/{article_id}/generate"),
    Endpoint("POST", "/api/articles/{article_id}/generate", {"priority": "high", "delay_seconds": 60}),
    Endpoint("POST", "/api/articles/{article_id}/publish"),
    Endpoint("POST", "/api/articles/{article_id}/archive"),
    Endpoint("GET", f"/api/jobs/{JOB}"),
    Endpoint("POST", f"/api/jobs/{JOB}/retry"),
    Endpoint("POST", f"/api/jobs/{JOB}/promote"),
    Endpoint("POST", f"/api/jobs/{JOB}/cancel"),
    Endpoint("GET", "/api/jobs?state=failed&q=timeout"),
    Endpoint("GET", f"/api/jobs/{JOB}/logs"),
    Endpoint("POST", f"/api/jobs/{JOB}/duplicate"),
    Endpoint("POST", "/api/queues/emails/bulk", {"action": "retry"}),
    Endpoint("GET", "/api/analytics/reports/daily?date=2026-11-27"),
    Endpoint("GET", "/api/analytics/reports/weekly?week=2026-W48"),
    Endpoint("GET", "/dashboard"),  # the page asks for a login itself
    Endpoint("GET", "/static/dashboard.js"),
    Endpoint("POST", "/api/realtime/ticket"),
    Endpoint("GET", "/static/realtime.js"),
    Endpoint("GET", "/api/openapi.json"),
    Endpoint("GET", "/api/asyncapi.json"),
    Endpoint("GET", "/docs"),
]


def allowed(who: Who) -> set[str]:
    """The roles a declaration admits to a resource of `editor`'s."""
    if who.roles is None:
        return set(ROLES)
    if who.owner:
        return {"editor", "admin"}
    return set(who.roles) or set(ROLES) - {ANONYMOUS}


def declaration(app: Any, call: Endpoint) -> Who:
    """The `who` of the route `call` reaches (a literal path before a template)."""
    for path, entries in sorted(app.routes.items(), key=lambda item: item[0].count("{")):
        if call.method in entries and _matches(path, call.path.split("?")[0]):
            op = openapi.declared(entries[call.method])
            assert op is not None, f"{call.method} {path} is not declared"
            return op.who
    raise LookupError(f"no route for {call}")


def fill_body(api: Any, value: Any) -> Any:
    """A body with the placeholders in its strings filled (see `tests.conftest.fill`)."""
    if isinstance(value, str):
        return fill(api, value)
    if isinstance(value, dict):
        return {k: fill_body(api, v) for k, v in value.items()}
    if isinstance(value, list):
        return [fill_body(api, v) for v in value]
    return value


def expected(who: Who, role: str) -> str:
    if role in allowed(who):
        return "allowed"
    return "401" if role == ANONYMOUS else "403"


def outcome(status: int) -> str:
    # 503 is a designed answer (an unhealthy queue, no event source mapping): it passed the guard.
    return {401: "401", 403: "403"}.get(status, "allowed" if status < 500 or status == 503 else f"{status}!")


@pytest.mark.parametrize("call", ENDPOINTS, ids=str)
def test_each_role_is_allowed_or_refused_as_the_declaration_says(app, api, call):
    who = declaration(app, call)
    path, body = fill(api, call.path), fill_body(api, call.body)
    got, want = {}, {}
    for role in ROLES:
        response = api.request(call.method, path, body, as_=role)
        got[role], want[role] = outcome(response.status_code), expected(who, role)
    assert got == want


def test_every_route_of_the_app_is_called(app):
    """A new route without a call here fails, so the matrix stays complete."""
    routes = {(method, path) for path, entries in app.routes.items() for method in entries}
    called = {(c.method, c.path.split("?")[0]) for c in ENDPOINTS}
    missing = {(m, p) for m, p in routes if not any(m == cm and _matches(p, cp) for cm, cp in called)}
    assert not missing, f"add a line to ENDPOINTS for {sorted(missing)}"


def test_the_roles_a_declaration_admits():
    from chalicelib.routing import ADMIN, ANYONE, EDITORS, USERS, owner

    assert allowed(ANYONE) == set(ROLES) and allowed(USERS) == {"viewer", "editor", "admin"}
    assert allowed(EDITORS) == {"editor", "admin"} == allowed(owner("that user")) and allowed(ADMIN) == {"admin"}


def _matches(template: str, path: str) -> bool:
    """A route `/api/x/{id}` matches a path `/api/x/<anything>`."""
    parts, wanted = template.split("/"), path.split("/")
    return len(parts) == len(wanted) and all(t == p or t.startswith("{") for t, p in zip(parts, wanted, strict=True))
