"""One in-process publisher for lifecycle news.

Processors and routes publish small typed events; app.py says once who listens to what
(`subscribe_all`): the realtime emitters, the audit trail, the schedules, the failure alert.
Importing a module subscribes nothing. Adding a listener never touches a publisher. A failing
listener is logged and does not stop the others or the publisher.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

log = logging.getLogger("inkwell.events")

Listener = Callable[[Any], None]
_listeners: dict[type, list[Listener]] = defaultdict(list)


@dataclass(frozen=True)
class JobEvent:
    """A job changed state: kind is active | progress | completed | failed | retrying | cancelled."""

    kind: str
    job: dict[str, Any]  # the job as `GET /api/jobs/{id}` shows it
    error: dict[str, Any] | None = None


@dataclass(frozen=True)
class ArticleStatusChanged:
    """`again`: published by a run that finishes what a killed run of the same job may have done
    in part (redelivered after the change was written): each listener first checks it did not
    act on it already (the room's events since `changed_at`, the article's audit trail)."""

    article_id: str
    status: str
    author_id: str
    job_id: str | None = None
    again: bool = False
    changed_at: str | None = None  # the article's updated_at when the change was written


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
    """An analytics event was ingested (`POST /api/analytics/events`), with the article's running
    counts and when the next announcement of them may go (exactly as stored: `claim` it)."""

    article_id: str
    type: str  # view | click | share
    user_id: str | None = None
    counts: dict[str, int] = field(default_factory=dict)
    announce_after: Any = 0  # a Decimal, as stored


@dataclass(frozen=True)
class SessionsRevoked:
    """Sessions of a user ended (logout, refresh token reuse, a password or role change, the
    user disabled): `sids` those sessions, or None for every session of the user but `kept`."""

    user_id: str
    sids: tuple[str, ...] | None = None
    kept: tuple[str, ...] = ()


EVENT_TYPES = (
    JobEvent,
    ArticleStatusChanged,
    ReportStored,
    Alert,
    AuditRecorded,
    AnalyticsRecorded,
    SessionsRevoked,
)


def subscribe_all(table: Mapping[type, Iterable[Listener]]) -> None:
    """Make `table` (event type -> its listeners, called in order) the whole wiring, replacing any
    earlier one."""
    _listeners.clear()
    for event_type, listeners in table.items():
        _listeners[event_type] = list(dict.fromkeys(listeners))


def subscribe(event_type: type, listener: Listener) -> Callable[[], None]:
    """Add one listener (tests, scripts); returns the function that removes it again."""
    if listener not in _listeners[event_type]:
        _listeners[event_type].append(listener)
    return lambda: _listeners[event_type].remove(listener) if listener in _listeners[event_type] else None


def listeners(event_type: type) -> tuple[Listener, ...]:
    return tuple(_listeners.get(event_type, ()))


def publish(event: Any) -> None:
    for listener in list(_listeners.get(type(event), ())):
        try:
            listener(event)
        except Exception:
            log.exception("listener %s failed on %s", getattr(listener, "__name__", listener), type(event).__name__)
