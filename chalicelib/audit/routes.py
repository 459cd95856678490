"""The audit trail's REST routes: events, a user's summary, the report, verification."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.apidoc import ADMIN, PAGE, UNTIL, Op, Param, since

routes = Blueprint(__name__)

RANGE = (since("24 hours ago"), UNTIL)
DOCS = {
    "GET /api/audit": Op(
        "Audit events, newest first",
        ADMIN,
        "AuditPage",
        query=(
            *PAGE,
            *RANGE,
            *(
                Param(name, {"type": "string"}, f"only events of this {name.replace('_', ' ')}")
                for name in ("user_id", "action", "category", "resource_type", "resource_id")
            ),
        ),
    ),
    "GET /api/audit/users/{user_id}/summary": Op(
        "A user's activity summary",
        "admin, or that user",
        "AuditSummary",
        query=(Param("days", {"type": "integer", "minimum": 1, "default": 7}, "how many days back"),),
    ),
    "GET /api/audit/report": Op("The system activity report", ADMIN, "AuditReport", query=RANGE),
    "GET /api/audit/verify": Op("Verify the audit trail's integrity", ADMIN, "AuditVerification", query=RANGE),
}


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
