"""One in-process publisher for lifecycle news.

Processors and routes publish small typed events; the realtime emitters and the audit logger
subscribe (at import of their modules). Adding a listener never touches a publisher. A failing
listener is logged and does not stop the others or the publisher.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("inkwell.events")

_listeners: dict[type, list[Callable[[Any], None]]] = defaultdict(list)


@dataclass(frozen=True)
class JobEvent:
    """A job changed state: kind is active | progress | completed | failed | retrying."""

    kind: str
    job: dict[str, Any]  # the job as `GET /api/jobs/{id}` shows it
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class ArticleStatusChanged:
    article_id: str
    status: str
    author_id: str
    job_id: str | None = None


@dataclass(frozen=True)
class ReportStored:
    """An analytics report was (re)computed and stored (realtime: `analytics.update`)."""

    period: str  # daily | weekly
    key: str  # the settings key, e.g. analytics.daily.2026-11-27
    total: dict[str, int]


@dataclass(frozen=True)
class Alert:
    level: str  # info | warning | critical
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecorded:
    """Audit events were recorded and written (or handed to the audit queue): every event since
    the previous one, in the order recorded, published once per flush of the audit log (at the end
    of each invocation, see chalicelib.audit.logger). Each is the admin room's `activity`."""

    events: tuple[dict[str, Any], ...]  # the contract's audit events


@dataclass(frozen=True)
class AnalyticsRecorded:
    """An analytics event was ingested (`POST /api/analytics/events`)."""

    article_id: str
    type: str  # view | click | share
    user_id: str | None = None


def subscribe(event_type: type, listener: Callable[[Any], None]) -> None:
    if listener not in _listeners[event_type]:
        _listeners[event_type].append(listener)


def publish(event: Any) -> None:
    for listener in list(_listeners[type(event)]):
        try:
            listener(event)
        except Exception:
            log.exception("listener %s failed on %s", getattr(listener, "__name__", listener), type(event).__name__)
