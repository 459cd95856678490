"""Analytics reports: how a day's or an ISO week's events add up, and where reports are stored.

Reports are settings of scope `report`, keyed `analytics.daily.<YYYY-MM-DD>` and
`analytics.weekly.<YYYY-Www>`; the analytics jobs write them and `GET /api/analytics/reports/...`
reads them. A day's aggregate comes from its per-article counts (`day_aggregate`: one item per
article that had events, written with each event), or, for a day without counts, from its
events (one Query on that day's partition, paged); the aggregation of events is pure.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

from chalicelib import aws, errors, timeutil
from chalicelib.content import settings as settings_store
from chalicelib.content.analytics import EVENT_TYPES

DAY_PATTERN = re.compile(r"^\d{4}-\d{2}-\d{2}$")
WEEK_PATTERN = re.compile(r"^(\d{4})-W(\d{2})$")
MAX_ARTICLES = 500  # a stored report keeps the busiest articles (a setting is one DynamoDB item)
TOP = 5


def parse_day(value: str) -> date:
    """`YYYY-MM-DD` as a date; ValueError otherwise."""
    if not isinstance(value, str) or not DAY_PATTERN.match(value):
        raise ValueError("must be a date as YYYY-MM-DD")
    return date.fromisoformat(value)


def parse_week(value: str) -> date:
    """`YYYY-Www` (ISO week) as the Monday it starts on; ValueError otherwise (also week 53 of a
    year that has 52)."""
    match = WEEK_PATTERN.match(value) if isinstance(value, str) else None
    if not match:
        raise ValueError("must be an ISO week as YYYY-Www")
    year, week = int(match.group(1)), int(match.group(2))
    try:
        return date.fromisocalendar(year, week, 1)
    except ValueError:
        raise ValueError(f"{value} is not a week of {year}") from None


def yesterday(now: float | None = None) -> date:
    today = datetime.fromtimestamp(timeutil.now() if now is None else now, UTC).date()
    return today - timedelta(days=1)


def daily_key(day: str) -> str:
    return f"analytics.daily.{day}"


def weekly_key(week: str) -> str:
    return f"analytics.weekly.{week}"


def _zero() -> dict[str, int]:
    return {**{t: 0 for t in EVENT_TYPES}, "events": 0}


def aggregate(events: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Counts per type, in total and per article, of `{"article_id", "type"}` events."""
    total = _zero()
    articles: dict[str, dict[str, int]] = {}
    for event in events:
        kind = event.get("type")
        if kind not in EVENT_TYPES:
            continue
        counts = articles.setdefault(str(event.get("article_id", "")), _zero())
        for bucket in (total, counts):
            bucket[kind] += 1
            bucket["events"] += 1
    return {"total": total, "articles": articles}


def merge(parts: Iterable[dict[str, Any]]) -> dict[str, Any]:
    """Add aggregates up (the days of a week)."""
    total = _zero()
    articles: dict[str, dict[str, int]] = {}
    for part in parts:
        for key, value in part["total"].items():
            total[key] = total.get(key, 0) + value
        for article_id, counts in part["articles"].items():
            into = articles.setdefault(article_id, _zero())
            for key, value in counts.items():
                into[key] = into.get(key, 0) + value
    return {"total": total, "articles": articles}


def top_articles(articles: dict[str, dict[str, int]], n: int = TOP) -> list[dict[str, Any]]:
    ranked = sorted(articles.items(), key=lambda kv: (-kv[1]["events"], kv[0]))
    return [{"article_id": article_id, **counts} for article_id, counts in ranked[:n]]


def _bounded(aggregated: dict[str, Any]) -> dict[str, Any]:
    articles = aggregated["articles"]
    kept = dict(sorted(articles.items(), key=lambda kv: (-kv[1]["events"], kv[0]))[:MAX_ARTICLES])
    return {
        "total": aggregated["total"],
        "article_count": len(articles),
        "articles": kept,
        "articles_truncated": len(kept) < len(articles),
        "top_articles": top_articles(articles),
    }


def daily_report(day: str, aggregated: dict[str, Any], generated_at: str) -> dict[str, Any]:
    return {"period": "daily", "date": day, "generated_at": generated_at, **_bounded(aggregated)}


def weekly_report(week: str, days: dict[str, dict[str, Any]], generated_at: str) -> dict[str, Any]:
    """`days`: each day of the week (YYYY-MM-DD) -> its aggregate."""
    merged = merge(days.values())
    ordered = sorted(days)
    return {
        "period": "weekly",
        "week": week,
        "from": ordered[0],
        "to": ordered[-1],
        "generated_at": generated_at,
        "days": {day: days[day]["total"] for day in ordered},
        **_bounded(merged),
    }


def week_days(monday: date) -> list[str]:
    return [(monday + timedelta(days=i)).isoformat() for i in range(7)]


def day_aggregate(table: Any, day: str) -> dict[str, Any]:
    """One day's aggregate from its counts (a Query of `daycounts#<day>`: one item per article),
    or from its events when it has no counts (a day stored before the counts existed)."""
    from chalicelib.content.analytics import day_counts_key

    counts = list(_query_all(table, day_counts_key(day), None))
    if not counts:
        return aggregate(read_day(table, day))
    articles = {str(c["sk"]): {t: int(c.get(f"count_{t}", 0)) for t in EVENT_TYPES} for c in counts}
    for value in articles.values():
        value["events"] = sum(value.values())
    total = _zero()
    for value in articles.values():
        for key in total:
            total[key] += value[key]
    return {"total": total, "articles": articles}


def day_articles(table: Any, day: str) -> set[str]:
    """The articles that had events on `day` (from its counts; its events for an older day)."""
    from chalicelib.content.analytics import day_counts_key

    ids = {str(c["sk"]) for c in _query_all(table, day_counts_key(day), "sk")}
    return ids or {str(e.get("article_id")) for e in read_day(table, day)}


def _query_all(
    table: Any, partition: str, projection: str | None, names: dict[str, str] | None = None
) -> Iterator[dict[str, Any]]:
    """Every item of one `day` partition (a day of events, or its counts), paged."""
    kwargs: dict[str, Any] = {
        "KeyConditionExpression": "#d = :d",
        "ExpressionAttributeNames": {"#d": "day", **(names or {})},
        "ExpressionAttributeValues": {":d": partition},
    }
    if projection:
        kwargs["ProjectionExpression"] = projection
    for page in aws.query_pages(table, **kwargs):
        yield from page.get("Items", [])


def read_day(table: Any, day: str) -> Iterator[dict[str, Any]]:
    """Every event of one UTC day (its partition), paged."""
    return _query_all(table, day, "article_id, #t", {"#t": "type"})


def stored(key: str, store: settings_store.Settings | None = None) -> dict[str, Any] | None:
    """A stored report (its value), or None."""
    found = (store or settings_store.settings()).get(key, scope=settings_store.REPORT)
    return found["value"] if found else None


def find(period: str, params: dict[str, str]) -> dict[str, Any]:
    """The stored daily (`?date=`) or weekly (`?week=`) report: errors.Invalid for a bad value,
    errors.NotFound until the report is generated."""
    name, parse, key = ("date", parse_day, daily_key) if period == "daily" else ("week", parse_week, weekly_key)
    value = params.get(name)
    if not value:
        raise errors.Invalid("is required", name)
    try:
        parse(value)
    except ValueError as exc:
        raise errors.Invalid(str(exc), name) from None
    found = stored(key(value))
    if found is None:
        raise errors.NotFound(f"the {period} report for {value}")
    return found
