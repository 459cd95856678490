"""Counters kept as events are written answer the aggregates exactly as the raw events would
(issue 18): the analytics reports from per-day counts, on the same data, across day boundaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib import aws, timeutil
from chalicelib.content import analytics, reports
from tests.functional.audit_helpers import with_clock

MIDNIGHT = datetime(2026, 11, 24, tzinfo=UTC).timestamp()  # Tuesday of ISO week 2026-W48


def _record(at: float, article_id: str, kind: str) -> None:
    with_clock(at, lambda: analytics.events().record(analytics.NewEvent(article_id=article_id, type=kind), "u-1"))


@pytest.fixture
def table(aws_mock):
    return aws.table("analytics_events")


def _raw(table, day):
    return reports.aggregate(reports.read_day(table, day))


def test_day_counts_equal_the_raw_events_across_a_day_boundary(table):
    rows = [
        (MIDNIGHT - 0.001, "a", "view"),  # the last millisecond of Monday
        (MIDNIGHT - 3600, "a", "click"),
        (MIDNIGHT - 5, "b", "share"),
        (MIDNIGHT, "a", "view"),  # the first of Tuesday
        (MIDNIGHT + 1, "b", "view"),
        (MIDNIGHT + 86399.999, "c", "click"),  # the last of Tuesday
        (MIDNIGHT + 86400, "c", "view"),  # Wednesday
    ]
    for at, article_id, kind in rows:
        _record(at, article_id, kind)
    for day in ("2026-11-23", "2026-11-24", "2026-11-25"):
        assert reports.day_aggregate(table, day) == _raw(table, day), day
    assert reports.day_aggregate(table, "2026-11-24")["total"] == {"view": 2, "click": 1, "share": 0, "events": 3}
    assert reports.day_aggregate(table, "2026-11-26")["total"]["events"] == 0


def test_the_daily_report_reads_one_count_per_article_not_every_event(table):
    for i in range(30):
        _record(MIDNIGHT + i, "a" if i % 3 else "b", ("view", "click", "share")[i % 3])
    read = []
    real_query = table.query

    def query(**kwargs):
        result = real_query(**kwargs)
        read.append(result["ScannedCount"])
        return result

    table.query = query
    aggregated = reports.day_aggregate(table, "2026-11-24")
    assert sum(read) == 2  # the counts of a and b
    table.query = real_query
    assert aggregated == _raw(table, "2026-11-24")


def test_the_weekly_report_from_counts_equals_the_one_from_events(table):
    for i, day_start in enumerate((MIDNIGHT - 86400, MIDNIGHT, MIDNIGHT + 5 * 86400, MIDNIGHT + 6 * 86400)):
        for j in range(i + 2):
            _record(day_start + j * 7000, f"a{j % 3}", ("view", "click", "share")[(i + j) % 3])
    days = reports.week_days(reports.parse_week("2026-W48"))
    from_counts = reports.weekly_report("2026-W48", {d: reports.day_aggregate(table, d) for d in days}, "t")
    from_events = reports.weekly_report("2026-W48", {d: _raw(table, d) for d in days}, "t")
    assert from_counts == from_events
    assert from_counts["total"]["events"] == 2 + 3 + 4  # Monday 30 Nov is the next week


def test_an_event_whose_write_fails_is_neither_stored_nor_counted(table, monkeypatch):
    from botocore.exceptions import ClientError

    client = table.meta.client
    real = client.transact_write_items
    calls = []

    def refuse(**kwargs):
        calls.append(kwargs)
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")

    monkeypatch.setattr(client, "transact_write_items", refuse)
    with pytest.raises(ClientError):
        _record(MIDNIGHT, "a", "view")
    monkeypatch.setattr(client, "transact_write_items", real)
    assert len(calls) == 1
    assert reports.day_aggregate(table, "2026-11-24") == _raw(table, "2026-11-24")
    assert reports.day_aggregate(table, "2026-11-24")["total"]["events"] == 0


def test_orphan_cleanup_removes_the_counts_with_the_events(table, monkeypatch):
    from chalicelib.content import articles as content
    from chalicelib.jobs.processors import cleanup

    monkeypatch.setattr(timeutil, "now", lambda: MIDNIGHT + 3600)
    _record(MIDNIGHT + 10, "gone", "view")
    _record(MIDNIGHT + 20, "gone", "click")
    _record(MIDNIGHT + 30, "kept", "view")
    monkeypatch.setattr(cleanup, "missing_articles", lambda store, ids: {"gone"} & ids)

    class Ctx:
        def check_deadline(self, needed=0.0):
            pass

    assert cleanup.orphan_events(table, content.articles(), Ctx(), days=1) == 2
    assert reports.day_aggregate(table, "2026-11-24") == _raw(table, "2026-11-24")
    assert set(reports.day_aggregate(table, "2026-11-24")["articles"]) == {"kept"}
