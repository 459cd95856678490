"""The analytics queue's jobs: the daily and weekly reports, and the removal of old events.

daily_report aggregates one UTC day (payload `date`, default yesterday) per article and in
total and stores it as the setting `analytics.daily.<date>` (scope `report`). weekly_report does
the same for an ISO week (payload `week`, default last week) as `analytics.weekly.<YYYY-Www>`,
then queues an email of it to the admins (idempotent per week, so a rerun sends nothing more).
Both are recomputed from the days' counts (see reports.day_aggregate), so a rerun gives the
same report. cleanup_old_data sweeps
the events past their retention that TTL has not removed yet.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from chalicelib import aws, events, timeutil
from chalicelib.content import reports
from chalicelib.content import settings as settings_store
from chalicelib.jobs.errors import PermanentError
from chalicelib.jobs.processor import Job, JobContext, Processor
from chalicelib.jobs.sweep import carry_on, sweep


def _argument(job: Job, name: str, parse: Any, default: str) -> str:
    value = job["payload"].get(name) or default
    try:
        parse(value)
    except ValueError as exc:
        raise PermanentError(f"invalid payload: {name} {exc}", kind="invalid_payload") from None
    return value


def _store(key: str, report: dict[str, Any], period: str, settings: settings_store.Settings) -> None:
    settings.put(key, report, None, scope=settings_store.REPORT)
    events.publish(events.ReportStored(period=period, key=key, total=report["total"]))


def run_daily(job: Job, ctx: JobContext, table: Any, settings: settings_store.Settings) -> dict[str, Any]:
    day = _argument(job, "date", reports.parse_day, reports.yesterday().isoformat())
    report = reports.daily_report(day, reports.day_aggregate(table, day), timeutil.iso())
    ctx.progress(80)
    key = reports.daily_key(day)
    _store(key, report, "daily", settings)
    return {"key": key, "total": report["total"], "article_count": report["article_count"]}


def run_weekly(job: Job, ctx: JobContext, table: Any, settings: settings_store.Settings) -> dict[str, Any]:
    last_week = timeutil.iso_week(reports.yesterday() - timedelta(days=6))
    week = _argument(job, "week", reports.parse_week, last_week)
    days: dict[str, dict[str, Any]] = {}
    for i, day in enumerate(reports.week_days(reports.parse_week(week))):
        ctx.check_deadline()
        days[day] = reports.day_aggregate(table, day)
        ctx.progress(10 + 10 * i)
    report = reports.weekly_report(week, days, timeutil.iso())
    key = reports.weekly_key(week)
    _store(key, report, "weekly", settings)
    from chalicelib import jobs

    email = jobs.enqueue("emails", "send", weekly_email(report), idempotency_key=f"weekly-report-email:{week}")
    return {"key": key, "total": report["total"], "email_job_id": email["id"]}


def weekly_email(report: dict[str, Any]) -> dict[str, Any]:
    """The weekly report email's payload (pure)."""
    total = report["total"]
    top = [
        f"  {i}. {a['article_id']}: {a['events']} events ({a['view']} views, {a['click']} clicks, {a['share']} shares)"
        for i, a in enumerate(report["top_articles"], 1)
    ]
    return {
        "template": "weekly_report",
        "data": {
            "week": report["week"],
            "from": report["from"],
            "to": report["to"],
            "views": total["view"],
            "clicks": total["click"],
            "shares": total["share"],
            "events": total["events"],
            "article_count": report["article_count"],
            "top": top or ["  (no activity)"],
        },
    }


def daily_report(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_daily(job, ctx, aws.table("analytics_events"), settings_store.settings())


def weekly_report(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_weekly(job, ctx, aws.table("analytics_events"), settings_store.settings())


def cleanup_old_data(job: Job, ctx: JobContext) -> dict[str, Any]:
    return carry_on(job, sweep("analytics_events", ctx))


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (
    Processor("analytics", "daily_report", daily_report),
    Processor("analytics", "weekly_report", weekly_report),
    Processor("analytics", "cleanup_old_data", cleanup_old_data),
)
