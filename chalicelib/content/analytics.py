"""Analytics events (view / click / share), stored by UTC day with a TTL, and per-article counts.

The partition is the event's day; the `by_article` index answers per-article questions and
finds the events of a deleted article. Each event is also counted, in the same transaction, in its
day's counts (partition `daycounts#<day>`, one item per article), which the daily and weekly
reports read: their cost follows the articles of the period, not its events. Each article's
running counts are one item of the same table (`ArticleCounts`), updated in the same transaction;
the realtime `analytics.update` announces them, at most once per few seconds.

Counted once though the SDK repeats a write whose answer was lost: the event's Put is conditional
on its (random) key, so a repeated transaction is refused and known as done. A client repeating
`POST /api/analytics/events` after a lost answer (a 503, a dropped connection) is counted once if
it sends the same `Idempotency-Key`: the key's item is written in the same transaction,
conditionally, and kept a day. One event costs one TransactWriteItems (three items; four with a
key) and one GetItem of the running counts (for the announcement).
"""

from __future__ import annotations

import uuid
from decimal import Decimal
from typing import Any, Literal

from pydantic import Field

from chalicelib import aws, timeutil
from chalicelib import events as lifecycle
from chalicelib.http import Body
from chalicelib.util import to_dynamo

RETENTION_SECONDS = 90 * 24 * 3600
COUNTS_RETENTION_SECONDS = 30 * 24 * 3600  # an article's counts, from its last event
KEY_RETENTION_SECONDS = 24 * 3600  # a client's Idempotency-Key: a repeat within a day does nothing
EVENT_TYPES = ("view", "click", "share")


class NewEvent(Body):
    article_id: str = Field(min_length=1, max_length=64)
    type: Literal["view", "click", "share"]


class AnalyticsEvents:
    def __init__(self, table: Any) -> None:
        self._table = table

    def record(self, event: NewEvent, user_id: str | None, key: str | None = None) -> dict[str, Any] | None:
        """Store the event and count it in its day's counts and its article's running counts, in
        one transaction: the counts never miss a stored event nor count one that was not stored.
        With `key` (the client's Idempotency-Key), the key's item (`key_item`) joins the
        transaction: a repeat of the key stores and counts nothing and returns None."""
        item = event_item(event.article_id, event.type, user_id, timeutil.now())
        name = self._table.name
        writes: list[dict[str, Any]] = [
            {"Put": {"TableName": name, "Item": item, "ConditionExpression": "attribute_not_exists(sk)"}},
            {"Update": {"TableName": name, **day_count_update(item)}},
            {"Update": {"TableName": name, **running_count_update(item)}},
        ]
        if key:
            seen = {
                "TableName": name,
                "Item": key_item(user_id, key, item),
                "ConditionExpression": "attribute_not_exists(sk)",
            }
            writes.append({"Put": seen})
        client = self._table.meta.client
        try:
            client.transact_write_items(TransactItems=writes)
        except client.exceptions.TransactionCanceledException as exc:
            reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
            if reasons[:1] == ["ConditionalCheckFailed"]:
                # the event (its key random, so ours) is stored already: this very transaction was
                # applied, its answer lost and the SDK sent it again; it is counted once
                return item
            if key and reasons[-1:] == ["ConditionalCheckFailed"]:
                return None  # the client's key was met before: that event is stored and counted
            raise
        return item


def key_item(user_id: str | None, key: str, item: dict[str, Any]) -> dict[str, Any]:
    """The item that holds a client's Idempotency-Key for a day (partition `key#<user>#<key>`,
    which no day can take; no `article_id`, so `by_article` lists events only): the event it
    recorded, kept KEY_RETENTION_SECONDS."""
    return {
        "day": f"key#{user_id or ''}#{key}",
        "sk": "event",
        "event": f"{item['day']}/{item['sk']}",
        **timeutil.ttl_fields(timeutil.now() + KEY_RETENTION_SECONDS),
    }


def day_counts_key(day: str) -> str:
    """The partition of one day's per-article counts (no day's own partition has a `#`)."""
    return f"daycounts#{day}"


