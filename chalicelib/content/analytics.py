"""Analytics events (view / click / share), stored by UTC day with a TTL.

The partition is the event's day, so the daily aggregation reads one day with a Query; the
`by_article` index answers per-article questions and finds the events of a deleted article.
"""

from __future__ import annotations

import uuid
from typing import Any, Literal

from pydantic import Field

from chalicelib import aws, timeutil
from chalicelib.http import Body

RETENTION_SECONDS = 90 * 24 * 3600
EVENT_TYPES = ("view", "click", "share")


class NewEvent(Body):
    article_id: str = Field(min_length=1, max_length=64)
    type: Literal["view", "click", "share"]


class AnalyticsEvents:
    def __init__(self, table: Any) -> None:
        self._table = table

    def record(self, event: NewEvent, user_id: str | None) -> dict[str, Any]:
        now = timeutil.now()
        item = {
            "day": timeutil.day(now),
            "sk": f"{timeutil.iso_ms(now)}#{uuid.uuid4().hex[:12]}",
            "article_id": event.article_id,
            "type": event.type,
            "user_id": user_id or "",
            "at": timeutil.iso_ms(now),
            **timeutil.ttl_fields(now + RETENTION_SECONDS),
        }
        self._table.put_item(Item=item)
        return item


def events() -> AnalyticsEvents:
    return AnalyticsEvents(aws.table("analytics_events"))
