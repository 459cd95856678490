"""Inkwell, put together: read top to bottom, this is the whole system's wiring.

1. The Chalice app, its logs and error tracking, and the middleware around every handler
   (invocation context, the REST error shape, the per-invocation buffers flushed in a declared
   order at the end of every invocation, unhandled exceptions to error tracking).
2. The REST API: one blueprint per capability.
3. Who hears what: the listeners of the in-process events.
4. The job workers: each capability's processors in one table, what holds and what guards every job.
5. The event handlers: SQS queues, schedules, WebSocket. They are defined here, not in blueprints:
   Chalice deploys a blueprint's event handler with the blueprint's module as the Lambda entry
   point, so app.py (its middleware and wiring) would never run for it (aws/chalice#1566).
6. What each Lambda runs: the modules the handlers defined here call, for the deploy tooling.

Importing a `chalicelib` module registers nothing; everything is connected here. Modules only
handlers need are imported inside them, so every Lambda's cold start stays cheap (`make bench`).
"""

from __future__ import annotations

import functools
from typing import TYPE_CHECKING, Any

from chalice import Chalice
from chalice.app import SQSEvent

from chalicelib import catalog, config, events, jobs, runtime, secret, tracing
from chalicelib.apidoc import routes as apidoc_routes
from chalicelib.audit import listeners as audit_listeners
from chalicelib.audit import logger as audit_logger
from chalicelib.audit import routes as audit_routes
from chalicelib.auth import routes as auth_routes
from chalicelib.content import routes as content_routes
from chalicelib.dashboard import routes as dashboard_routes
from chalicelib.jobs import routes as jobs_routes
from chalicelib.jobs import timeline
from chalicelib.mail import alerts
from chalicelib.observe import logs, metrics, tracking
from chalicelib.realtime import delivery, emitters, live
from chalicelib.realtime import routes as realtime_routes
from chalicelib.routing import ANYONE, Op, route
from chalicelib.schedules import routes as schedules_routes
from chalicelib.schedules import service as schedules

if TYPE_CHECKING:  # the worker loads boto3: the job Lambdas import it with their first batch
    from chalicelib.jobs.processor import Processor
    from chalicelib.jobs.worker import Worker

# --- 1. the app ---------------------------------------------------------------------------------

app = Chalice(app_name="inkwell")
app.experimental_feature_flags.update(["WEBSOCKETS"])
secret.check_startup()
tracing.install()  # X-Ray subsegments for AWS and generator calls, only on Lambda with tracing on
if command := config.unguarded_chalice():  # the deploy tooling's guard runs through its own entry point
    raise SystemExit(
        f"chalice {command}: run it as `python -m infra.chalice_cli {command} ...` (or `make deploy`, "
        "`make package`): it builds for the Lambda runtime and refuses a deploy that would break the stage"
    )
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


@route(app, "GET /api/health", Op("Is the API up", ANYONE, "Health"))  # a route declared once: chalicelib.routing
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


def declared_processors() -> tuple[Processor, ...]:
    """Every capability's processors, as each declares them (`PROCESSORS`). Imported when first
    asked for: the capabilities' job modules (pydantic, boto3) load with a job Lambda's first
    batch or the API's first retry or cancel, not with this module."""
    from chalicelib.audit import jobs as audit_jobs
    from chalicelib.audit import seal_jobs
    from chalicelib.auth import sweeps
    from chalicelib.content import actions, cleanup, generation_job, report_jobs
    from chalicelib.mail import jobs as mail_jobs

    declared = (generation_job, actions, report_jobs, mail_jobs, sweeps, cleanup, audit_jobs, seal_jobs)
    return tuple(proc for module in declared for proc in module.PROCESSORS)


@functools.cache
def processors() -> dict[tuple[str, str], Processor]:
    """(queue, job type) -> its processor. Tests may put a stand-in into it (monkeypatch.setitem)."""
    return {(proc.queue, proc.type): proc for proc in declared_processors()}


def find_processor(queue: str, job_type: str) -> Processor | None:
    return processors().get((queue, job_type))


jobs.use_processors(find_processor)  # the worker runs them; the job operations (retry, cancel) run their hooks


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
        find=find_processor,
        source=queue,
    )


# --- 5. event handlers ------------------------------------------------------------------------------
# One SQS handler per queue (a job queue's priority queue too). Chalice's on_sqs_message takes the queue's *name*, and names are per
# stage (`config.physical_name`), so `python -m infra.chalice_cli package|deploy` must import this
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
    from chalicelib.realtime import disconnect

    disconnect.disconnect(event)


# --- 6. what each Lambda runs -------------------------------------------------------------------------
# The deploy tooling (infra/reach.py: each function's IAM policy) reads these declarations and the
# app object, never this file's text. A function runs its handler's module (a blueprint's route, a
# schedule), the middleware's hooks, the listeners of the events it publishes and, for a job queue,
# that queue's processors (`declared_processors`); a handler defined in this file also runs the
# modules listed here (what it imports when called; tests/unit/test_infra_reach.py checks them).

AT_COLD_START = (secret.__name__, tracing.__name__, logs.__name__, tracking.__name__)  # above, in every function
JOB_WORKER = (
    "chalicelib.jobs.pause",
    "chalicelib.jobs.ratelimit",
    "chalicelib.jobs.service",
    "chalicelib.jobs.worker",
    "chalicelib.schedules.service",
)
RUNS: dict[str, tuple[str, ...]] = {
    "health": (),
    **dict.fromkeys(
        (
            "jobs_articles",
            "jobs_analytics",
            "jobs_emails",
            "jobs_cleanup",
            "jobs_articles_high",
            "jobs_analytics_high",
            "jobs_emails_high",
            "jobs_cleanup_high",
        ),
        JOB_WORKER,
    ),
    "audit_fallback": ("chalicelib.audit.logger",),
    "realtime_fanout": ("chalicelib.realtime.fanout",),
    "ws_connect": ("chalicelib.realtime.handlers",),
    "ws_message": ("chalicelib.realtime.handlers",),
    "ws_disconnect": ("chalicelib.realtime.disconnect",),
}
