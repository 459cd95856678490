"""Every server-to-client event type, in one place, and the listeners that feed them.

Each emitter names its event's type and rooms and hands it to `delivery` (stored, then posted, or
left for the end of the invocation when its rooms have nobody in them):

| emitter                  | type                          | rooms                                  |
|--------------------------|-------------------------------|----------------------------------------|
| emit_article_status      | article.status                | article:<id>, user:<author>, admin     |
| emit_job_progress        | job.progress                  | article:<id> (when about one), admin   |
| emit_job_finished        | job.completed / failed / cancelled | admin, user:<who caused it>       |
| emit_activity(ies)       | activity                      | admin                                  |
| emit_analytics_update    | analytics.update              | admin                                  |
| emit_system_alert        | system.alert                  | admin                                  |

The listeners at the bottom (`on_*`) are subscribed to `chalicelib.events` by app.py: publishers
never call these functions directly.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from chalicelib import events, timeutil
from chalicelib.realtime import rooms
from chalicelib.realtime.delivery import emit, emit_many

log = logging.getLogger("inkwell.realtime")

ANALYTICS_UPDATE_SECONDS = 5.0  # at most one analytics.update per article this often


# --- the event types -----------------------------------------------------------------------------


def emit_article_status(article_id: str, status: str, author_id: str, job_id: str | None = None) -> dict[str, int]:
    return emit(
        "article.status",
        [rooms.article_room(article_id), rooms.user_room(author_id), rooms.ADMIN],
        {"article_id": article_id, "status": status, "job_id": job_id},
    )


def emit_job_progress(job_id: str, queue: str, progress: int, article_id: str | None = None) -> dict[str, int]:
    to = ([rooms.article_room(article_id)] if article_id else []) + [rooms.ADMIN]
    return emit("job.progress", to, {"job_id": job_id, "queue": queue, "progress": progress})


def emit_job_finished(
    outcome: str,
    job_id: str,
    queue: str,
    attempts: int,
    user_id: str | None = None,
    error: Any = None,
) -> dict[str, int]:
    """`outcome` is completed | failed | cancelled."""
    if outcome not in ("completed", "failed", "cancelled"):
        raise ValueError(f"outcome must be completed, failed or cancelled, not {outcome!r}")
    data: dict[str, Any] = {"job_id": job_id, "queue": queue, "attempts": attempts}
    if error is not None:
        data["error"] = error
    to = [rooms.ADMIN] + ([rooms.user_room(user_id)] if user_id else [])
    return emit(f"job.{outcome}", to, data)


def emit_activity(audit_event: dict[str, Any]) -> dict[str, int]:
    return emit("activity", [rooms.ADMIN], audit_event)


def emit_activities(audit_events: list[dict[str, Any]]) -> list[int]:
    """`activity` for each audit event, in order, at the cost of one event (`emit_many`)."""
    return emit_many("activity", rooms.ADMIN, audit_events)


def emit_analytics_update(data: dict[str, Any]) -> dict[str, int]:
    """`data`: `{"article_id"?, "counts"?, "report"?}`."""
    return emit("analytics.update", [rooms.ADMIN], data)


def emit_system_alert(level: str, message: str, details: dict[str, Any] | None = None) -> dict[str, int]:
    return emit("system.alert", [rooms.ADMIN], {**(details or {}), "level": level, "message": message})


# --- listeners -------------------------------------------------------------------------------------


def on_job_event(event: events.JobEvent) -> None:
    job = event.job
    payload = job.get("payload")
    if not isinstance(payload, dict):
        payload = {}
    article_id = payload.get("article_id") if job.get("queue") == "articles" else None
    if event.kind == "progress":
        emit_job_progress(job["id"], job["queue"], int(job.get("progress") or 0), article_id)
    elif event.kind in ("completed", "failed", "cancelled"):
        error = event.error if event.error is not None else job.get("error")
        emit_job_finished(
            event.kind,
            job["id"],
            job["queue"],
            int(job.get("attempts") or 0),
            job.get("user_id"),
            error if event.kind == "failed" else None,
        )


def on_article_status(event: events.ArticleStatusChanged) -> None:
    if event.again and announced(event):
        return
    emit_article_status(event.article_id, event.status, event.author_id, event.job_id)


# An event's ts is taken before its seq is reserved: a slow emitter's event lands after later ones.
AGAIN_SLACK_SECONDS = 120.0
AGAIN_LOOKBACK = 2000  # events of a room a run finishing a killed one reads back at most for its announcement


def announced(event: events.ArticleStatusChanged) -> bool:
    """Whether the announcement was stored already (by a killed run of the job): it went to its
    rooms together, so the first of them with a counter tells, by its events sent since the
    change was written (`changed_at`, less AGAIN_SLACK_SECONDS; AGAIN_LOOKBACK at most)."""
    from chalicelib.realtime import live

    store = live.event_log()
    wanted = {"article_id": event.article_id, "status": event.status, "job_id": event.job_id}
    try:
        opened = store.opened([rooms.user_room(event.author_id), rooms.article_room(event.article_id), rooms.ADMIN])
        since = timeutil.iso_ms(timeutil.parse_iso(event.changed_at) - AGAIN_SLACK_SECONDS) if event.changed_at else ""
        for body in store.latest(opened[0], since, AGAIN_LOOKBACK) if opened else ():
            frame = json.loads(body)
            if frame.get("type") == "article.status" and frame.get("data") == wanted:
                return True
    except Exception:  # unreadable: announce (heard twice, by seq, beats never)
        log.exception("could not read back the rooms of article %s", event.article_id)
    return False


def on_alert(event: events.Alert) -> None:
    emit_system_alert(event.level, event.message, event.details)


def on_audit(event: events.AuditRecorded) -> None:
    """`activity` for every audit event, as `GET /api/audit` lists them: the audit log publishes
    them once per flush, and they go out together (`emit_many`)."""
    emit_activities(list(event.events))


def on_report_stored(event: events.ReportStored) -> None:
    """`analytics.update` with the report's totals, when an analytics report is (re)computed."""
    emit_analytics_update({"report": {"period": event.period, "key": event.key, "total": event.total}})


def on_analytics(event: events.AnalyticsRecorded) -> None:
    """Send the article's counts as `analytics.update` unless one went for this article in the
    last ANALYTICS_UPDATE_SECONDS (content.analytics keeps the counts and the claim)."""
    from chalicelib.content import analytics  # pydantic (the request model): not at import

    now = timeutil.now()
    if due(float(event.announce_after), now) and analytics.counts().claim(
        event.article_id, event.announce_after, now + ANALYTICS_UPDATE_SECONDS
    ):
        emit_analytics_update({"article_id": event.article_id, "counts": event.counts})


def due(next_update: float, now: float) -> bool:
    return now >= next_update
