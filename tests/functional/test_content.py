"""Articles, analytics ingest and settings through the REST API on moto."""

from __future__ import annotations

import json

import pytest
from boto3.dynamodb.conditions import Key

from chalicelib import aws
from chalicelib.content import articles
from tests.conftest import body

ARTICLE = {"title": "Serverless queues", "topic": "SQS retries and dead letters", "keywords": ["sqs", "aws"]}


def _create(api, as_="editor", **changes):
    response = api.post("/api/articles", dict(ARTICLE, **changes), as_=as_)
    assert response.status_code == 201, response.body
    return body(response)


def _field(response) -> str:
    return body(response)["Errors"][0]["field"]


# --- articles ---------------------------------------------------------------------------------


def test_creating_an_article_answers_a_draft_by_its_author(api):
    article = _create(api, keywords=["sqs", " sqs ", "aws"])
    assert article["status"] == "DRAFT"
    assert article["author_id"] == api.user("editor")["id"]
    assert article["content"] is None
    assert article["keywords"] == ["sqs", "aws"]
    assert set(article) == {
        "id",
        "title",
        "topic",
        "keywords",
        "status",
        "author_id",
        "content",
        "created_at",
        "updated_at",
    }
    assert article["created_at"].endswith("Z")


@pytest.mark.parametrize("action", ["generate", "publish", "archive"])
def test_an_author_demoted_to_viewer_may_no_longer_act_on_their_article(api, action):
    """Writing an article needs the role editor or admin now: a viewer gets 403 whatever they once
    authored (the route's declaration, EDITORS, before the service's authorship check)."""
    article = _create(api)
    changed = api.request("PATCH", f"/api/users/{article['author_id']}", {"role": "viewer"}, as_="admin")
    assert changed.status_code == 200, changed.body
    api.tokens.pop("editor")  # the change ended their sessions: they log in again, a viewer now
    response = api.post(f"/api/articles/{article['id']}/{action}", as_="editor")
    assert response.status_code == 403 and "editor or admin" in body(response)["Message"]


def test_an_article_reads_back_as_created(api):
    article = _create(api)
    response = api.get(f"/api/articles/{article['id']}", as_="viewer")
    assert response.status_code == 200
    assert body(response) == article


@pytest.mark.parametrize(
    "article_id", ["0" * 32, "not-an-id", "A" * 32, "x" * 3000], ids=["unknown", "malformed", "uppercase", "huge"]
)
def test_an_unknown_article_is_404(api, article_id):
    response = api.get(f"/api/articles/{article_id}", as_="viewer")
    assert response.status_code == 404
    assert body(response)["Code"] == "NotFoundError"


def test_listing_all_articles_is_newest_first(api):
    ids = [_create(api, title=f"t{i}")["id"] for i in range(3)]
    response = api.get("/api/articles", as_="viewer")
    assert response.status_code == 200
    data = body(response)
    assert [a["id"] for a in data["items"]] == ids[::-1]
    assert data["next_cursor"] is None


def test_listing_by_status_shows_only_that_status(api):
    first, second = _create(api), _create(api)
    articles.articles().transition(second["id"], "generate", {"job_id": "j1"})
    processing = body(api.get("/api/articles?status=PROCESSING", as_="viewer"))["items"]
    drafts = body(api.get("/api/articles?status=DRAFT", as_="viewer"))["items"]
    assert [a["id"] for a in processing] == [second["id"]]
    assert [a["id"] for a in drafts] == [first["id"]]
    assert body(api.get("/api/articles?status=ARCHIVED", as_="viewer"))["items"] == []


def test_an_empty_status_lists_all(api):
    article = _create(api)
    assert [a["id"] for a in body(api.get("/api/articles?status=", as_="viewer"))["items"]] == [article["id"]]


@pytest.mark.parametrize("status", ["", "DRAFT"])
def test_cursor_pagination_walks_every_article_once(api, status):
    ids = [_create(api, title=f"t{i}")["id"] for i in range(5)]
    seen, cursor, pages = [], None, 0
    while True:
        query = f"?limit=2&status={status}" + (f"&cursor={cursor}" if cursor else "")
        data = body(api.get(f"/api/articles{query}", as_="viewer"))
        pages += 1
        assert len(data["items"]) <= 2
        seen += [a["id"] for a in data["items"]]
        cursor = data["next_cursor"]
        if cursor is None:
            break
    assert seen == ids[::-1]
    assert pages in (3, 4)  # DynamoDB may end on an empty page


def _first_cursor(api, query="?limit=1"):
    _create(api), _create(api)
    cursor = body(api.get(f"/api/articles{query}", as_="viewer"))["next_cursor"]
    assert cursor
    return cursor


def test_a_tampered_cursor_is_400(api):
    cursor = _first_cursor(api)
    tampered = ("B" if cursor[0] != "B" else "C") + cursor[1:]
    response = api.get(f"/api/articles?limit=1&cursor={tampered}", as_="viewer")
    assert response.status_code == 400
    assert _field(response) == "cursor"


