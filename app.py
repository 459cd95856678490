"""Inkwell, put together: read top to bottom, this is the whole system's wiring.

1. The Chalice app, its logs and error tracking, and the middleware around every handler
   (invocation context, the REST error shape, the audit, realtime, job-metrics and EMF flushes at
   the end of every invocation, unhandled exceptions to error tracking).
2. The REST API: one blueprint per capability.
3. Who hears what: the listeners of the in-process events.
4. The job workers: what holds and what guards every job.
5. The event handlers: SQS queues, schedules, WebSocket. They are defined here, not in blueprints:
   Chalice deploys a blueprint's event handler with the blueprint's module as the Lambda entry
   point, so app.py (its middleware and wiring) would never run for it (aws/chalice#1566).

Importing a `chalicelib` module registers nothing; everything is connected here. Modules only
handlers need are imported inside them, so every Lambda's cold start stays cheap (`make bench`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from chalice import Chalice
from chalice.app import SQSEvent

from chalicelib import catalog, config, events, runtime, tracing
from chalicelib.apidoc import ANYONE, Op
from chalicelib.apidoc import routes as apidoc_routes
from chalicelib.audit import listeners as audit_listeners
from chalicelib.audit import logger as audit_logger
from chalicelib.audit import routes as audit_routes
from chalicelib.auth import routes as auth_routes
from chalicelib.content import routes as content_routes
from chalicelib.dashboard import routes as dashboard_routes
from chalicelib.jobs import alerts, timeline
from chalicelib.jobs import routes as jobs_routes
from chalicelib.observe import logs, metrics, tracking
from chalicelib.realtime import delivery, emitters, live
from chalicelib.realtime import routes as realtime_routes
from chalicelib.schedules import routes as schedules_routes
from chalicelib.schedules import service as schedules

if TYPE_CHECKING:  # the worker loads boto3: the job Lambdas import it with their first batch
    from chalicelib.jobs.worker import Worker

# --- 1. the app ---------------------------------------------------------------------------------

app = Chalice(app_name="inkwell")
app.experimental_feature_flags.update(["WEBSOCKETS"])
config.check_startup()
tracing.install()  # X-Ray subsegments for AWS and generator calls, only on Lambda with tracing on
if not config.on_lambda():  # in a checkout: the `chalice` CLI's guard (infra/ is never deployed)
    from infra.chalice_cli import app_loaded

    app_loaded()
logs.configure_logging(app.log)  # INKWELL_LOG_FORMAT, INKWELL_LOG_LEVEL
tracking.configure(app.log)  # only with SENTRY_DSN
middleware = runtime.Middleware(
    buffers=[  # flushed in this order when every invocation ends: a flush may fill the buffers after it
        audit_logger.BUFFER,  # writes the audit events, then publishes them (realtime `activity`)
        delivery.WAITING,  # realtime events of rooms nobody was in, the audit's activity with them
        timeline.BUFFER,  # per-minute job metrics
        metrics.BUFFER,  # last: the flushes above count audit writes and WebSocket posts
    ],
    on_error=[tracking.report],
)
app.register_middleware(middleware, "all")

# --- 2. the REST API ------------------------------------------------------------------------------


DOCS = {"GET /api/health": Op("Is the API up", ANYONE, "Health")}  # every route's description: chalicelib.apidoc


@app.route("/api/health")
def health() -> dict:
    return {"status": "ok"}


for capability in (
    auth_routes,
    content_routes,
    jobs_routes,
    schedules_routes,
    realtime_routes,
    audit_routes,
    dashboard_routes,
    apidoc_routes,
):
    app.register_blueprint(capability.routes)

# --- 3. who hears what ------------------------------------------------------------------------------

LISTENERS: dict[type, list[events.Listener]] = {
    events.JobEvent: [
        audit_listeners.on_job_event,  # job.failed in the audit trail
        emitters.on_job_event,  # job.progress / completed / failed / cancelled to the rooms
        schedules.on_job_event,  # a scheduled job's outcome as its schedule's last status
        alerts.alert_on_failure,  # an email for a job that failed for good
        metrics.on_job_event,  # JobStarted / Completed / Failed / Retried, duration, queue wait
        timeline.on_job_event,  # per-minute job metrics, written at the end of the invocation
    ],
    events.ArticleStatusChanged: [audit_listeners.on_article_status, emitters.on_article_status],
    events.Alert: [emitters.on_alert],
    events.AuditRecorded: [emitters.on_audit],
    events.AnalyticsRecorded: [emitters.on_analytics],
    events.ReportStored: [emitters.on_report_stored],
    events.SessionsRevoked: [live.on_sessions_revoked],  # close the sessions' WebSocket connections
}
events.subscribe_all(LISTENERS)

# --- 4. the job workers -----------------------------------------------------------------------------


def job_worker(queue: str) -> Worker:
    """The worker of one SQS queue as deployed: the job queue's, also for its priority queue
    (`articles-high` runs `articles` jobs). A paused queue holds its jobs, a job over its queue's
    rate limit (shared by both priorities) waits for it, and a job that comes from a schedule runs
    holding its schedule's lease."""
    from chalicelib.jobs import pause, ratelimit, service
    from chalicelib.jobs.worker import Worker

    return Worker(
        catalog.queue(catalog.job_queue_of(queue)),
        service.store(),
        service.queues(),
        holds=[pause.is_paused],
        guards=[schedules.exclusive],
        limiter=ratelimit.wait_for_start,
        source=queue,
    )


