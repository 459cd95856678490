"""The catalogue of audit actions: dotted name -> category, severity, and whether it is critical.

One table so that every caller records the same names with the same classification, the report
can count by category, and retention (a TTL per category) follows from the name. A critical
action is written to DynamoDB before the response returns; the others are buffered.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

DAY = 24 * 3600

# The contract's categories, and how long each keeps its events (DynamoDB TTL).
RETENTION_DAYS: dict[str, int] = {
    "auth": 365,
    "settings": 365,
    "system": 180,
    "article": 90,
    "content": 90,
    "analytics": 90,
}
CATEGORIES = tuple(RETENTION_DAYS)
SEVERITIES = ("info", "warning", "error", "critical")
ERROR_SEVERITIES = frozenset({"error", "critical"})

NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$")


@dataclass(frozen=True)
class Action:
    category: str
    severity: str = "info"
    critical: bool = False  # written before the response returns


def _a(category: str, severity: str = "info", critical: bool = False) -> Action:
    return Action(category, severity, critical)


ACTIONS: dict[str, Action] = {
    # who is who: every one of these is security-relevant, so written before the response returns
    "auth.login": _a("auth", critical=True),
    "auth.login_failed": _a("auth", "warning", critical=True),
    "auth.login_throttled": _a("auth", "warning", critical=True),  # counts (audit.floods)
    "auth.lockout": _a("auth", "error", critical=True),
    "auth.logout": _a("auth", critical=True),
    "auth.token_refused": _a("auth", "warning", critical=True),
    "auth.refresh": _a("auth"),
    "auth.password_changed": _a("auth", "warning", critical=True),
    "auth.password_change_failed": _a("auth", "warning", critical=True),
    "user.create": _a("auth", critical=True),
    "user.update": _a("auth", "warning", critical=True),
    "user.delete": _a("auth", "warning", critical=True),
    "security.forbidden": _a("auth", "warning", critical=True),
    "realtime.ticket": _a("auth", critical=True),
    "realtime.refused": _a("auth", "warning", critical=True),
    "realtime.connect": _a("system"),
    "realtime.disconnect": _a("system"),
    "realtime.subscribe": _a("system"),
    # articles and their lifecycle
    "article.create": _a("article"),
    "article.generate": _a("article"),
    "article.publish": _a("article"),
    "article.archive": _a("article"),
    "article.status_changed": _a("article"),
    "article.generation_failed": _a("article", "error"),
    "content.generated": _a("content"),
    "content.webhook_call": _a("content"),
    "content.webhook_failed": _a("content", "warning"),
    # settings
    "settings.update": _a("settings", "warning", critical=True),
    # queues, jobs and schedules: control actions are critical
    "queue.pause": _a("system", "warning", critical=True),
    "queue.resume": _a("system", "warning", critical=True),
    "queue.clean": _a("system", "warning", critical=True),
    "queue.limits": _a("system", "warning", critical=True),
    "queue.retry_failed": _a("system", "warning", critical=True),
    "queue.bulk": _a("system", "warning", critical=True),
    "job.retry": _a("system", critical=True),
    "job.remove": _a("system", "warning", critical=True),
    "job.promote": _a("system", critical=True),
    "job.cancel": _a("system", "warning", critical=True),
    "job.duplicate": _a("system", critical=True),
    "job.completed": _a("system"),
    "job.failed": _a("system", "error"),
    "schedule.run": _a("system", critical=True),
    "schedule.triggered": _a("system"),
    "schedule.update": _a("system", "warning", critical=True),
    # analytics and reading the audit log (itself audited)
    "analytics.export": _a("analytics", critical=True),
    "analytics.report_generated": _a("analytics"),
    "analytics.cleanup": _a("analytics"),
    "audit.read": _a("system", critical=True),
    "audit.verify": _a("system", critical=True),
    "audit.export": _a("system", critical=True),
    "audit.sealed": _a("system"),
    "audit.cleanup": _a("system"),
    "audit.tamper_detected": _a("system", "critical", critical=True),
    "audit.fallback": _a("system", "warning"),
    "security.audit_refused": _a("auth", "critical", critical=True),
    "dashboard.view": _a("system"),
}

# Families with open-ended names (`system.startup`, `system.alert`, ...), by prefix.
FAMILIES: dict[str, Action] = {
    "system.": _a("system"),
    "security.": _a("auth", "warning", critical=True),
}


# Actions that also raise an `events.Alert` (the admin room's `system.alert`), with its level.
# Job failures are `activity` only: the realtime emitters already send `job.failed`, and the
# dashboard's health raises its own alerts on dead letters and failure rates.
ALERT_LEVELS: dict[str, str] = {
    "auth.lockout": "warning",
    "security.refresh_reuse": "critical",
    "audit.tamper_detected": "critical",
    "security.audit_refused": "critical",
}


class UnknownAction(ValueError):
    """An action name that is malformed, or neither catalogued nor given a category."""


def classify(
    action: str, category: str | None = None, severity: str | None = None, critical: bool | None = None
) -> Action:
    """The classification of `action`, with the caller's overrides. Raises UnknownAction for a
    malformed name, an unknown category or severity, or an uncatalogued action without a category."""
    if not NAME_PATTERN.match(action) or len(action) > 64:
        raise UnknownAction(f"audit action {action[:80]!r} is not a dotted lower-case name")
    base = ACTIONS.get(action) or next((a for p, a in FAMILIES.items() if action.startswith(p)), None)
    if base is None:
        if category is None:
            raise UnknownAction(f"audit action {action!r} is not catalogued; pass its category")
        # Uncatalogued actions in the sensitive categories are critical by default.
        base = Action(category, critical=category in ("auth", "settings"))
    chosen = Action(
        category or base.category,
        severity or base.severity,
        base.critical if critical is None else critical,
    )
    if chosen.category not in RETENTION_DAYS:
        raise UnknownAction(f"unknown audit category {chosen.category!r}")
    if chosen.severity not in SEVERITIES:
        raise UnknownAction(f"unknown audit severity {chosen.severity!r}")
    return chosen


def retention_seconds(category: str) -> int:
    return RETENTION_DAYS[category] * DAY


MAX_RETENTION_SECONDS = max(RETENTION_DAYS.values()) * DAY
