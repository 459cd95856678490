"""The authorization matrix: every endpoint x anonymous / viewer / editor / admin.

Who may call a route is read from its declaration (`chalicelib.apidoc.route`: `Op.who`); this
file only says how to call it. A caller who may not gets 401 (anonymous) or 403 (signed in
without the role); a caller who may gets neither, and never a 5xx. Paths and bodies may use the
placeholders of `tests.conftest.PLACEHOLDERS`; every resource in a path is `editor`'s (`{article_id}`
is an article written by `editor`), so a route whose service also admits the resource's owner
(`Who.owner`) admits `editor` and `admin`. Add a call for your route as one line.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import pytest

from chalicelib.apidoc import Who, openapi
from tests.conftest import ANONYMOUS, ROLE_PASSWORD, fill

ROLES = (ANONYMOUS, "viewer", "editor", "admin")
JOB = "0" * 32  # no such job: the routes that admit the job's owner answer 404 to anyone else


class Call(NamedTuple):
    method: str
    path: str
    body: Any = None

    def __str__(self) -> str:
        return f"{self.method} {self.path}"


CALLS = [
    Call("GET", "/api/health"),
    Call("POST", "/api/auth/login", {"email": "{viewer_email}", "password": ROLE_PASSWORD}),
    Call("POST", "/api/auth/logout"),
    Call("POST", "/api/auth/refresh"),  # the refresh token is the credential: 400 without one
    Call("POST", "/api/auth/password", {"current_password": "wrong", "new_password": "long enough"}),
    Call("GET", "/api/users"),
    Call("GET", "/api/users?role=viewer"),
    Call("PATCH", "/api/users/{user_id}", {"disabled": False}),
    Call("GET", "/api/auth/me"),
    Call("POST", "/api/users", {"email": "new@example.com", "password": "long enough", "role": "viewer"}),
    Call("POST", "/api/articles", {"title": "A title", "topic": "a topic"}),
    Call("GET", "/api/articles/{article_id}"),
    Call("GET", "/api/articles"),
    Call("GET", "/api/articles?status=DRAFT"),
    Call("POST", "/api/analytics/events", {"article_id": "{article_id}", "type": "view"}),
    Call("GET", "/api/settings"),
    Call("PUT", "/api/settings/site.name", {"value": "Inkwell"}),
    Call("GET", "/api/schedules"),
    Call("POST", "/api/schedules/daily-analytics/run"),
    Call("POST", "/api/schedules/no-such-schedule/run"),  # 404 for admins, refused before that
    Call("GET", "/api/schedules?limit=2"),
    Call("GET", "/api/audit"),
    Call("GET", "/api/audit/users/{editor_id}/summary"),
    Call("GET", "/api/audit/report"),
    Call("GET", "/api/audit/verify"),
    Call("GET", "/api/queues/stats"),
    Call("GET", "/api/queues/health"),
    Call("GET", "/api/queues/articles/metrics"),
    Call("POST", "/api/queues/articles/retry-failed"),
    Call("POST", "/api/queues/articles/pause"),
    Call("POST", "/api/queues/articles/resume"),
    Call("POST", "/api/queues/articles/clean", {"state": "completed", "older_than_seconds": 60}),
    Call("PUT", "/api/queues/articles/limits", {"rate_limit": {"max": 5, "duration_seconds": 1}}),
    Call("GET", "/api/queues/articles/jobs?state=failed"),
    Call("DELETE", f"/api/jobs/{JOB}"),
    Call("POST", "/api/articles/{article_id}/generate"),
    Call("POST", "/api/articles/{article_id}/generate", {"priority": "high", "delay_seconds": 60}),
    Call("POST", "/api/articles/{article_id}/publish"),
    Call("POST", "/api/articles/{article_id}/archive"),
    Call("GET", f"/api/jobs/{JOB}"),
    Call("POST", f"/api/jobs/{JOB}/retry"),
    Call("POST", f"/api/jobs/{JOB}/promote"),
    Call("POST", f"/api/jobs/{JOB}/cancel"),
    Call("GET", "/api/analytics/reports/daily?date=2026-11-27"),
    Call("GET", "/api/analytics/reports/weekly?week=2026-W48"),
    Call("GET", "/dashboard"),  # the page asks for a login itself
    Call("GET", "/static/dashboard.js"),
    Call("POST", "/api/realtime/ticket"),
    Call("GET", "/static/realtime.js"),
    Call("GET", "/api/openapi.json"),
    Call("GET", "/api/asyncapi.json"),
    Call("GET", "/docs"),
]


def allowed(who: Who) -> set[str]:
    """The roles a declaration admits to a resource of `editor`'s."""
    if who.roles is None:
        return set(ROLES)
    if who.owner:
        return {"editor", "admin"}
    return set(who.roles) or set(ROLES) - {ANONYMOUS}


def declaration(app: Any, call: Call) -> Who:
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


@pytest.mark.parametrize("call", CALLS, ids=str)
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
    called = {(c.method, c.path.split("?")[0]) for c in CALLS}
    missing = {(m, p) for m, p in routes if not any(m == cm and _matches(p, cp) for cm, cp in called)}
    assert not missing, f"add a call to CALLS for {sorted(missing)}"


def test_the_roles_a_declaration_admits():
    from chalicelib.apidoc import ADMIN, ANYONE, EDITORS, USERS, owner

    assert allowed(ANYONE) == set(ROLES) and allowed(USERS) == {"viewer", "editor", "admin"}
    assert allowed(EDITORS) == {"editor", "admin"} == allowed(owner("that user")) and allowed(ADMIN) == {"admin"}


def _matches(template: str, path: str) -> bool:
    """A route `/api/x/{id}` matches a path `/api/x/<anything>`."""
    parts, wanted = template.split("/"), path.split("/")
    return len(parts) == len(wanted) and all(t == p or t.startswith("{") for t, p in zip(parts, wanted, strict=True))
