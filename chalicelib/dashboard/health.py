"""Queue health: the checks, their thresholds, and noticing when health turns bad.

Pure rules first: `thresholds(setting)` reads the `queues.health` setting (an object of limits,
with optional per-queue overrides under `"queues"`), keeping a default for anything missing or
malformed, so a bad setting can never break the endpoint; `evaluate(queue, facts, limits, now)`
turns one queue's measured facts into checks. `HealthState` keeps the last overall status in the
settings table, so only a change of status (healthy -> unhealthy, and back) raises an alert, once,
however many callers look at the same time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

SETTING_KEY = "queues.health"
STATE_SCOPE = "dashboard"
STATE_KEY = "health"

DEFAULTS: dict[str, float] = {
    "max_dead_letters": 10,  # messages waiting in the dead-letter queue
    "max_waiting_age_seconds": 300,  # age of the oldest job still waiting to start
    "max_failure_rate": 0.25,  # failed / finished over the last hour ...
    "min_finished_for_rate": 4,  # ... once at least this many jobs finished in that hour
    "max_paused_seconds": 3600,  # a pause longer than this is reported
}
RATE_WINDOW_SECONDS = 3600


def thresholds(setting: Any, queue: str) -> dict[str, float]:
    """The limits for `queue`: defaults, then the setting's top level, then its per-queue override."""
    limits = dict(DEFAULTS)
    if not isinstance(setting, dict):
        return limits
    overrides = setting.get("queues")
    for layer in (setting, overrides.get(queue) if isinstance(overrides, dict) else None):
        if not isinstance(layer, dict):
            continue
        for name in DEFAULTS:
            value = layer.get(name)
            if isinstance(value, (int, float)) and not isinstance(value, bool) and value >= 0:
                limits[name] = float(value)
    return limits


@dataclass(frozen=True)
class Facts:
    """What was measured of one queue."""

    dead_letters: int  # in the dead-letter queues of the job queue and of its `-high` queue
    oldest_waiting_at: float | None  # epoch seconds of the oldest waiting job's last change
    completed_last_hour: int
    failed_last_hour: int
    paused: bool
    paused_since: float | None
    high_dead_letters: int = 0  # of `dead_letters`, those of the `-high` priority queue's dead-letter queue


def evaluate(queue: str, facts: Facts, limits: dict[str, float], now: float) -> list[dict[str, Any]]:
    """One queue's checks: `{"queue","check","ok","value","threshold","message"}` each."""
    waiting_age = max(0.0, now - facts.oldest_waiting_at) if facts.oldest_waiting_at is not None else 0.0
    finished = facts.completed_last_hour + facts.failed_last_hour
    rate = facts.failed_last_hour / finished if finished else 0.0
    rate_counts = finished >= limits["min_finished_for_rate"]
    paused_for = max(0.0, now - facts.paused_since) if facts.paused and facts.paused_since is not None else 0.0

    def check(name: str, ok: bool, value: float, threshold: float, message: str) -> dict[str, Any]:
        return {"queue": queue, "check": name, "ok": ok, "value": value, "threshold": threshold, "message": message}

    return [
        check(
            "dead_letters",
            facts.dead_letters <= limits["max_dead_letters"],
            facts.dead_letters,
            limits["max_dead_letters"],
            f"{facts.dead_letters} message(s) in the dead-letter queue"
            + (f" ({facts.high_dead_letters} of the high-priority queue's)" if facts.high_dead_letters else ""),
        ),
        check(
            "oldest_waiting",
            waiting_age <= limits["max_waiting_age_seconds"],
            round(waiting_age, 1),
            limits["max_waiting_age_seconds"],
            f"the oldest waiting job has waited {waiting_age:.0f} s" if facts.oldest_waiting_at else "no job waiting",
        ),
        check(
            "failure_rate",
            not rate_counts or rate <= limits["max_failure_rate"],
            round(rate, 3),
            limits["max_failure_rate"],
            f"{facts.failed_last_hour} of {finished} job(s) failed in the last hour",
        ),
        check(
            "paused",
            paused_for <= limits["max_paused_seconds"],
            round(paused_for, 1),
            limits["max_paused_seconds"],
            f"paused for {paused_for:.0f} s" if facts.paused else "running",
        ),
    ]


def audit_fallback(dead_letters: int, limits: dict[str, float]) -> dict[str, Any]:
    """The one check on `audit`, the audit trail's fallback queue (no job queue, so `"queue"` is
    null): its dead letters are audit events that could not be written."""
    return {
        "queue": None,
        "check": "audit_dead_letters",
        "ok": dead_letters <= limits["max_dead_letters"],
        "value": dead_letters,
        "threshold": limits["max_dead_letters"],
        "message": f"{dead_letters} message(s) in the audit fallback's dead-letter queue",
    }


def label(check: dict[str, Any]) -> str:
    """`<queue>.<check>`, or the check's name alone when it is about no job queue."""
    return f"{check['queue']}.{check['check']}" if check["queue"] else check["check"]


def summary(checks: list[dict[str, Any]]) -> str:
    failing = [c for c in checks if not c["ok"]]
    return "; ".join(f"{label(c).replace('.', ' ')}: {c['message']}" for c in failing)


class HealthState:
    """The last overall status, in the settings table (scope `dashboard`, key `health`)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def swap(self, status: str, failing: list[str], at: str) -> str | None:
        """Store `status` and return the one it replaced (None the first time). One atomic
        UpdateItem, so of two concurrent callers only one sees the change."""
        old = self._table.update_item(
            Key={"scope": STATE_SCOPE, "key": STATE_KEY},
            UpdateExpression="SET #s = :s, failing = :f, checked_at = :t",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": status, ":f": failing, ":t": at},
            ReturnValues="ALL_OLD",
        ).get("Attributes", {})
        return old.get("status")
