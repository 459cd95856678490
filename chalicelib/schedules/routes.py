"""Schedules' REST routes: the list, run-time changes and run-now (admin)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import catalog
from chalicelib.auth.access import route
from chalicelib.routing import ADMIN, PAGE, Op

routes = Blueprint(__name__)


@route(routes, "GET /api/schedules", Op("The schedules, their next and last runs", ADMIN, "SchedulePage", query=PAGE))
def list_schedules(user: dict) -> dict:
    from chalicelib import http
    from chalicelib.schedules import service as schedules

    return schedules.listing(http.query(routes.current_request))


@route(
    routes,
    "PUT /api/schedules/{name}",
    Op(
        "Change a schedule's expression, time zone or state (in effect at once)",
        ADMIN,
        "Schedule",
        body="chalicelib.schedules.change:ScheduleChange",
        errors={503: "EventBridge Scheduler could not be reached"},
        path={"name": {"enum": list(catalog.SCHEDULES)}},
    ),
)
def update_schedule(user: dict, name: str) -> dict:
    from chalicelib import http
    from chalicelib.schedules import change
    from chalicelib.schedules import service as schedules

    body = http.parse(change.ScheduleChange, routes.current_request)
    return schedules.update(name, body.model_dump(exclude_none=True), user)


@route(
    routes,
    "POST /api/schedules/{name}/run",
    Op(
        "Run a schedule's job now",
        ADMIN,
        "JobStarted",
        202,
        errors={503: "the job could not be queued"},
        path={"name": {"enum": list(catalog.SCHEDULES)}},
    ),
)
def run_schedule(user: dict, name: str) -> object:
    from chalicelib import http
    from chalicelib.schedules import service as schedules

    return http.accepted(schedules.run_now(name, user))
