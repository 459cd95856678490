"""The audit trail's REST routes: events, a user's summary, the report, verification, the
digest key's public half, exports."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.auth.access import route
from chalicelib.routing import ADMIN, PAGE, UNTIL, Op, Param, owner, since

routes = Blueprint(__name__)

RANGE = (since("24 hours ago"), UNTIL)


@route(
    routes,
    "GET /api/audit",
    Op(
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
)
def audit_events(user: dict) -> dict:
    from chalicelib import http
    from chalicelib.audit import api

    return api.list_events(http.query(routes.current_request))


@route(
    routes,
    "GET /api/audit/users/{user_id}/summary",
    Op(
        "A user's activity summary",
        owner("that user"),
        "AuditSummary",
        query=(Param("days", {"type": "integer", "minimum": 1, "default": 7}, "how many days back"),),
    ),
)
def audit_user_summary(user: dict, user_id: str) -> dict:
    from chalicelib import http
    from chalicelib.audit import api

    return api.user_summary(user, user_id, http.query(routes.current_request))


@route(routes, "GET /api/audit/report", Op("The system activity report", ADMIN, "AuditReport", query=RANGE))
def audit_report(user: dict) -> dict:
    from chalicelib import http
    from chalicelib.audit import api

    return api.report(http.query(routes.current_request))


@route(
    routes, "GET /api/audit/verify", Op("Verify the audit trail's integrity", ADMIN, "AuditVerification", query=RANGE)
)
def audit_verify(user: dict) -> dict:
    from chalicelib import http
    from chalicelib.audit import api

    return api.verify(http.query(routes.current_request))


@route(
    routes,
    "GET /api/audit/public-key",
    Op("The public half of the key that signs the audit digests", ADMIN, "AuditPublicKey"),
)
def audit_public_key(user: dict) -> dict:
    from chalicelib.audit import signing

    return signing.public_key()


@route(
    routes,
    "POST /api/audit/exports",
    Op(
        "Export a range of the audit trail, signed, for offline verification",
        ADMIN,
        "AuditExportStarted",
        202,
        body="chalicelib.audit.api:ExportRange",
        errors={503: "the export job could not be queued"},
    ),
)
def audit_export(user: dict) -> object:
    from chalicelib import http
    from chalicelib.audit import api

    body = http.parse(api.ExportRange, routes.current_request)
    return http.accepted(api.start_export(user, body))


@route(routes, "GET /api/audit/exports/{export_id}", Op("An audit export: its state and URL", ADMIN, "AuditExport"))
def audit_export_status(user: dict, export_id: str) -> dict:
    from chalicelib.audit import api

    return api.export_status(export_id)
