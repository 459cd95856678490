"""Per-queue rate limits: at most `max` job starts per `duration_seconds`, across every Lambda.

The limit is a setting (settings table, scope `dashboard`, key `limits#<queue>`, next to the pause
flags), set by an admin through `PUT /api/queues/{queue}/limits` and read by each container at
most once every CACHE_SECONDS (`limit_of`).

The count is a fixed window aligned on the epoch: item `rate#<queue>#<window number>` of the
`jobs` table (window number = floor(now / duration)), taken by one conditional UpdateItem per
start, `ADD n 1` if `n < max`. Every Lambda of the queue shares that item, so no window ever
counts more than `max` starts; a refused start learns how long until the next window opens.
Each window is its own partition key, so a partition sees at most `max` accepted writes (plus the
refused tries) per window; DynamoDB takes 1,000 writes a second on one partition, which bounds
the documented limits to `max / duration_seconds` <= 500 a second per queue. The window items
expire (TTL) an hour after their window closes; they are not in the table's indexes.

`wait_for_start` is the worker's limiter (app.py's `job_worker`): 0 when the job may start now
(its start counted), else the seconds to put the message back for: until the next window opens,
plus a random part of one window, so a backlog comes back spread over the window instead of all
at its first second.
"""

from __future__ import annotations

import math
import random
import threading
import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, timeutil
from chalicelib.util import ONCE_CONDITION, ONCE_NAMES, ONCE_SET, once_token, refused_item, to_dynamo

SCOPE = "dashboard"
PREFIX = "limits#"
CACHE_SECONDS = 5.0  # how stale a container's copy of a queue's limit may be
WINDOW_TTL_SECONDS = 3600  # a window's counter outlives its window by this much
MAX_RATE_PER_SECOND = 500  # the documented bound: one partition takes 1,000 writes a second


@dataclass(frozen=True)
class RateLimit:
    max: int
    duration_seconds: float

    def public(self) -> dict[str, Any]:
        return {"max": self.max, "duration_seconds": self.duration_seconds}

    @classmethod
    def of(cls, item: dict[str, Any] | None) -> RateLimit | None:
        if not item or "max" not in item:
            return None
        duration = float(item["duration_seconds"])
        return cls(int(item["max"]), int(duration) if duration.is_integer() else duration)


class LimitSettings:
    """The stored rate limits (settings table)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def set(self, queue: str, limit: RateLimit | None, user_id: str | None) -> None:
        key = {"scope": SCOPE, "key": PREFIX + queue}
        if limit is None:
            self._table.delete_item(Key=key)
        else:
            self._table.put_item(
                Item={
                    **key,
                    "max": limit.max,
                    "duration_seconds": to_dynamo(float(limit.duration_seconds)),
                    "updated_at": timeutil.iso_ms(),
                    "updated_by": user_id or "",
                }
            )
        forget()

    def get(self, queue: str) -> RateLimit | None:
        return RateLimit.of(self._table.get_item(Key={"scope": SCOPE, "key": PREFIX + queue}).get("Item"))

    def all(self) -> dict[str, RateLimit]:
        """Queue -> its rate limit, for the queues that have one (one Query)."""
        result = self._table.query(KeyConditionExpression=Key("scope").eq(SCOPE) & Key("key").begins_with(PREFIX))
        found = {item["key"][len(PREFIX) :]: RateLimit.of(item) for item in result.get("Items", [])}
        return {queue: limit for queue, limit in found.items() if limit is not None}


def settings() -> LimitSettings:
    return LimitSettings(aws.table("settings"))


_cache: dict[str, tuple[float, RateLimit | None]] = {}
_cache_lock = threading.Lock()


def limit_of(queue: str) -> RateLimit | None:
    """The queue's rate limit, as this container last read it (at most CACHE_SECONDS ago)."""
    now = time.monotonic()
    with _cache_lock:
        cached = _cache.get(queue)
    if cached is not None and now - cached[0] < CACHE_SECONDS:
        return cached[1]
    limit = settings().get(queue)
    with _cache_lock:
        _cache[queue] = (now, limit)
    return limit


def forget() -> None:
    """Drop this container's copies of the limits (after a change, and between tests)."""
    with _cache_lock:
        _cache.clear()


class Windows:
    """The shared window counters (the `jobs` table)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def take(self, queue: str, limit: RateLimit, now: float) -> float:
        """Count one start in the current window: 0.0 if it fits, else the seconds until the next
        window opens (nothing counted)."""
        number = math.floor(now / limit.duration_seconds)
        opens = (number + 1) * limit.duration_seconds
        client = self._table.meta.client
        token = once_token()
        try:
            self._table.update_item(
                Key={"id": f"rate#{queue}#{number}"},
                UpdateExpression="ADD n :one SET #ttl = if_not_exists(#ttl, :ttl), " + ONCE_SET,
                ConditionExpression="(attribute_not_exists(n) OR n < :max) AND " + ONCE_CONDITION,
                ExpressionAttributeNames={"#ttl": "ttl", **ONCE_NAMES},
                ExpressionAttributeValues={
                    ":one": 1,
                    ":max": limit.max,
                    ":ttl": int(opens) + WINDOW_TTL_SECONDS,
                    ":once": token,
                },
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException as exc:
            window = refused_item(exc)
            if window is not None and window.get(ONCE_NAMES["#once"]) == token:
                return 0.0  # this very start, counted already: its answer was lost, the SDK sent it again
            return max(opens - now, 0.001)
        return 0.0


def wait_for_start(queue: str) -> float:
    """The worker's limiter: 0.0 when a job of `queue` may start now (and it is counted), else
    the seconds until its rate limit lets one start."""
    limit = limit_of(queue)
    if limit is None:
        return 0.0
    wait = Windows(aws.table("jobs")).take(queue, limit, timeutil.now())
    return wait + random.random() * limit.duration_seconds if wait else 0.0
