"""Reading the audit trail: filtered listings with cursor pagination, a user's activity summary and
the system activity report. Every read is a Query on the index that fits the filter, never a Scan.

Low-cardinality keys (action, category) are partitioned by month (`auth.login#2026-11`) so that
no index partition grows hot or without end; reading them walks the months of the time range,
newest first. A listing without a filter merges the category partitions of each month (six
queries per month) instead of walking 4 shards x 24 hours per day of the base table.

A page is built by `merge_page`: each partition of a group is queried newest first and the
results are merged by sort key, so the order is the canonical one even across partitions. The
cursor names the group and the sort key reached (`{"p","s"}`). A page may hold fewer than `limit`
events when its query budget ran out; the client continues while `next_cursor` is not null.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from chalicelib import aws, timeutil
from chalicelib.audit import model
from chalicelib.audit.actions import CATEGORIES, ERROR_SEVERITIES, RETENTION_DAYS

MAX_QUERIES_PER_PAGE = 60
SORT_KEY = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z#[0-9a-f]{32}")
MAX_SUMMARY_EVENTS = 10_000
MAX_REPORT_EVENTS = 50_000
TOP = 10
RECENT_ERRORS = 20
# Failed logins, counted in the report by their `details.count` (1 when absent).
FAILED_LOGINS = frozenset({"auth.login_failed", "auth.login_throttled"})


@dataclass(frozen=True)
class Source:
    """Where a listing reads: an index, its partition attribute, and groups of partitions
    (newest first) whose events are merged by sort key."""

    index: str | None
    pk_attr: str
    groups: list[tuple[str, list[str]]]


def months(since: float, until: float) -> list[str]:
    """The `YYYY-MM` months touching [since, until], newest first (pure)."""
    start = datetime.fromtimestamp(since, UTC)
    y, m = (lambda d: (d.year, d.month))(datetime.fromtimestamp(until, UTC))
    out = []
    while (y, m) >= (start.year, start.month):
        out.append(f"{y:04d}-{m:02d}")
        y, m = (y, m - 1) if m > 1 else (y - 1, 12)
    return out


def source_for(filters: dict[str, str], since: float, until: float) -> tuple[Source, dict[str, str]]:
    """The index that answers `filters` best, and the filters left for a FilterExpression (pure).

    A resource or a user names few events, so their indexes come first; action and category are
    read month by month; no filter merges the categories month by month.
    """
    rest = dict(filters)
    if "resource_type" in rest:
        key = f"{rest.pop('resource_type')}#{rest.pop('resource_id')}"
        return Source("by_resource", "resource_key", [(key, [key])]), rest
    if "user_id" in rest:
        user = rest.pop("user_id")
        return Source("by_user", "user_id", [(user, [user])]), rest
    spans = months(since, until)
    if "action" in rest:
        action = rest.pop("action")
        return Source("by_action", "action_month", [(m, [f"{action}#{m}"]) for m in spans]), rest
    categories = [rest.pop("category")] if "category" in rest else list(CATEGORIES)
    return Source("by_category", "category_month", [(m, [f"{c}#{m}" for c in categories]) for m in spans]), rest


def sort_key_bounds(since: float, until: float) -> tuple[str, str]:
    """Sort keys `<ts>#<id>` from `since` up to and including `until`'s millisecond."""
    return timeutil.iso_ms(since), timeutil.iso_ms(until) + "~"


def just_below(sk: str) -> str:
    """The greatest string below `sk` that a query bound needs: every sort key has the same
    length, so this excludes `sk` and keeps everything smaller (pure)."""
    return sk[:-1] + chr(ord(sk[-1]) - 1) + "~"


class InvalidCursor(ValueError):
    pass


class _Budget:
    def __init__(self, queries: int) -> None:
        self.left = queries


