"""Schedules' REST routes: the list, and run-now (admin)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib import catalog
from chalicelib.apidoc import ADMIN, PAGE, Op

routes = Blueprint(__name__)

DOCS = {
    "GET /api/schedules": Op("The schedules, their next and last runs", ADMIN, "SchedulePage", query=PAGE),
    "POST /api/schedules/{name}/run": Op(
        "Run a schedule's job now",
        ADMIN,
        "JobStarted",
        202,
        errors={503: "the job could not be queued"},
        path={"name": {"enum": list(catalog.SCHEDULES)}},
    ),
}


@routes.route("/api/schedules")
def list_schedules() -> dict:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.schedules import service as schedules

    auth.require("admin")
    return schedules.listing(http.query(routes.current_request))


@routes.route("/api/schedules/{name}/run", methods=["POST"])
def run_schedule(name: str) -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.schedules import service as schedules

    user = auth.require("admin")
    return http.accepted(schedules.run_now(name, user))
