"""The cleanup queue: sweeps of what TTL has not removed yet, and orphaned data.

DynamoDB's TTL deletes expired items in the background, usually within days. The sweeps catch
the rest, one way for every swept table (here `sessions`, `login_attempts`, `webhook_logs`; also
`analytics/cleanup_old_data` and the audit trail's `activity_logs`): `sweep_expired` Queries the
`by_expiry` index (expiry day, ttl) for the days just past, deletes what has expired, and stops
after a bounded number of pages or when the job's time is up (`ctx.time_left()`), answering
`more: true`; `carry_on` then enqueues the same job again, which carries on. Never a Scan.

`activity_logs` and `audit_digest` belong to the audit capability, which registers them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, catalog, timeutil
from chalicelib.content import articles as content
from chalicelib.jobs.processors.registry import Job, JobContext, Processor

LOOKBACK_DAYS = 14  # expiry days swept, back from today (TTL removes older ones long before)
PAGE_SIZE = 100
MAX_PAGES = 50
ORPHAN_DAYS = 8  # analytics partitions checked for events of deleted articles: a weekly run, plus a day of overlap
CONNECTION_TABLES = ("ws_connections", "ws_members")  # swept by `orphans` when the catalogue has them


def sweep_expired(table: Any, spec: catalog.Table, ctx: JobContext) -> dict[str, Any]:
    """Delete `spec`'s expired items (`ttl` before now), found by its `by_expiry` index; bounded
    in time and in pages (at most LOOKBACK_DAYS + 1 + MAX_PAGES Queries, MAX_PAGES * PAGE_SIZE
    deletes). `more: true` when it stopped before the end."""
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
                with table.batch_writer(overwrite_by_pkeys=key_names) as writer:
                    for item in items:
                        writer.delete_item(Key={name: item[name] for name in key_names})
                deleted += len(items)
            start = result.get("LastEvaluatedKey")
            if not start:
                break
    return {"table": spec.name, "deleted": deleted, "pages": pages, "more": False}


def sweep(name: str, ctx: JobContext) -> dict[str, Any]:
    return sweep_expired(aws.table(name), catalog.table(name), ctx)


def carry_on(job: Job, result: dict[str, Any]) -> dict[str, Any]:
    """When `result` says `more`, enqueue `job` again (same queue, type and payload) to go on
    where it stopped, and name that job in `continued_by`. Once per job: a redelivery of `job`
    gets the same follow-up (its id is the idempotency key)."""
    if not result.get("more"):
        return result
    from chalicelib import jobs

    payload = {**job["payload"], "continues": job["id"]}
    follow_up = jobs.enqueue(job["queue"], job["type"], payload, idempotency_key=f"{job['id']}#continued")
    return {**result, "continued_by": follow_up["id"]}


def sessions(job: Job, ctx: JobContext) -> dict[str, Any]:
    """Expired sessions, then expired refresh tokens."""
    result = sweep("sessions", ctx)
    tokens = sweep("refresh_tokens", ctx)
    return carry_on(job, {**result, "refresh_tokens": tokens, "more": result["more"] or tokens["more"]})


def login_attempts(job: Job, ctx: JobContext) -> dict[str, Any]:
    return carry_on(job, sweep("login_attempts", ctx))


def webhook_logs(job: Job, ctx: JobContext) -> dict[str, Any]:
    return carry_on(job, sweep("webhook_logs", ctx))


# --- orphans -------------------------------------------------------------------------------------


def missing_articles(articles: content.Articles, ids: set[str]) -> set[str]:
    """Which of `ids` name no article (BatchGetItem, 100 keys a call)."""
    table = articles.table
    found: set[str] = set()
    ordered = sorted(ids)
    for i in range(0, len(ordered), 100):
        keys = [{"id": article_id} for article_id in ordered[i : i + 100]]
        request: dict[str, Any] = {table.name: {"Keys": keys, "ProjectionExpression": "id"}}
        while request:
            result = table.meta.client.batch_get_item(RequestItems=request)
            found.update(item["id"] for item in result["Responses"].get(table.name, []))
            request = result.get("UnprocessedKeys") or {}
    return ids - found


def orphan_events(events_table: Any, articles: content.Articles, ctx: JobContext, days: int) -> tuple[int, bool]:
    """Delete the analytics events, of the last `days` day partitions, whose article is gone, and
    then their days' counts of that article (the articles of a day come from its counts); the
    number deleted, and whether it stopped for time (`more`). An article's events are read page
    by page (PAGE_SIZE); its counts go only once all its events have, so a run that stops before
    leaves the article to be found again by the follow-up."""
    from chalicelib.content import reports
    from chalicelib.content.analytics import day_counts_key

    today = datetime.fromtimestamp(timeutil.now(), UTC).date()
    removed = 0
    for back in range(days):
        ctx.check_deadline()
        day = (today - timedelta(days=back)).isoformat()
        ids = reports.day_articles(events_table, day)
        gone = missing_articles(articles, ids) if ids else set()
        for article_id in sorted(gone):
            event_days = {day}
            pages = aws.query_pages(
                events_table,
                IndexName="by_article",
                KeyConditionExpression=Key("article_id").eq(article_id),
                ProjectionExpression="#d, sk",
                ExpressionAttributeNames={"#d": "day"},
                Limit=PAGE_SIZE,
            )
            for page in pages:
                items = page.get("Items", [])
                with events_table.batch_writer() as writer:
                    for item in items:
                        writer.delete_item(Key={"day": item["day"], "sk": item["sk"]})
                removed += len(items)
                event_days |= {str(item["day"]) for item in items}
                if ctx.time_left() <= 0:
                    return removed, True
            with events_table.batch_writer() as writer:
                for event_day in event_days:
                    writer.delete_item(Key={"day": day_counts_key(event_day), "sk": article_id})
    return removed, False


def orphan_jobs(articles: content.Articles) -> int:
    """Delete finished article jobs whose article is gone (at most the retained 100 + 50)."""
    from chalicelib.jobs import service

    jobs = service.store()
    records: list[dict[str, Any]] = []
    for state in ("completed", "failed"):
        result = jobs.table.query(**jobs.list_query("articles", state), ProjectionExpression="id, payload")
        records += result.get("Items", [])
    subject = {r["id"]: str((r.get("payload") or {}).get("article_id") or "") for r in records}
    gone = missing_articles(articles, {a for a in subject.values() if a})
    orphaned = [job_id for job_id, article_id in subject.items() if article_id in gone]
    for job_id in orphaned:
        jobs.remove(job_id)
    return len(orphaned)


def orphans(job: Job, ctx: JobContext) -> dict[str, Any]:
    days = job["payload"].get("days", ORPHAN_DAYS)
    days = days if isinstance(days, int) and 1 <= days <= 90 else ORPHAN_DAYS
    store = content.articles()
    orphaned_jobs = orphan_jobs(store)
    events, events_more = orphan_events(aws.table("analytics_events"), store, ctx, days)
    result: dict[str, Any] = {
        "jobs": orphaned_jobs,
        "analytics_events": events,
        "expired": [sweep(name, ctx) for name in (*CONNECTION_TABLES, "jobs") if name in catalog.TABLES],
    }
    result["more"] = events_more or any(s["more"] for s in result["expired"])
    return carry_on(job, result)


# What this module runs, per (queue, job type): collected by `processors.table()`.
PROCESSORS = (
    Processor("cleanup", "sessions", sessions),
    Processor("cleanup", "login_attempts", login_attempts),
    Processor("cleanup", "webhook_logs", webhook_logs),
    Processor("cleanup", "orphans", orphans),
)
