"""UTC time in the contract's format, and a clock that tests can replace."""

from __future__ import annotations

import time
from datetime import UTC, date, datetime


def now() -> float:
    """Epoch seconds. Tests patch `chalicelib.timeutil.now` to move time."""
    return time.time()


def iso(ts: float | None = None) -> str:
    """`2026-11-28T02:00:00Z` (seconds precision) for epoch seconds, default now."""
    moment = datetime.fromtimestamp(now() if ts is None else ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_ms(ts: float | None = None) -> str:
    """Sortable with millisecond precision: `2026-11-28T02:00:00.123Z`."""
    moment = datetime.fromtimestamp(now() if ts is None else ts, UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def parse_iso(value: str) -> float:
    """Epoch seconds from an ISO 8601 string; naive times are UTC. Raises ValueError."""
    moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.timestamp()


def day(ts: float | None = None) -> str:
    return datetime.fromtimestamp(now() if ts is None else ts, UTC).strftime("%Y-%m-%d")


def iso_week(day: date) -> str:
    """The ISO week `day` falls in: `2026-W48` (the year is the ISO year: 2027-01-01 is `2026-W53`)."""
    year, week, _ = day.isocalendar()
    return f"{year}-W{week:02d}"


def ttl_fields(expires_at: float) -> dict[str, object]:
    """The attributes a swept TTL table stores: `ttl` and `expiry_day` (see catalog)."""
    return {"ttl": int(expires_at), "expiry_day": day(expires_at)}
