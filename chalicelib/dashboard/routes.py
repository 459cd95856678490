"""The queue dashboard's REST routes (admin) and its page."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import catalog
from chalicelib.apidoc import ADMIN, ANYONE, UNTIL, Op, since

routes = Blueprint(__name__)

QUEUE = {"queue": {"enum": catalog.job_queues()}}  # any other name is a 404
DOCS = {
    "GET /api/queues/stats": Op("Every job queue's counts, concurrency and rate limit", ADMIN, "Stats"),
    "GET /api/queues/{queue}/metrics": Op(
        "A queue's jobs per minute", ADMIN, "QueueMetrics", query=(since("an hour ago"), UNTIL), path=QUEUE
    ),
    "GET /api/queues/health": Op(
        "The queues' health checks",
        ADMIN,
        "QueueHealth",
        also={503: "QueueHealth"},
        description="503 when a check fails.",
    ),
    "POST /api/queues/{queue}/retry-failed": Op(
        "Run every failed job of a queue again", ADMIN, "Requeued", 202, path=QUEUE
    ),
    "POST /api/queues/{queue}/pause": Op("Pause a queue", ADMIN, "Paused", path=QUEUE),
    "POST /api/queues/{queue}/resume": Op("Resume a queue", ADMIN, "Paused", path=QUEUE),
    "PUT /api/queues/{queue}/limits": Op(
        "Set a queue's concurrency and rate limit",
        ADMIN,
        "Limits",
        body="chalicelib.dashboard.service:LimitsRequest",
        errors={409: "the queue has no event source mapping"},
        path=QUEUE,
    ),
    "POST /api/queues/{queue}/clean": Op(
        "Remove a queue's old completed or failed jobs",
        ADMIN,
        "Removed",
        body="chalicelib.dashboard.service:CleanRequest",
        path=QUEUE,
    ),
    "DELETE /api/jobs/{job_id}": Op("Remove a job and its dead letter", ADMIN, status=204),
    "GET /dashboard": Op("The queue dashboard page (it asks for a login)", ANYONE, media="text/html"),
    "GET /static/dashboard.js": Op("The dashboard page's script", ANYONE, media="text/javascript"),
}


@routes.route("/api/queues/stats")
def queue_stats() -> dict:
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    auth.require("admin")
    return dashboard.stats()


@routes.route("/api/queues/{queue}/metrics")
def queue_metrics(queue: str) -> dict:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    auth.require("admin")
    return dashboard.metrics(queue, http.query(routes.current_request))


@routes.route("/api/queues/health")
def queue_health() -> object:
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    auth.require("admin")
    status, report = dashboard.health_report()
    return Response(body=report, status_code=status)


@routes.route("/api/queues/{queue}/retry-failed", methods=["POST"])
def retry_failed_jobs(queue: str) -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    auth.require("admin")
    return http.accepted(dashboard.retry_all(queue))


@routes.route("/api/queues/{queue}/pause", methods=["POST"])
def pause_queue(queue: str) -> dict:
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    return dashboard.set_paused(queue, True, auth.require("admin"))


@routes.route("/api/queues/{queue}/resume", methods=["POST"])
def resume_queue(queue: str) -> dict:
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    return dashboard.set_paused(queue, False, auth.require("admin"))


@routes.route("/api/queues/{queue}/limits", methods=["PUT"])
def queue_limits(queue: str) -> dict:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    user = auth.require("admin")
    dashboard.known(queue)
    return dashboard.set_limits(queue, http.parse(dashboard.LimitsRequest, routes.current_request), user)


@routes.route("/api/queues/{queue}/clean", methods=["POST"])
def clean_queue(queue: str) -> dict:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    auth.require("admin")
    dashboard.known(queue)
    return dashboard.clean(queue, http.parse(dashboard.CleanRequest, routes.current_request))


@routes.route("/api/jobs/{job_id}", methods=["DELETE"])
def remove_job(job_id: str) -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.dashboard import service as dashboard

    auth.require("admin")
    dashboard.remove_job(job_id)
    return http.no_content()


@routes.route("/dashboard")
def dashboard_html() -> object:
    from chalicelib.dashboard import page

    return page.html()


@routes.route("/static/dashboard.js")
def dashboard_js() -> object:
    from chalicelib.dashboard import page

    return page.script()
