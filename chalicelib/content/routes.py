"""Content's REST routes: articles and their actions, analytics events and reports, settings.

Handlers import what they use when they run, so that importing the app (every Lambda does) loads
no request model.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.apidoc import ADMIN, EDITORS, PAGE, USERS, Op, Param

routes = Blueprint(__name__)

STARTED = {409: "the article's status does not allow it", 503: "the job could not be queued"}
AUTHOR = "neither the article's author nor an admin"
DOCS = {
    "POST /api/articles": Op(
        "Create an article (DRAFT)",
        EDITORS,
        "Article",
        201,
        body="chalicelib.content.articles:NewArticle",
        gives={"article_id": "id"},
    ),
    "GET /api/articles/{article_id}": Op("An article", USERS, "Article"),
    "GET /api/articles": Op(
        "Articles, newest first",
        USERS,
        "ArticlePage",
        query=(*PAGE, Param("status", {"enum": ["DRAFT", "PROCESSING", "PUBLISHED", "ARCHIVED"]}, "only this status")),
    ),
    "POST /api/articles/{article_id}/generate": Op(
        "Generate the article's content (a job)",
        USERS,
        "JobStarted",
        202,
        body="chalicelib.content.generation:GenerateOptions",
        body_required=False,
        errors={403: AUTHOR, **STARTED},
        gives={"job_id": "job_id"},
        description="No body: normal priority, now.",
    ),
    "POST /api/articles/{article_id}/publish": Op(
        "Publish the article (a job)", USERS, "JobStarted", 202, errors={403: AUTHOR, **STARTED}
    ),
    "POST /api/articles/{article_id}/archive": Op(
        "Archive the article (a job)", USERS, "JobStarted", 202, errors={403: AUTHOR, **STARTED}
    ),
    "POST /api/analytics/events": Op(
        "Record a view, click or share",
        USERS,
        "Accepted",
        202,
        body="chalicelib.content.analytics:NewEvent",
        errors={404: "unknown article"},
    ),
    "GET /api/analytics/reports/daily": Op(
        "A day's analytics report",
        ADMIN,
        "AnalyticsReport",
        query=(Param("date", {"type": "string", "format": "date"}, "the day, YYYY-MM-DD", required=True),),
        errors={404: "not generated yet"},
    ),
    "GET /api/analytics/reports/weekly": Op(
        "An ISO week's analytics report",
        ADMIN,
        "AnalyticsReport",
        query=(
            Param(
                "week",
                {"type": "string", "pattern": "^[0-9]{4}-W(0[1-9]|[1-4][0-9]|5[0-3])$"},
                "YYYY-Www",
                required=True,
            ),
        ),
        errors={404: "not generated yet"},
    ),
    "GET /api/settings": Op("Every setting", ADMIN, "SettingPage"),
    "PUT /api/settings/{key}": Op(
        "Set a setting",
        ADMIN,
        "Setting",
        body="chalicelib.content.settings:SettingValue",
        errors={400: "a bad key (`^[a-z][a-z0-9_.-]{0,127}$`) or value"},
    ),
}


def _accepted(job: dict[str, Any]) -> object:
    from chalicelib import http

    return http.accepted({"job_id": job["id"], **job})


@routes.route("/api/articles", methods=["POST"])
def create_article() -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.content import articles

    user = auth.require("editor", "admin")
    body = http.parse(articles.NewArticle, routes.current_request)
    return http.created(articles.public(articles.create(body, user["id"])))


@routes.route("/api/articles/{article_id}")
def get_article(article_id: str) -> dict:
    from chalicelib.auth import service as auth
    from chalicelib.content import articles

    auth.require()
    return articles.public(articles.find(article_id))


@routes.route("/api/articles")
def list_articles() -> dict:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.content import articles

    auth.require()
    return articles.list_page(http.query(routes.current_request))


@routes.route("/api/articles/{article_id}/generate", methods=["POST"])
def generate_article(article_id: str) -> object:
    """Optional body `{"priority": "high"|"normal", "delay_seconds": 0-31536000}`."""
    from chalicelib.auth import service as auth
    from chalicelib.content import generation

    user = auth.require()
    options = generation.generation_options(routes.current_request)
    return _accepted(generation.start(article_id, user, options))


@routes.route("/api/articles/{article_id}/publish", methods=["POST"])
def publish_article(article_id: str) -> object:
    from chalicelib.auth import service as auth
    from chalicelib.content import actions

    return _accepted(actions.request_transition(article_id, "publish", auth.require()))


@routes.route("/api/articles/{article_id}/archive", methods=["POST"])
def archive_article(article_id: str) -> object:
    from chalicelib.auth import service as auth
    from chalicelib.content import actions

    return _accepted(actions.request_transition(article_id, "archive", auth.require()))


@routes.route("/api/analytics/events", methods=["POST"])
def record_analytics_event() -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.content import analytics, articles

    user = auth.require()
    body = http.parse(analytics.NewEvent, routes.current_request)
    articles.find(body.article_id)
    analytics.ingest(body, user["id"])
    return http.accepted({"accepted": True})


@routes.route("/api/analytics/reports/daily")
def daily_analytics_report() -> dict:
    return _report("daily")


@routes.route("/api/analytics/reports/weekly")
def weekly_analytics_report() -> dict:
    return _report("weekly")


def _report(period: str) -> dict:
    from chalicelib import http
    from chalicelib.auth import service as auth
    from chalicelib.content import reports

    auth.require("admin")
    return reports.find(period, http.query(routes.current_request))


@routes.route("/api/settings")
def list_settings() -> dict:
    from chalicelib.auth import service as auth
    from chalicelib.content import settings

    auth.require("admin")
    return {"items": settings.settings().all(), "next_cursor": None}


@routes.route("/api/settings/{key}", methods=["PUT"])
def put_setting(key: str) -> dict:
    from chalicelib import errors, http
    from chalicelib.auth import service as auth
    from chalicelib.content import settings

    user = auth.require("admin")
    if not settings.valid_key(key):
        raise errors.Invalid("must match ^[a-z][a-z0-9_.-]{0,127}$", "key")
    body = http.parse(settings.SettingValue, routes.current_request)
    return settings.update(key, body.value, user["id"])
