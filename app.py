"""Inkwell: wiring only. Each handler parses its input, calls into `chalicelib`, and answers.

Sections, one per capability, each owned by its module: health, auth, content, jobs,
schedules, realtime, audit, dashboard.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from chalice import Response
from chalice.app import SQSEvent

from chalicelib import audit, catalog, config
from chalicelib.jobs import worker
from chalicelib.realtime import emitters as _realtime_emitters  # noqa: F401  (subscribes the emitters)
from chalicelib.runtime import Inkwell, current, lazy
from chalicelib.schedules import service as schedules

if TYPE_CHECKING:
    from chalicelib import dashboard, http
    from chalicelib.audit import api as audit_api
    from chalicelib.auth import service as auth
    from chalicelib.content import analytics, articles, settings
    from chalicelib.dashboard import page as dashboard_page
    from chalicelib.jobs import api as jobs_api
    from chalicelib.realtime import handlers as ws
    from chalicelib.realtime import tickets as ws_tickets
else:  # modules without import-time side effects, loaded by the first handler using them (runtime.lazy)
    http, auth = lazy("chalicelib.http"), lazy("chalicelib.auth.service")
    analytics, articles, settings = (lazy(f"chalicelib.content.{m}") for m in ("analytics", "articles", "settings"))
    dashboard, audit_api = lazy("chalicelib.dashboard"), lazy("chalicelib.audit.api")
    dashboard_page = lazy("chalicelib.dashboard.page")
    jobs_api = lazy("chalicelib.jobs.api")
    ws, ws_tickets = lazy("chalicelib.realtime.handlers"), lazy("chalicelib.realtime.tickets")

app = Inkwell(app_name="inkwell")
app.experimental_feature_flags.update(["WEBSOCKETS"])
config.check_startup()


# --- health -----------------------------------------------------------------------------------


@app.route("/api/health")
def health() -> dict:
    return {"status": "ok"}


# --- auth -------------------------------------------------------------------------------------


@app.route("/api/auth/login", methods=["POST"])
def login() -> object:
    body = http.parse(auth.Credentials, app.current_request)
    try:
        return auth.login(body.email, body.password, current().ip)
    except auth.LoginThrottled as exc:
        return http.HttpError(429, str(exc), headers={"Retry-After": str(exc.retry_after)}).to_response()


@app.route("/api/auth/logout", methods=["POST"])
def logout() -> object:
    auth.logout(auth.require())
    return http.no_content()


@app.route("/api/auth/me")
def me() -> dict:
    return auth.public_user(auth.require())


@app.route("/api/users", methods=["POST"])
def create_user() -> object:
    auth.require("admin")
    body = http.parse(auth.NewUser, app.current_request)
    try:
        user = auth.create_user(body.email, body.password, body.role)
    except auth.EmailTaken:
        raise http.conflict("that email is taken") from None
    return http.created(user)


# --- content ----------------------------------------------------------------------------------


@app.route("/api/articles", methods=["POST"])
def create_article() -> object:
    user = auth.require("editor", "admin")
    body = http.parse(articles.NewArticle, app.current_request)
    return http.created(articles.public(articles.create(body, user["id"])))


@app.route("/api/articles/{article_id}")
def get_article(article_id: str) -> dict:
    auth.require()
    return articles.public(articles.find(article_id))


@app.route("/api/articles")
def list_articles() -> dict:
    auth.require()
    return articles.list_page(http.query(app.current_request))


@app.route("/api/analytics/events", methods=["POST"])
def record_analytics_event() -> object:
    user = auth.require()
    body = http.parse(analytics.NewEvent, app.current_request)
    articles.find(body.article_id)
    analytics.ingest(body, user["id"])
    return http.accepted({"accepted": True})


@app.route("/api/settings")
def list_settings() -> dict:
    auth.require("admin")
    return {"items": settings.settings().all(), "next_cursor": None}


@app.route("/api/settings/{key}", methods=["PUT"])
def put_setting(key: str) -> dict:
    user = auth.require("admin")
    if not settings.valid_key(key):
        raise http.bad_request("must match ^[a-z][a-z0-9_.-]{0,127}$", "key")
    body = http.parse(settings.SettingValue, app.current_request)
    return settings.update(key, body.value, user["id"])


# --- jobs -------------------------------------------------------------------------------------
# One SQS handler per queue, all running the shared worker. Chalice's on_sqs_message takes the
# queue's *name*, and names are per stage (`inkwell-<stage>-<queue>`), so the name is computed
# here at import from config: `chalice package` / `chalice deploy` import this module to build
# their template and must run with the stage's INKWELL_STAGE set (a queue_arn would need the
# account id at import instead). The functions' timeouts come from catalog.QUEUES
# (.chalice/config.json, per function); batch sizes from the catalogue too.


@app.route("/api/articles/{article_id}/generate", methods=["POST"])
def generate_article(article_id: str) -> object:
    return jobs_api.start_generation(article_id, auth.require())


@app.route("/api/articles/{article_id}/publish", methods=["POST"])
def publish_article(article_id: str) -> object:
    return jobs_api.request_transition(article_id, "publish", auth.require())


@app.route("/api/articles/{article_id}/archive", methods=["POST"])
def archive_article(article_id: str) -> object:
    return jobs_api.request_transition(article_id, "archive", auth.require())


@app.route("/api/jobs/{job_id}")
def get_job(job_id: str) -> dict:
    return jobs_api.job_for(job_id, auth.require())


@app.route("/api/jobs/{job_id}/retry", methods=["POST"])
def retry_job(job_id: str) -> object:
    auth.require("admin")
    return jobs_api.retry(job_id)


@app.route("/api/queues/{queue}/jobs")
def list_queue_jobs(queue: str) -> dict:
    auth.require("admin")
    return jobs_api.queue_jobs(queue, http.query(app.current_request))


@app.route("/api/analytics/reports/daily")
def daily_analytics_report() -> dict:
    auth.require("admin")
    return jobs_api.report("daily", http.query(app.current_request))


@app.route("/api/analytics/reports/weekly")
def weekly_analytics_report() -> dict:
    auth.require("admin")
    return jobs_api.report("weekly", http.query(app.current_request))


def _sqs_handler(queue: str) -> Callable[[Callable[[SQSEvent], dict]], Any]:
    spec = catalog.queue(queue)
    return app.on_sqs_message(queue=config.get().resource_name(queue), batch_size=spec.batch_size, name=f"jobs_{queue}")


@_sqs_handler("articles")
def jobs_articles(event: SQSEvent) -> dict:
    return worker.handle("articles", event.to_dict(), event.context)


@_sqs_handler("analytics")
def jobs_analytics(event: SQSEvent) -> dict:
    return worker.handle("analytics", event.to_dict(), event.context)


@_sqs_handler("emails")
def jobs_emails(event: SQSEvent) -> dict:
    return worker.handle("emails", event.to_dict(), event.context)


@_sqs_handler("cleanup")
def jobs_cleanup(event: SQSEvent) -> dict:
    return worker.handle("cleanup", event.to_dict(), event.context)


# --- schedules --------------------------------------------------------------------------------

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


@app.route("/api/schedules")
def list_schedules() -> dict:
    auth.require("admin")
    return schedules.listing(http.query(app.current_request))


@app.route("/api/schedules/{name}/run", methods=["POST"])
def run_schedule(name: str) -> object:
    user = auth.require("admin")
    return http.accepted(schedules.run_now(name, user))


# --- realtime ---------------------------------------------------------------------------------


@app.route("/api/realtime/ticket", methods=["POST"])
def realtime_ticket() -> dict:
    return ws_tickets.issue(auth.require())


@app.route("/static/realtime.js")
def realtime_js() -> object:
    return ws.browser_client()


@app.on_ws_connect()
def ws_connect(event: object) -> object:
    return ws.connect(event)


@app.on_ws_message()
def ws_message(event: object) -> None:
    ws.message(event)


@app.on_ws_disconnect()
def ws_disconnect(event: object) -> None:
    ws.disconnect(event)


# --- audit ------------------------------------------------------------------------------------


@app.route("/api/audit")
def audit_events() -> dict:
    auth.require("admin")
    return audit_api.list_events(http.query(app.current_request))


@app.route("/api/audit/users/{user_id}/summary")
def audit_user_summary(user_id: str) -> dict:
    return audit_api.user_summary(auth.require(), user_id, http.query(app.current_request))


@app.route("/api/audit/report")
def audit_report() -> dict:
    auth.require("admin")
    return audit_api.report(http.query(app.current_request))


@app.route("/api/audit/verify")
def audit_verify() -> dict:
    auth.require("admin")
    return audit_api.verify(http.query(app.current_request))


@app.on_sqs_message(queue=config.get().resource_name("audit"), batch_size=catalog.queue("audit").batch_size)
def audit_fallback(event: object) -> None:
    for message in event:  # type: ignore[attr-defined]
        audit.process_fallback_message(message.body)


# --- dashboard --------------------------------------------------------------------------------
# A paused queue starts no job: its event source mapping is disabled, and meanwhile the worker
# holds (puts back) any message of it that was already received.


def _queue_paused(queue: str) -> bool:
    return dashboard.is_paused(queue)


worker.add_hold(_queue_paused)


@app.route("/api/queues/stats")
def queue_stats() -> dict:
    auth.require("admin")
    return dashboard.stats()


@app.route("/api/queues/health")
def queue_health() -> object:
    auth.require("admin")
    status, report = dashboard.health_report()
    return Response(body=report, status_code=status)


@app.route("/api/queues/{queue}/retry-failed", methods=["POST"])
def retry_failed_jobs(queue: str) -> object:
    auth.require("admin")
    return http.accepted(dashboard.retry_all(queue))


@app.route("/api/queues/{queue}/pause", methods=["POST"])
def pause_queue(queue: str) -> dict:
    return dashboard.set_paused(queue, True, auth.require("admin"))


@app.route("/api/queues/{queue}/resume", methods=["POST"])
def resume_queue(queue: str) -> dict:
    return dashboard.set_paused(queue, False, auth.require("admin"))


@app.route("/api/queues/{queue}/clean", methods=["POST"])
def clean_queue(queue: str) -> dict:
    auth.require("admin")
    dashboard.known(queue)
    return dashboard.clean(queue, http.parse(dashboard.CleanRequest, app.current_request))


@app.route("/api/jobs/{job_id}", methods=["DELETE"])
def remove_job(job_id: str) -> object:
    auth.require("admin")
    dashboard.remove_job(job_id)
    return http.no_content()


@app.route("/dashboard")
def dashboard_html() -> object:
    return dashboard_page.html()


@app.route("/static/dashboard.js")
def dashboard_js() -> object:
    return dashboard_page.script()
