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
class Alert:
    level: str  # info | warning | critical
    message: str
    details: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class AuditRecorded:
    """An important audit event was accepted (chalicelib.audit publishes only those: lockouts,
    settings changes, queue control, job failures...); it deserves the admin room's `activity`."""

    event: dict[str, Any]  # the contract's audit event
    important: bool = False


def subscribe(event_type: type, listener: Callable[[Any], None]) -> None:
    if listener not in _listeners[event_type]:
        _listeners[event_type].append(listener)


def publish(event: Any) -> None:
    for listener in list(_listeners[type(event)]):
        try:
            listener(event)
        except Exception:
            log.exception("listener %s failed on %s", getattr(listener, "__name__", listener), type(event).__name__)
