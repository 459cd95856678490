"""Content's cleanup jobs: the generator's call log, and what is left of deleted articles.

`webhook_logs` sweeps the generator's call log items that DynamoDB's TTL has not removed yet
(`chalicelib.jobs.sweep`). An article's analytics events and counts, and its finished jobs,
outlive the article; `orphans` (weekly) deletes them, then sweeps the expired WebSocket
connections and jobs. A run that stops for time continues in a follow-up job.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, catalog, timeutil
from chalicelib.content import articles as content
from chalicelib.jobs.processor import Job, JobContext, Processor
from chalicelib.jobs.sweep import PAGE_SIZE, carry_on, sweep

ORPHAN_DAYS = 8  # analytics partitions checked for events of deleted articles: a weekly run, plus a day of overlap
CONNECTION_TABLES = ("ws_connections", "ws_members")  # swept by `orphans` when the catalogue has them


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


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (
    Processor("cleanup", "webhook_logs", webhook_logs),
    Processor("cleanup", "orphans", orphans),
)