# --- 5. event handlers ------------------------------------------------------------------------------
# One SQS handler per queue (a job queue's priority queue too). Chalice's on_sqs_message takes the queue's *name*, and names are per
# stage (`inkwell-<stage>-<queue>`), so `chalice package` / `chalice deploy` must import this
# module with the stage's INKWELL_STAGE set. Batch sizes, maximum concurrency and timeouts come
# from the catalogue.


def _sqs(queue: str) -> Any:
    spec = catalog.queue(queue)
    return app.on_sqs_message(
        queue=config.get().resource_name(queue), batch_size=spec.batch_size, maximum_concurrency=spec.concurrency
    )


@_sqs("articles")
def jobs_articles(event: SQSEvent) -> dict:
    return job_worker("articles").handle(event.to_dict(), event.context)


@_sqs("analytics")
def jobs_analytics(event: SQSEvent) -> dict:
    return job_worker("analytics").handle(event.to_dict(), event.context)


@_sqs("emails")
def jobs_emails(event: SQSEvent) -> dict:
    return job_worker("emails").handle(event.to_dict(), event.context)


@_sqs("cleanup")
def jobs_cleanup(event: SQSEvent) -> dict:
    return job_worker("cleanup").handle(event.to_dict(), event.context)


# The priority queues (catalogue: `<queue>-high`): the same workers, fed first-come from their own queue.
@_sqs("articles-high")
def jobs_articles_high(event: SQSEvent) -> dict:
    return job_worker("articles-high").handle(event.to_dict(), event.context)


@_sqs("analytics-high")
def jobs_analytics_high(event: SQSEvent) -> dict:
    return job_worker("analytics-high").handle(event.to_dict(), event.context)


@_sqs("emails-high")
def jobs_emails_high(event: SQSEvent) -> dict:
    return job_worker("emails-high").handle(event.to_dict(), event.context)


@_sqs("cleanup-high")
def jobs_cleanup_high(event: SQSEvent) -> dict:
    return job_worker("cleanup-high").handle(event.to_dict(), event.context)


@_sqs("audit")
def audit_fallback(event: SQSEvent) -> None:
    """Audit events that could not be written at once come back through this queue."""
    from chalicelib.audit.logger import process_fallback_message

    for message in event:
        process_fallback_message(message.body)


@_sqs("fanout.fifo")
def realtime_fanout(event: SQSEvent) -> dict:
    """Shards of a large room's WebSocket posts (chalicelib.realtime.fanout), one per invocation."""
    from chalicelib.realtime import fanout

    return fanout.handle(event.to_dict())


# One Lambda per catalogue schedule, each `app.<name>`; tests check that this list is the catalogue.
daily_analytics = schedules.handler(app, "daily-analytics")
weekly_report = schedules.handler(app, "weekly-report")
session_cleanup = schedules.handler(app, "session-cleanup")
login_attempts_cleanup = schedules.handler(app, "login-attempts-cleanup")
activity_log_cleanup = schedules.handler(app, "activity-log-cleanup")
orphan_cleanup = schedules.handler(app, "orphan-cleanup")
webhook_log_cleanup = schedules.handler(app, "webhook-log-cleanup")
analytics_data_cleanup = schedules.handler(app, "analytics-data-cleanup")
audit_digest = schedules.handler(app, "audit-digest")
audit_tally = schedules.handler(app, "audit-tally")


@app.on_ws_connect()
def ws_connect(event: Any) -> object:
    from chalicelib.realtime import handlers

    return handlers.connect(event)


@app.on_ws_message()
def ws_message(event: Any) -> None:
    from chalicelib.realtime import handlers

    handlers.message(event)


@app.on_ws_disconnect()
def ws_disconnect(event: Any) -> None:
    from chalicelib.realtime import handlers

    handlers.disconnect(event)