class AuditStore:
    def __init__(self, table: Any) -> None:
        self._table = table

    def merge_page(
        self,
        source: Source,
        bounds: tuple[str, str],
        limit: int,
        cursor: dict[str, Any] | None,
        filters: dict[str, str] | None = None,
        budget: int = MAX_QUERIES_PER_PAGE,
    ) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
        """One page, newest first: (items, next cursor or None). Raises InvalidCursor."""
        keys = [g for g, _ in source.groups]
        gi, reached = 0, None
        if cursor:
            reached_key = cursor.get("s")
            if cursor.get("p") not in keys or not (reached_key == "" or SORT_KEY.fullmatch(str(reached_key))):
                raise InvalidCursor("the cursor does not belong to this query")
            gi, reached = keys.index(cursor["p"]), cursor["s"] or None
        filt = _filter_expression(filters or {})
        spent = _Budget(budget)
        out: list[dict[str, Any]] = []
        while gi < len(keys) and len(out) < limit and spent.left > 0:
            need = limit - len(out)
            hi = just_below(reached) if reached else bounds[1]
            results = [self._collect(source, pk, (bounds[0], hi), need, filt, spent) for pk in source.groups[gi][1]]
            open_lows = [low for _, low in results if low is not None]
            boundary = max(open_lows) if open_lows else None
            candidates = sorted(
                (i for items, _ in results for i in items if boundary is None or i["sk"] >= boundary),
                key=lambda i: i["sk"],
                reverse=True,
            )
            taken = candidates[:need]
            out += taken
            if len(candidates) > need:
                reached = taken[-1]["sk"]
            elif boundary is not None:
                reached = boundary
            else:
                gi, reached = gi + 1, None
        if gi >= len(keys):
            return out, None
        return out, {"p": keys[gi], "s": reached or ""}

    def _collect(
        self, source: Source, pk: str, bounds: tuple[str, str], need: int, filt: Any, spent: _Budget
    ) -> tuple[list[dict[str, Any]], str | None]:
        """Up to `need` matching items of one partition, newest first, and the sort key evaluated
        down to (None when the partition is exhausted). Always runs one query at least."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": Key(source.pk_attr).eq(pk) & Key("sk").between(*bounds),
            "ScanIndexForward": False,
            "Limit": need,
        }
        if source.index:
            kwargs["IndexName"] = source.index
        if filt is not None:
            kwargs["FilterExpression"] = filt
        items: list[dict[str, Any]] = []
        while True:
            spent.left -= 1
            result = self._table.query(**kwargs)
            items += result.get("Items", [])
            last = result.get("LastEvaluatedKey")
            if not last:
                return items, None
            if len(items) >= need or spent.left <= 0:
                return items, last["sk"]
            kwargs["ExclusiveStartKey"] = last

    def all_of(self, source: Source, bounds: tuple[str, str], cap: int, **extra: Any) -> tuple[list[dict], bool]:
        """Every event of the source within bounds, up to `cap` (and whether it was cut)."""
        items: list[dict[str, Any]] = []
        for _, pks in source.groups:
            for pk in pks:
                kwargs: dict[str, Any] = {
                    "KeyConditionExpression": Key(source.pk_attr).eq(pk) & Key("sk").between(*bounds),
                    **extra,
                }
                if source.index:
                    kwargs["IndexName"] = source.index
                for page in aws.query_pages(self._table, **kwargs):
                    items += page.get("Items", [])
                    if len(items) >= cap:
                        return items[:cap], True
        return items, False

    def hour(self, hour: str, bounds: tuple[str, str] | None = None) -> list[dict[str, Any]]:
        """Every event stored under one hour (all shards), in canonical order."""
        lo, hi = bounds or (hour, hour + "~")
        items, _ = self.all_of(
            Source(None, "hour", [(hour, model.partitions(hour))]), (lo, hi), cap=10**9, ConsistentRead=True
        )
        return sorted(items, key=lambda i: i["sk"])


def _filter_expression(filters: dict[str, str]) -> Any:
    expr = None
    for name in ("action", "category", "user_id"):
        if name in filters:
            cond = Attr(name).eq(filters[name])
            expr = cond if expr is None else expr & cond
    return expr


def user_tally(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What a user's summary needs of some of their events, per retention class (as `tally`), in
    a form that adds up (`merge_user`): `counts` keeps one per user and minute, and hour (pure)."""
    out: dict[str, dict[str, Any]] = {}
    for i in items:
        t = out.setdefault(str(RETENTION_DAYS.get(i["category"], 0)), _empty_user())
        t["total"] += 1
        for name, key in (("by_action", i["action"]), ("by_category", i["category"])):
            t[name][key] = t[name].get(key, 0) + 1
        t["first"] = min(filter(None, (t["first"], i["ts"])))
        t["last"] = max(filter(None, (t["last"], i["ts"])))
    return out


def _empty_user() -> dict[str, Any]:
    return {"total": 0, "by_action": {}, "by_category": {}, "first": None, "last": None}


def merge_user(tallies: list[dict[str, Any]]) -> dict[str, Any]:
    """One user tally of several, as `user_tally` would give for all their events (pure)."""
    out = _empty_user()
    for t in tallies:
        out["total"] += int(t["total"])
        for name in ("by_action", "by_category"):
            for key, n in t[name].items():
                out[name][key] = out[name].get(key, 0) + int(n)
        out["first"] = min(filter(None, (out["first"], t["first"])), default=None)
        out["last"] = max(filter(None, (out["last"], t["last"])), default=None)
    return out


