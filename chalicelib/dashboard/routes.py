"""The queue dashboard's page and the queues' REST routes (admin): every `/api/queues/...`
route, and removing a job."""

from __future__ import annotations

from chalice import Blueprint, Response

from chalicelib import catalog
from chalicelib.auth.access import route
from chalicelib.routing import ADMIN, ANYONE, PAGE, UNTIL, Op, Param, since

routes = Blueprint(__name__)

QUEUE = {"queue": {"enum": catalog.job_queues()}}  # any other name is a 404
STATES = ["waiting", "delayed", "active", "completed", "failed", "cancelled"]


@route(routes, "GET /api/queues/stats", Op("Every job queue's counts, concurrency and rate limit", ADMIN, "Stats"))
def queue_stats(user: dict) -> dict:
    from chalicelib.dashboard import service as dashboard

    return dashboard.stats()


@route(
    routes,
    "GET /api/queues/{queue}/metrics",
    Op("A queue's jobs per minute", ADMIN, "QueueMetrics", query=(since("an hour ago"), UNTIL), path=QUEUE),
)
def queue_metrics(user: dict, queue: str) -> dict:
    from chalicelib import http
    from chalicelib.dashboard import service as dashboard

    return dashboard.metrics(queue, http.query(routes.current_request))


@route(
    routes,
    "GET /api/queues/health",
    Op(
        "The queues' health checks",
        ADMIN,
        "QueueHealth",
        also={503: "QueueHealth"},
        description="503 when a check fails.",
    ),
)
def queue_health(user: dict) -> object:
    from chalicelib.dashboard import service as dashboard

    status, report = dashboard.health_report()
    return Response(body=report, status_code=status)


@route(
    routes,
    "GET /api/queues/{queue}/jobs",
    Op(
        "A queue's jobs in one state, newest change first",
        ADMIN,
        "JobPage",
        path=QUEUE,
        query=(*PAGE, Param("state", {"enum": STATES, "default": "waiting"}, "the state")),
    ),
)
def list_queue_jobs(user: dict, queue: str) -> dict:
    """`?state=` (default waiting), newest change first."""
    from chalicelib import errors, http, jobs
    from chalicelib.jobs import records

    if queue not in catalog.job_queues():
        raise errors.NotFound(f"queue {queue[:64]}")
    params = http.query(routes.current_request)
    state = params.get("state") or "waiting"
    if state not in records.STATES:
        raise errors.Invalid(f"must be one of {', '.join(records.STATES)}", "state")
    return jobs.list_page(queue, state, params)


@route(
    routes,
    "POST /api/queues/{queue}/retry-failed",
    Op("Run every failed job of a queue again", ADMIN, "Requeued", 202, path=QUEUE),
)
def retry_failed_jobs(user: dict, queue: str) -> object:
    from chalicelib import http
    from chalicelib.dashboard import service as dashboard

    return http.accepted(dashboard.retry_all(queue))


@route(routes, "POST /api/queues/{queue}/pause", Op("Pause a queue", ADMIN, "Paused", path=QUEUE))
def pause_queue(user: dict, queue: str) -> dict:
    from chalicelib.dashboard import service as dashboard

    return dashboard.set_paused(queue, True, user)


@route(routes, "POST /api/queues/{queue}/resume", Op("Resume a queue", ADMIN, "Paused", path=QUEUE))
def resume_queue(user: dict, queue: str) -> dict:
    from chalicelib.dashboard import service as dashboard

    return dashboard.set_paused(queue, False, user)


@route(
    routes,
    "PUT /api/queues/{queue}/limits",
    Op(
        "Set a queue's concurrency and rate limit",
        ADMIN,
        "Limits",
        body="chalicelib.dashboard.service:LimitsRequest",
        errors={409: "the queue has no event source mapping"},
        path=QUEUE,
    ),
)
def queue_limits(user: dict, queue: str) -> dict:
    from chalicelib import http
    from chalicelib.dashboard import service as dashboard

    dashboard.known(queue)
    return dashboard.set_limits(queue, http.parse(dashboard.LimitsRequest, routes.current_request), user)


@route(
    routes,
    "POST /api/queues/{queue}/clean",
    Op(
        "Remove a queue's old completed or failed jobs",
        ADMIN,
        "Removed",
        body="chalicelib.dashboard.service:CleanRequest",
        path=QUEUE,
    ),
)
def clean_queue(user: dict, queue: str) -> dict:
    from chalicelib import http
    from chalicelib.dashboard import service as dashboard

    dashboard.known(queue)
    return dashboard.clean(queue, http.parse(dashboard.CleanRequest, routes.current_request))


@route(
    routes,
    "POST /api/queues/{queue}/bulk",
    Op(
        "Retry, promote, cancel or remove a queue's jobs in one state, a bounded batch a call",
        ADMIN,
        "BulkResult",
        body="chalicelib.dashboard.bulk:BulkRequest",
        path=QUEUE,
        description="At most 100 jobs a call; continue with `next_cursor` (as `cursor` in the body).",
    ),
)
def bulk_jobs(user: dict, queue: str) -> dict:
    from chalicelib import http
    from chalicelib.dashboard import bulk
    from chalicelib.dashboard import service as dashboard

    dashboard.known(queue)
    return bulk.bulk(queue, http.parse(bulk.BulkRequest, routes.current_request))


@route(routes, "DELETE /api/jobs/{job_id}", Op("Remove a job and its dead letter", ADMIN, status=204))
def remove_job(user: dict, job_id: str) -> object:
    from chalicelib import http
    from chalicelib.dashboard import service as dashboard

    dashboard.remove_job(job_id)
    return http.no_content()


@route(routes, "GET /dashboard", Op("The queue dashboard page (it asks for a login)", ANYONE, media="text/html"))
def dashboard_html() -> object:
    from chalicelib.dashboard import page

    return page.html()


@route(routes, "GET /static/dashboard.js", Op("The dashboard page's script", ANYONE, media="text/javascript"))
def dashboard_js() -> object:
    from chalicelib.dashboard import page

    return page.script()
