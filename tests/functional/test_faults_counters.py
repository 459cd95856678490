"""Counters under faults inside AWS (tests/faults.py): an ADD that AWS applied but whose answer was
lost, sent again by the SDK (or by the next flush), counts once."""

from __future__ import annotations

from collections import Counter

import pytest

from chalicelib import aws, timeutil
from chalicelib.content import analytics
from chalicelib.jobs import ratelimit, timeline
from tests.conftest import body
from tests.faults import OUTLAST

ARTICLE = "c" * 32


def test_an_analytics_event_whose_answer_was_lost_is_stored_and_counted_once(faults):
    faults.lose("TransactWriteItems")
    item = analytics.events().record(analytics.NewEvent(article_id=ARTICLE, type="view"), None)
    assert faults.met["TransactWriteItems"] == 1
    table = aws.table("analytics_events")
    day = table.get_item(Key={"day": analytics.day_counts_key(item["day"]), "sk": ARTICLE})["Item"]
    assert int(day["count_view"]) == 1
    stored = table.query(
        KeyConditionExpression="#d = :d",
        ExpressionAttributeNames={"#d": "day"},
        ExpressionAttributeValues={":d": item["day"]},
    )["Items"]
    assert [e["sk"] for e in stored] == [item["sk"]]


def test_an_analytics_event_whose_answer_was_lost_is_in_the_article_s_running_counts_once(faults):
    faults.lose("TransactWriteItems")
    analytics.ingest(analytics.NewEvent(article_id=ARTICLE, type="share"), None)
    assert faults.met["TransactWriteItems"] == 1
    assert analytics.counts().read(ARTICLE)[0]["share"] == 1
    analytics.ingest(analytics.NewEvent(article_id=ARTICLE, type="share"), None)
    assert analytics.counts().read(ARTICLE)[0]["share"] == 2


def post_event(api, key: str | None, kind: str = "view"):
    headers = {"Idempotency-Key": key} if key else {}
    return api.post("/api/analytics/events", {"article_id": ARTICLE, "type": kind}, as_="viewer", headers=headers)


@pytest.fixture
def article(api, monkeypatch):
    from chalicelib.content import articles

    monkeypatch.setattr(articles, "find", lambda article_id: {"id": article_id})
    api.token("viewer")


def stored_events() -> int:
    from boto3.dynamodb.conditions import Key

    day = timeutil.day(timeutil.now())
    return aws.table("analytics_events").query(KeyConditionExpression=Key("day").eq(day), Select="COUNT")["Count"]


def test_an_analytics_event_repeated_by_its_client_with_its_idempotency_key_counts_once(api, faults, article):
    # the first answer is lost after the event was counted: the SDK's repeats all lose theirs too
    faults.lose("TransactWriteItems", times=OUTLAST)
    assert post_event(api, "click-7f3a").status_code == 503
    assert faults.met["TransactWriteItems"] == OUTLAST
    assert post_event(api, "click-7f3a").status_code == 202  # the client's repeat, same key
    assert analytics.counts().read(ARTICLE)[0]["view"] == 1
    assert stored_events() == 1
    assert post_event(api, "click-7f3b").status_code == 202  # another key: another event
    assert post_event(api, None).status_code == 202  # no key: each call is an event
    assert analytics.counts().read(ARTICLE)[0]["view"] == 3
    assert stored_events() == 3


def test_a_malformed_idempotency_key_is_refused_naming_the_header(api, article):
    response = post_event(api, "not a key!")
    assert response.status_code == 400
    assert body(response)["Errors"][0]["field"] == "Idempotency-Key"
    assert analytics.counts().read(ARTICLE)[0]["view"] == 0


def test_a_rate_limited_start_whose_answer_was_lost_is_counted_once(faults):
    limit = ratelimit.RateLimit(max=2, duration_seconds=60)
    windows = ratelimit.Windows(aws.table("jobs"))
    now = timeutil.now()
    faults.lose("UpdateItem", match="ADD n :one")
    assert windows.take("emails", limit, now) == 0.0  # started, counted once
    assert faults.met["UpdateItem"] == 1
    assert windows.take("emails", limit, now) == 0.0  # so the second start still fits
    assert windows.take("emails", limit, now) > 0


def _minute(queue: str, minute: int) -> dict:
    key = {"queue_day": f"{queue}#{timeutil.day(minute)}", "minute": minute}
    return aws.table(timeline.TABLE).get_item(Key=key).get("Item") or {}


def test_job_metrics_whose_answer_was_lost_count_once(faults):
    minute = int(timeutil.now() // 60) * 60
    faults.lose("UpdateItem", match="job_metrics")
    timeline.BUFFER.get()[("emails", minute)] = Counter({"completed": 1, "d3": 1})
    timeline.flush()
    assert faults.met["UpdateItem"] == 1
    assert int(_minute("emails", minute)["completed"]) == 1


def test_job_metrics_applied_but_refused_at_last_are_not_counted_again_by_the_next_flush(faults, monkeypatch):
    monkeypatch.setattr(timeline, "_unsent", [])
    minute = int(timeutil.now() // 60) * 60
    faults.lose("UpdateItem", times=OUTLAST, match="job_metrics")  # applied, and every answer lost
    timeline.BUFFER.get()[("emails", minute)] = Counter({"completed": 1})
    timeline.flush()
    assert len(timeline._unsent) == 1  # kept for the next flush
    timeline.flush()
    assert timeline._unsent == []
    assert int(_minute("emails", minute)["completed"]) == 1
