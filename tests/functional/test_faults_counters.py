"""Counters under faults inside AWS (tests/faults.py): an ADD that AWS applied but whose answer was
lost, sent again by the SDK (or by the next flush), counts once."""

from __future__ import annotations

from collections import Counter

from chalicelib import aws, timeutil
from chalicelib.content import analytics
from chalicelib.jobs import ratelimit, timeline
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


def test_an_article_s_running_count_whose_answer_was_lost_counts_once(faults):
    faults.lose("UpdateItem", match="ADD #c :one")
    counts, _ = analytics.counts().add(ARTICLE, "share")
    assert faults.met["UpdateItem"] == 1
    assert counts["share"] == 1
    counts, _ = analytics.counts().add(ARTICLE, "share")
    assert counts["share"] == 2


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