@pytest.mark.parametrize("other", ["?status=DRAFT", "?status=PUBLISHED"])
def test_a_cursor_of_another_listing_is_400(api, other):
    cursor = _first_cursor(api)
    response = api.get(f"/api/articles{other}&cursor={cursor}", as_="viewer")
    assert response.status_code == 400
    assert _field(response) == "cursor"


# --- analytics --------------------------------------------------------------------------------


def test_an_analytics_event_is_accepted_and_stored_with_a_ttl(api):
    article = _create(api)
    response = api.post("/api/analytics/events", {"article_id": article["id"], "type": "view"}, as_="viewer")
    assert response.status_code == 202
    items = aws.table("analytics_events").query(
        IndexName="by_article", KeyConditionExpression=Key("article_id").eq(article["id"])
    )["Items"]
    assert len(items) == 1
    item = items[0]
    assert item["type"] == "view" and item["user_id"] == api.user("viewer")["id"]
    assert int(item["ttl"]) > 0 and item["expiry_day"] >= item["day"]


@pytest.mark.parametrize("article_id", ["0" * 32, "nope"])
def test_an_event_about_an_unknown_article_is_404(api, article_id):
    response = api.post("/api/analytics/events", {"article_id": article_id, "type": "click"}, as_="viewer")
    assert response.status_code == 404


def test_an_unknown_event_type_is_400(api):
    article = _create(api)
    response = api.post("/api/analytics/events", {"article_id": article["id"], "type": "like"}, as_="viewer")
    assert response.status_code == 400
    assert _field(response) == "type"


# --- settings ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [True, None, 3, 2.5, -1e-5, "text", [1, "two", {"three": 3.0}], {"nested": {"list": [0.1, None]}}],
)
def test_a_setting_stores_any_json_value(api, value):
    response = api.put("/api/settings/site.name", {"value": value}, as_="admin")
    assert response.status_code == 200
    assert body(response)["value"] == value
    listed = body(api.get("/api/settings", as_="admin"))
    assert [(s["key"], s["value"]) for s in listed["items"]] == [("site.name", value)]
    assert listed["next_cursor"] is None


def test_putting_a_setting_again_replaces_it_and_records_who(api):
    api.put("/api/settings/retention_days", {"value": 30}, as_="admin")
    response = api.put("/api/settings/retention_days", {"value": 60}, as_="admin")
    assert body(response)["updated_by"] == api.user("admin")["id"]
    items = body(api.get("/api/settings", as_="admin"))["items"]
    assert [(s["key"], s["value"]) for s in items] == [("retention_days", 60)]


def test_settings_list_in_key_order(api):
    for key in ("b", "a", "c.d"):
        api.put(f"/api/settings/{key}", {"value": key}, as_="admin")
    assert [s["key"] for s in body(api.get("/api/settings", as_="admin"))["items"]] == ["a", "b", "c.d"]


@pytest.mark.parametrize("key", ["Upper", "1starts-with-digit", "has space", "k" * 129, "_x", "a$b"])
def test_a_bad_setting_key_is_400_naming_key(api, key):
    response = api.put(f"/api/settings/{key}", {"value": 1}, as_="admin")
    assert response.status_code == 400
    assert _field(response) == "key"


def _deep(levels: int) -> object:
    value: object = 1
    for _ in range(levels):
        value = [value]
    return value


@pytest.mark.parametrize(
    "raw",
    [
        pytest.param(json.dumps({"value": "x" * (33 * 1024)}), id="oversized"),
        pytest.param(json.dumps({"value": ["x" * 1000] * 40}), id="oversized-list"),
        pytest.param('{"value": NaN}', id="nan"),
        pytest.param('{"value": [Infinity]}', id="infinity"),
        pytest.param('{"value": {"a": -Infinity}}', id="minus-infinity"),
        pytest.param('{"value": 1e400}', id="float-overflow"),
        pytest.param('{"value": 1e200}', id="beyond-dynamodb"),
        pytest.param('{"value": ' + "9" * 39 + "}", id="39-digits"),
        pytest.param(json.dumps({"value": _deep(17)}), id="17-levels"),
        pytest.param(json.dumps({"value": _deep(900)}), id="900-levels"),
    ],
)
def test_a_value_dynamodb_cannot_hold_is_400_naming_value(api, raw):
    response = api.put("/api/settings/limits", raw=raw.encode(), as_="admin")
    assert response.status_code == 400, response.body
    assert _field(response) == "value"
    assert body(api.get("/api/settings", as_="admin"))["items"] == []


def test_a_value_at_the_limits_is_stored(api):
    value = {"deep": _deep(15), "n": 10**38 - 1, "s": "x" * (31 * 1024)}
    response = api.put("/api/settings/limits", {"value": value}, as_="admin")
    assert response.status_code == 200
    assert body(response)["value"] == value
