"""The sweep: what DynamoDB's TTL has not removed yet, one way for every swept table.

DynamoDB's TTL deletes expired items in the background, usually within days. The sweeps catch
the rest (each capability's sweep jobs use this: auth's sessions and login attempts, content's
generator logs, analytics events and orphans, the audit trail's activity logs): `sweep_expired`
Queries the `by_expiry` index (expiry day, ttl) for the days just past, deletes what has expired,
and stops after a bounded number of pages or when the job's time is up (`ctx.time_left()`),
answering `more: true`; `carry_on` then enqueues the same job again, which carries on. Never a Scan.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, catalog, timeutil
from chalicelib.jobs.processor import Job, JobContext

LOOKBACK_DAYS = 14  # expiry days swept, back from today (TTL removes older ones long before)
PAGE_SIZE = 100
MAX_PAGES = 50


def delete_keys(table: Any, key_names: list[str], items: list[dict[str, Any]]) -> None:
    """Delete the items named by `items`' keys (BatchWriteItem, 25 a request)."""
    with table.batch_writer(overwrite_by_pkeys=key_names) as writer:
        for item in items:
            writer.delete_item(Key={name: item[name] for name in key_names})


def sweep_expired(
    table: Any, spec: catalog.Table, ctx: JobContext, delete: Callable[..., None] = delete_keys
) -> dict[str, Any]:
    """Delete `spec`'s expired items (`ttl` before now), found by its `by_expiry` index, with
    `delete`; bounded in time and in pages (at most LOOKBACK_DAYS + 1 + MAX_PAGES Queries,
    MAX_PAGES * PAGE_SIZE deletes). `more: true` when it stopped before the end."""
    now = timeutil.now()
    today = datetime.fromtimestamp(now, UTC).date()
    key_names = [spec.pk] + ([spec.sk] if spec.sk else [])
    deleted, pages = 0, 0
    for back in range(LOOKBACK_DAYS, -1, -1):
        day = (today - timedelta(days=back)).isoformat()
        start: dict[str, Any] | None = None
        while True:
            if pages >= MAX_PAGES or ctx.time_left() <= 0:
                return {"table": spec.name, "deleted": deleted, "pages": pages, "more": True}
            kwargs: dict[str, Any] = {
                "IndexName": "by_expiry",
                "KeyConditionExpression": Key("expiry_day").eq(day) & Key("ttl").lt(int(now)),
                "Limit": PAGE_SIZE,
                "ProjectionExpression": ", ".join(f"#k{i}" for i in range(len(key_names))),
                "ExpressionAttributeNames": {f"#k{i}": name for i, name in enumerate(key_names)},
            }
            if start:
                kwargs["ExclusiveStartKey"] = start
            result = table.query(**kwargs)
            items = result.get("Items", [])
            if items:  # the budget counts pages that delete: an empty day costs one Query
                pages += 1
                delete(table, key_names, items)
                deleted += len(items)
            start = result.get("LastEvaluatedKey")
            if not start:
                break
    return {"table": spec.name, "deleted": deleted, "pages": pages, "more": False}


def sweep(name: str, ctx: JobContext) -> dict[str, Any]:
    return sweep_expired(aws.table(name), catalog.table(name), ctx)


def carry_on(job: Job, result: dict[str, Any], **carried: Any) -> dict[str, Any]:
    """When `result` says `more`, enqueue `job` again (same queue, type and payload, plus what
    `carried` names) to go on where it stopped, and name that job in `continued_by`. Once per
    job: a redelivery of `job` gets the same follow-up (its id is the idempotency key)."""
    if not result.get("more"):
        return result
    from chalicelib import jobs

    payload = {**job["payload"], **carried, "continues": job["id"]}
    follow_up = jobs.enqueue(job["queue"], job["type"], payload, idempotency_key=f"{job['id']}#continued")
    return {**result, "continued_by": follow_up["id"]}