def day_count_update(item: dict[str, Any]) -> dict[str, Any]:
    """UpdateItem arguments that count a stored event in its day's counts: one item per day and
    article (sort key the article id; no `article_id` attribute, so `by_article` lists events
    only), `count_<type>`, kept as long as the day's events."""
    return {
        "Key": {"day": day_counts_key(item["day"]), "sk": item["article_id"]},
        "UpdateExpression": "ADD #c :one SET #t = :ttl, expiry_day = :day",
        "ExpressionAttributeNames": {"#c": f"count_{item['type']}", "#t": "ttl"},
        "ExpressionAttributeValues": {":one": 1, ":ttl": item["ttl"], ":day": item["expiry_day"]},
    }


def counts_key(article_id: str) -> dict[str, Any]:
    """The key of an article's running counts (`ArticleCounts`)."""
    return {"day": f"counts#{article_id}", "sk": "counts"}


def running_count_update(item: dict[str, Any]) -> dict[str, Any]:
    """UpdateItem arguments that count a stored event in its article's running counts, kept
    COUNTS_RETENTION_SECONDS from its last event."""
    fields = timeutil.ttl_fields(timeutil.now() + COUNTS_RETENTION_SECONDS)
    return {
        "Key": counts_key(item["article_id"]),
        "UpdateExpression": "ADD #c :one SET #t = :ttl, expiry_day = :day",
        "ExpressionAttributeNames": {"#c": f"count_{item['type']}", "#t": "ttl"},
        "ExpressionAttributeValues": {":one": 1, ":ttl": fields["ttl"], ":day": fields["expiry_day"]},
    }


def event_item(article_id: str, event_type: str, user_id: str | None, now: float) -> dict[str, Any]:
    """One stored event, in its day's partition (pure but for its random id)."""
    return {
        "day": timeutil.day(now),
        "sk": f"{timeutil.iso_ms(now)}#{uuid.uuid4().hex[:12]}",
        "article_id": article_id,
        "type": event_type,
        "user_id": user_id or "",
        "at": timeutil.iso_ms(now),
        **timeutil.ttl_fields(now + RETENTION_SECONDS),
    }


class ArticleCounts:
    """Per article, running counts of its analytics events and when the next announcement of them
    may go, in one item of `analytics_events` (partition `counts#<id>`, which no day can take;
    no `article_id` attribute, so the `by_article` index lists events only)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def read(self, article_id: str) -> tuple[dict[str, int], Decimal]:
        """The article's counts and when the next announcement may go (exactly as stored, for
        `claim`): one consistent GetItem."""
        item = self._table.get_item(Key=counts_key(article_id), ConsistentRead=True).get("Item") or {}
        counts = {t: int(item.get(f"count_{t}", 0)) for t in EVENT_TYPES}
        return counts, Decimal(item.get("next_update", 0))

    def claim(self, article_id: str, seen: Decimal, next_update: float) -> bool:
        """Move the next announcement from `seen` to `next_update`; False when another ingestion
        claimed this one first (a conditional write, so it holds across Lambdas)."""
        client = self._table.meta.client
        try:
            self._table.update_item(
                Key=counts_key(article_id),
                UpdateExpression="SET next_update = :next",
                ConditionExpression="attribute_not_exists(next_update) OR next_update = :seen",
                ExpressionAttributeValues={":next": to_dynamo(next_update), ":seen": seen},
            )
        except client.exceptions.ConditionalCheckFailedException:
            return False
        return True


def events() -> AnalyticsEvents:
    return AnalyticsEvents(aws.table("analytics_events"))


def counts() -> ArticleCounts:
    return ArticleCounts(aws.table("analytics_events"))


def take_quota(user_id: str) -> None:
    """Count one event against the user's quotas (a minute's and an hour's), or QuotaExceeded (429)."""
    from chalicelib import limits, quotas

    stage = limits.limits()
    quotas.take("events_per_minute", user_id, stage.events_per_minute, 60, "analytics events a minute")
    quotas.take("events_per_hour", user_id, stage.events_per_hour, 3600, "analytics events an hour")


def ingest(event: NewEvent, user_id: str | None, key: str | None = None) -> dict[str, Any] | None:
    """Record and count one event (None: its `key` was met before, nothing done), and tell the
    listeners (the realtime `analytics.update`, which a repeat may send: the counts as they are)."""
    item = events().record(event, user_id, key)
    running, announce_after = counts().read(event.article_id)
    lifecycle.publish(lifecycle.AnalyticsRecorded(event.article_id, event.type, user_id, running, announce_after))
    return item
