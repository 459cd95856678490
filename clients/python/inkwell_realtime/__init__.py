"""Inkwell's real-time client for Python: see `inkwell_realtime.client`."""

from inkwell_realtime.client import (
    DASHBOARD_TYPES,
    ArticleStatus,
    AuthError,
    Event,
    Listener,
    RealtimeClient,
    SystemAlert,
)
from inkwell_realtime.jobs import JobsApiError, JobsClient
from inkwell_realtime.tracking import RoomCursor, backoff_delay

__all__ = [
    "DASHBOARD_TYPES",
    "ArticleStatus",
    "AuthError",
    "Event",
    "JobsApiError",
    "JobsClient",
    "Listener",
    "RealtimeClient",
    "RoomCursor",
    "SystemAlert",
    "backoff_delay",
]
