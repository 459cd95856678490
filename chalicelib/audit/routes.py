"""The audit trail's REST routes: events, a user's summary, the report, verification."""

from __future__ import annotations

from chalice import Blueprint

routes = Blueprint(__name__)


@routes.route("/api/audit")
def audit_events() -> dict:
    from chalicelib import http
    from chalicelib.audit import api
    from chalicelib.auth import service as auth

    auth.require("admin")
    return api.list_events(http.query(routes.current_request))


@routes.route("/api/audit/users/{user_id}/summary")
def audit_user_summary(user_id: str) -> dict:
    from chalicelib import http
    from chalicelib.audit import api
    from chalicelib.auth import service as auth

    return api.user_summary(auth.require(), user_id, http.query(routes.current_request))


@routes.route("/api/audit/report")
def audit_report() -> dict:
    from chalicelib import http
    from chalicelib.audit import api
    from chalicelib.auth import service as auth

    auth.require("admin")
    return api.report(http.query(routes.current_request))


@routes.route("/api/audit/verify")
def audit_verify() -> dict:
    from chalicelib import http
    from chalicelib.audit import api
    from chalicelib.auth import service as auth

    auth.require("admin")
    return api.verify(http.query(routes.current_request))
