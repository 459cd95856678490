"""Per-user quotas on what a user can create without bound: the counters (the numbers are
`chalicelib.limits`, per stage through the environment).

- `tickets_per_minute`: WebSocket tickets (`POST /api/realtime/ticket`); a ticket lives 60 s, so
  at most twice this many are outstanding at any time;
- `events_per_minute`, `events_per_hour`: analytics events (`POST /api/analytics/events`);
- `delayed_jobs`: jobs a user caused that wait delayed at once (`generate` with `delay_seconds`).

Past a quota the answer is 429 with `Retry-After` and the error shape naming the quota
(`QuotaExceeded`: `"Errors": [{"field": "quota", "message": "<quota>"}]`).

The windowed quotas are fixed windows aligned on the epoch, one item per user and window in the
`jobs` table (`quota#<quota>#<user>#<window>`, as the queues' `rate#` counters), taken by one
conditional UpdateItem, `ADD n 1` if `n < limit`, expiring an hour after the window; it carries a
write token (`util.ONCE_CONDITION`), so an ADD whose answer was lost, sent again by the SDK, neither
counts twice nor refuses the user for its own count. The delayed
jobs are a set of job ids on one item per user (`quota#delayed#<user>`), `ADD`ed by a conditional
UpdateItem while the set is under the quota; jobs that stopped waiting (ran, cancelled, promoted,
never created) are taken out only when the quota refuses, after one BatchGetItem of the set's jobs,
so no job transition has to know about quotas and a lost answer never counts a job twice.
"""

from __future__ import annotations

import math
from typing import Any

from chalicelib import aws, errors, timeutil
from chalicelib.util import ONCE_CONDITION, ONCE_NAMES, ONCE_SET, once_applied, once_token, refused_item

WINDOW_KEEP_SECONDS = 3600  # a window's counter outlives its window by this much (TTL)
DELAYED = "delayed_jobs"


class QuotaExceeded(errors.Throttled):
    """A user's quota is used up: 429, `Retry-After`, and the quota named in `Errors`."""

    def __init__(self, quota: str, limit: int, retry_after: int, what: str) -> None:
        super().__init__(f"quota {quota} exceeded: at most {limit} {what}; try again later", max(1, retry_after))
        self.quota = quota
        self.details = [{"field": "quota", "message": quota}]


def _table() -> Any:
    return aws.table("jobs")


def take(quota: str, user_id: str, limit: int, window_seconds: int, what: str, table: Any = None) -> None:
    """Count one more of `quota` for `user_id` in the current window, or QuotaExceeded."""
    table = table if table is not None else _table()
    now = timeutil.now()
    window = int(now // window_seconds)
    client = table.meta.client
    token = once_token()
    try:
        table.update_item(
            Key={"id": f"quota#{quota}#{user_id}#{window}"},
            UpdateExpression="ADD n :one SET #ttl = if_not_exists(#ttl, :ttl), " + ONCE_SET,
            ConditionExpression="(attribute_not_exists(n) OR n < :limit) AND " + ONCE_CONDITION,
            ExpressionAttributeNames={"#ttl": "ttl", **ONCE_NAMES},
            ExpressionAttributeValues={
                ":one": 1,
                ":limit": limit,
                ":ttl": (window + 1) * window_seconds + WINDOW_KEEP_SECONDS,
                ":once": token,
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except client.exceptions.ConditionalCheckFailedException as exc:
        if once_applied(refused_item(exc), token):
            return  # this very count, applied already: its answer was lost and the SDK sent it again
        retry_after = math.ceil((window + 1) * window_seconds - now)
        raise QuotaExceeded(quota, limit, retry_after, what) from None


def hold_delayed(user_id: str, job_id: str, limit: int, table: Any = None) -> None:
    """Count `job_id` among `user_id`'s delayed jobs, or QuotaExceeded when `limit` wait already
    (after taking out the jobs that no longer wait)."""
    table = table if table is not None else _table()
    key = {"id": f"quota#delayed#{user_id}"}
    client = table.meta.client
    for attempt in range(2):
        try:
            table.update_item(
                Key=key,
                UpdateExpression="ADD jobs :job",
                ConditionExpression="attribute_not_exists(jobs) OR size(jobs) < :limit OR contains(jobs, :id)",
                ExpressionAttributeValues={":job": {job_id}, ":limit": limit, ":id": job_id},
            )
            return
        except client.exceptions.ConditionalCheckFailedException:
            if attempt == 1 or not _release_finished(table, key):
                raise QuotaExceeded(DELAYED, limit, 60, "delayed jobs waiting at once") from None


def _release_finished(table: Any, key: dict[str, str]) -> bool:
    """Take the jobs that no longer wait delayed out of the set; True when any was."""
    held = table.get_item(Key=key, ConsistentRead=True).get("Item", {}).get("jobs", set())
    ids = sorted(held)
    waiting: set[str] = set()
    client = table.meta.client  # the resource's: plain values in and out, as the table's own calls
    for start in range(0, len(ids), 100):  # BatchGetItem's limit
        keys = [{"id": job_id} for job_id in ids[start : start + 100]]
        names = {"#s": "state"}
        request: dict[str, Any] = {
            table.name: {"Keys": keys, "ProjectionExpression": "id, #s", "ExpressionAttributeNames": names}
        }
        while request:
            answer = client.batch_get_item(RequestItems=request)
            found = answer["Responses"].get(table.name, [])
            waiting |= {j["id"] for j in found if j.get("state") == "delayed"}
            request = answer.get("UnprocessedKeys") or {}
    finished = held - waiting
    if finished:
        table.update_item(Key=key, UpdateExpression="DELETE jobs :done", ExpressionAttributeValues={":done": finished})
    return bool(finished)