def summary_from(user_id: str, t: dict[str, Any], days: int, truncated: bool) -> dict[str, Any]:
    """`{"user_id","total","by_action","first","last"}` plus categories, of a user tally (pure)."""
    return {
        "user_id": user_id,
        "days": days,
        "total": t["total"],
        "by_action": _ranked(t["by_action"]),
        "by_category": _ranked(t["by_category"]),
        "first": t["first"],
        "last": t["last"],
        "truncated": truncated,
    }


def summarize_user(user_id: str, items: list[dict[str, Any]], days: int, truncated: bool) -> dict[str, Any]:
    """The summary of some of a user's events (pure)."""
    return summary_from(user_id, merge_user(list(user_tally(items).values())), days, truncated)


def _ranked(counts: dict[str, int], n: int | None = None) -> dict[str, int]:
    """Most first, ties by name: the same order however the counts were added up (pure)."""
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:n])


def tally(items: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """What the report needs of some events, per retention class (`"90"`, `"180"`, `"365"`: the
    days their category keeps them), in a form that adds up (`merge`) and stores as one item: the
    `counts` keeps one per minute, and hour, so that a report reads counts, not events (pure)."""
    out: dict[str, dict[str, Any]] = {}
    for i in items:
        t = out.setdefault(str(RETENTION_DAYS.get(i["category"], 0)), _empty())
        t["total"] += 1
        for name, key in (("by_category", i["category"]), ("by_action", i["action"]), ("by_hour", i["ts"][:13])):
            t[name][key] = t[name].get(key, 0) + 1
        if i.get("user_id"):
            t["users"][i["user_id"]] = t["users"].get(i["user_id"], 0) + 1
        if i["action"] in FAILED_LOGINS:
            details = i.get("details") or {}
            n = int(details.get("count", 1))  # a flood's refusals are audited as counts (audit.floods)
            t["failed"] += n
            email, ip = str(details.get("email", "?")), str(i.get("ip") or details.get("ip") or "?")
            t["by_email"][email] = t["by_email"].get(email, 0) + n
            t["by_ip"][ip] = t["by_ip"].get(ip, 0) + n
        t["lockouts"] += i["action"] == "auth.lockout"
        if i["severity"] in ERROR_SEVERITIES:
            t["errors"] += 1
            t["recent"] = sorted([*t["recent"], {"sk": i["sk"], **model.public(i)}], key=lambda e: e["sk"])[
                -RECENT_ERRORS:
            ]
    return out


def _empty() -> dict[str, Any]:
    return {
        **{name: 0 for name in ("total", "failed", "lockouts", "errors")},
        **{name: {} for name in ("by_category", "by_action", "by_hour", "users", "by_email", "by_ip")},
        "recent": [],
    }


def merge(tallies: list[dict[str, Any]]) -> dict[str, Any]:
    """One tally of several (of one class or of many), as `tally` would give for all their events."""
    out = _empty()
    for t in tallies:
        for name in ("total", "failed", "lockouts", "errors"):
            out[name] += int(t[name])
        for name in ("by_category", "by_action", "by_hour", "users", "by_email", "by_ip"):
            for key, n in t[name].items():
                out[name][key] = out[name].get(key, 0) + int(n)
        out["recent"] = sorted([*out["recent"], *t["recent"]], key=lambda e: e["sk"])[-RECENT_ERRORS:]
    return out


def report_from(t: dict[str, Any], since: str, until: str, truncated: bool) -> dict[str, Any]:
    """The system activity report of a tally (pure)."""
    return {
        "since": since,
        "until": until,
        "total": t["total"],
        "truncated": truncated,
        "by_category": _ranked(t["by_category"]),
        "by_action": _ranked(t["by_action"]),
        "by_hour": {f"{hour}:00:00Z": t["by_hour"][hour] for hour in sorted(t["by_hour"])},
        "failed_logins": {
            "total": t["failed"],
            "by_email": _ranked(t["by_email"], TOP),
            "by_ip": _ranked(t["by_ip"], TOP),
            "lockouts": t["lockouts"],
        },
        "top_users": [{"user_id": u, "events": n} for u, n in _ranked(t["users"], TOP).items()],
        "errors": {
            "total": t["errors"],
            "recent": [{k: v for k, v in e.items() if k != "sk"} for e in reversed(t["recent"])],
        },
    }


def build_report(items: list[dict[str, Any]], since: str, until: str, truncated: bool) -> dict[str, Any]:
    """The system activity report of some events (pure): counts by category, action and hour,
    failed logins, lockouts, top users, errors."""
    return report_from(merge(list(tally(items).values())), since, until, truncated)
