"""The queue dashboard's REST routes (admin) and its page."""

from __future__ import annotations

from chalice import Blueprint, Response

routes = Blueprint(__name__)


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
