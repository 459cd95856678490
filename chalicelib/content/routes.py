"""Content's REST routes: articles and their actions, analytics events and reports, settings.

Handlers import what they use when they run, so that importing the app (every Lambda does) loads
no request model.
"""

from __future__ import annotations

from typing import Any

from chalice import Blueprint

from chalicelib.auth.access import route
from chalicelib.routing import ADMIN, EDITORS, IDEMPOTENCY_KEY, PAGE, USERS, Op, Param

routes = Blueprint(__name__)

STARTED = {409: "the article's status does not allow it", 503: "the job could not be queued"}
AUTHOR = "not an editor or admin, or an editor who is not the article's author"
AUTHORED = "An editor only on an article they wrote."


def _accepted(job: dict[str, Any]) -> object:
    from chalicelib import http

    return http.accepted({"job_id": job["id"], **job})


@route(
    routes,
    "POST /api/articles",
    Op(
        "Create an article (DRAFT)",
        EDITORS,
        "Article",
        201,
        body="chalicelib.content.articles:NewArticle",
        gives={"article_id": "id"},
    ),
)
def create_article(user: dict) -> object:
    from chalicelib import http
    from chalicelib.content import articles

    body = http.parse(articles.NewArticle, routes.current_request)
    return http.created(articles.public(articles.create(body, user["id"])))


@route(routes, "GET /api/articles/{article_id}", Op("An article", USERS, "Article"))
def get_article(user: dict, article_id: str) -> dict:
    from chalicelib.content import articles

    return articles.public(articles.find(article_id))


@route(
    routes,
    "GET /api/articles",
    Op(
        "Articles, newest first",
        USERS,
        "ArticlePage",
        query=(*PAGE, Param("status", {"enum": ["DRAFT", "PROCESSING", "PUBLISHED", "ARCHIVED"]}, "only this status")),
    ),
)
def list_articles(user: dict) -> dict:
    from chalicelib import http
    from chalicelib.content import articles

    return articles.list_page(http.query(routes.current_request))


@route(
    routes,
    "POST /api/articles/{article_id}/generate",
    Op(
        "Generate the article's content (a job)",
        EDITORS,
        "JobStarted",
        202,
        body="chalicelib.content.generation:GenerateOptions",
        body_required=False,
        errors={403: AUTHOR, 429: "quota delayed_jobs: too many delayed jobs waiting", **STARTED},
        gives={"job_id": "job_id"},
        description=f"{AUTHORED} No body: normal priority, now.",
    ),
)
def generate_article(user: dict, article_id: str) -> object:
    """Optional body `{"priority": "high"|"normal", "delay_seconds": 0-31536000}`."""
    from chalicelib.content import generation

    options = generation.generation_options(routes.current_request)
    return _accepted(generation.start(article_id, user, options))


def _transition(summary: str) -> Op:
    return Op(summary, EDITORS, "JobStarted", 202, errors={403: AUTHOR, **STARTED}, description=AUTHORED)


@route(routes, "POST /api/articles/{article_id}/publish", _transition("Publish the article (a job)"))
def publish_article(user: dict, article_id: str) -> object:
    from chalicelib.content import actions

    return _accepted(actions.request_transition(article_id, "publish", user))


@route(routes, "POST /api/articles/{article_id}/archive", _transition("Archive the article (a job)"))
def archive_article(user: dict, article_id: str) -> object:
    from chalicelib.content import actions

    return _accepted(actions.request_transition(article_id, "archive", user))


@route(
    routes,
    "POST /api/analytics/events",
    Op(
        "Record a view, click or share",
        USERS,
        "Accepted",
        202,
        body="chalicelib.content.analytics:NewEvent",
        headers=(IDEMPOTENCY_KEY,),
        errors={404: "unknown article", 429: "quota events_per_minute or events_per_hour used up"},
        description="A repeat with the same Idempotency-Key (within a day) is answered 202 and counts nothing.",
    ),
)
def record_analytics_event(user: dict) -> object:
    from chalicelib import http
    from chalicelib.content import analytics, articles

    request = routes.current_request
    body, key = http.parse(analytics.NewEvent, request), http.idempotency_key(request)
    articles.find(body.article_id)
    analytics.take_quota(user["id"])
    analytics.ingest(body, user["id"], key)
    return http.accepted({"accepted": True})


NOT_YET = {404: "not generated yet"}


@route(
    routes,
    "GET /api/analytics/reports/daily",
    Op(
        "A day's analytics report",
        ADMIN,
        "AnalyticsReport",
        query=(Param("date", {"type": "string", "format": "date"}, "the day, YYYY-MM-DD", required=True),),
        errors=NOT_YET,
    ),
)
def daily_analytics_report(user: dict) -> dict:
    return _report("daily")


@route(
    routes,
    "GET /api/analytics/reports/weekly",
    Op(
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
        errors=NOT_YET,
    ),
)
def weekly_analytics_report(user: dict) -> dict:
    return _report("weekly")


def _report(period: str) -> dict:
    from chalicelib import http
    from chalicelib.content import reports

    return reports.find(period, http.query(routes.current_request))


@route(routes, "GET /api/settings", Op("Every setting", ADMIN, "SettingPage"))
def list_settings(user: dict) -> dict:
    from chalicelib.content import settings

    return {"items": settings.settings().all(), "next_cursor": None}


@route(
    routes,
    "PUT /api/settings/{key}",
    Op(
        "Set a setting",
        ADMIN,
        "Setting",
        body="chalicelib.content.settings:SettingValue",
        errors={400: "a bad key (`^[a-z][a-z0-9_.-]{0,127}$`) or value"},
    ),
)
def put_setting(user: dict, key: str) -> dict:
    from chalicelib import errors, http
    from chalicelib.content import settings

    if not settings.valid_key(key):
        raise errors.Invalid("must match ^[a-z][a-z0-9_.-]{0,127}$", "key")
    body = http.parse(settings.SettingValue, routes.current_request)
    return settings.update(key, body.value, user["id"])
