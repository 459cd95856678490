"""The audit trail's counts, which the report and a user's summary read instead of the events.

`tally.count(now)` (the `cleanup/audit_tally` job, every 5 minutes) is their one writer (a module
of its own: only the functions that run it may write `audit_digests`). In
`audit_digests`, under partitions named `counts-...` (no item of the chain is named like them):

- the minute layer: each finished minute's `store.tally` (`counts-minutes#<day>` / hour start, a
  map of the hour's minutes) and each user's `store.user_tally` of the minutes they did something
  in (`counts-minutes-user#<user_id>` / hour start, an attribute per minute, written first: a
  minute in the hour's item is counted for every user);
- the hour layer, for long ranges: an hour's counts once all its minutes are final
  (`counts-hours#<day>` / hour start), and each user's (`counts-hours-user#<user_id>` / day, an
  attribute per hour, rewritten from their minutes whenever those are written);
- where it stands (`counts-state`): minutes counted up to `counted`, checked against the chain's
  digests up to `checked`, final before `final` (the hours before its hour are in the hour layer).

Counting starts at the chain's genesis (after the first seal). A minute is counted from its
events once finished (`model.LANDED_AFTER_SECONDS` after its end), and counted again, overwritten,
never added to, where its count may be short: a write landing after the count (retried, within its
Lambda's 15 minutes) shows when its period is sealed (the digest lists more events than the
minutes count) or, landing after the seal, when the sealed minutes of the last LATE_REACH are
read again. A minute is final once sealed, checked and LATE_REACH old. So a count that dies half
way and runs again counts once.

`blocks(since, until)` gives the counted spans a range can use; `cover` picks those that tile it,
and the events of what no count covers are read raw (api)."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import Key

from chalicelib import aws, timeutil
from chalicelib.audit import chain, model, store
from chalicelib.audit.actions import MAX_RETENTION_SECONDS
from chalicelib.util import from_dynamo, to_dynamo

MAX_HOURS_PER_RUN = 24 * 14
LATE_REACH = 20 * 60  # a late write lands within its Lambda's 15 minutes; the count runs every 5
RETENTION = MAX_RETENTION_SECONDS + 30 * 24 * 3600
MAX_COUNTS_BYTES = 300_000  # a counts item stays under DynamoDB's 400 KB
COUNTS_KEPT_WHEN_CUT = 500
STATE = {"hour": "counts-state", "seg": "state"}
LAYERS = ("counts-minutes#", "counts-minutes-user#", "counts-hours#", "counts-hours-user#", "counts-state")

Tallies = dict[str, dict[str, Any]]  # a tally per retention class, as store.tally gives


def minutes_key(day: str) -> str:
    """The partition of one UTC day's minute counts (an item per hour)."""
    return f"counts-minutes#{day}"


def user_minutes_key(user_id: str) -> str:
    return f"counts-minutes-user#{user_id}"


def hours_key(day: str) -> str:
    """The partition of one UTC day's hour counts (an item per hour)."""
    return f"counts-hours#{day}"


def user_hours_key(user_id: str) -> str:
    return f"counts-hours-user#{user_id}"


class Counts:
    def __init__(self, events_table: Any, table: Any, digests: chain.Digests) -> None:
        self._events = store.AuditStore(events_table)
        self._table = table
        self._chain = digests

    def state(self) -> dict[str, Any] | None:
        return self._table.get_item(Key=STATE, ConsistentRead=True).get("Item")

    # --- the reader -----------------------------------------------------------------------------

    def blocks(self, since: float, until: float, user_id: str | None = None) -> list[Block]:
        """The counted spans within reach of [since, until] (`cover` picks from them): the final
        hours and, minute by minute, the hour the range starts in and those not final yet; of
        everybody (the report) or of one user (the summary), whose final hours without their
        events count nothing. A Query per day of the range (a user's: one in all) and one or two
        for the minutes."""
        state = self.state()
        if state is None:
            return []
        first, lo, hi = _iso(model.hour_start(since)), _iso(since), _iso(until)
        rolled = _iso(model.hour_start(_t(state["final"])))
        if user_id is None:
            found = [p for day in _days(first, hi) for p in self._query(hours_key(day), first, hi)]
        else:
            found = [p for d in self._query(user_hours_key(user_id), first[:10], hi[:10] + "~") for p in _user_hours(d)]
        hours = [p for p in found if first <= p["seg"] < rolled]
        out = [Block(p["seg"], p["end"], p["tallies"], bool(p.get("cut"))) for p in hours]
        if user_id is not None:
            out += _nothing_between(hours, max(first, state["genesis"]), rolled)
        seen: set[str] = set()
        for a, b in sorted({(first, lo), (max(first, min(_iso(model.hour_start(until)), rolled)), hi)}):
            items = [i for day in _days(a, b) for i in self._query(minutes_key(day), a, b) if i["seg"] not in seen]
            mine = {} if user_id is None else {i["seg"]: i for i in self._query(user_minutes_key(user_id), a, b)}
            for item in items:
                seen.add(item["seg"])
                minutes = item["minutes"]
                if user_id is not None:
                    minutes = {m: mine.get(item["seg"], {}).get(m, {}) for m in minutes}
                out += minute_blocks(minutes, item["seg"], item["end"])
        return out

    def _query(self, partition: str, lo: str, hi: str) -> list[dict[str, Any]]:
        pages = aws.query_pages(
            self._table, KeyConditionExpression=Key("hour").eq(partition) & Key("seg").between(lo, hi)
        )
        return [from_dynamo(i) for page in pages for i in page.get("Items", [])]


# --- pure -----------------------------------------------------------------------------------------


class Block(NamedTuple):
    """Counts of the events whose sort keys fall in [lo, hi), per retention class."""

    lo: str
    hi: str
    tallies: dict[str, Any]
    cut: bool = False
    empty: bool = False  # counts nothing anywhere within: any part of it may be used


def cover(blocks: list[Block], lo: str, hi: str) -> tuple[list[Block], list[tuple[str, str]]]:
    """The blocks that tile [lo, hi] (`hi` the last millisecond, inclusive) without overlapping,
    earliest first and the longest of those, and the sort-key ranges left to the raw events as
    `between` bounds (a bare time as the upper bound excludes the events at that time: they
    belong to the next block) (pure)."""
    ordered = sorted(sorted(blocks, key=lambda b: b.hi, reverse=True), key=lambda b: b.lo)
    chosen: list[Block] = []
    gaps: list[tuple[str, str]] = []
    pos = lo
    for block in ordered:
        if block.empty and block.lo < pos < block.hi:
            block = block._replace(lo=pos)
        if block.empty and block.lo < block.hi and block.hi > hi:
            block = block._replace(hi=hi)
        if block.lo < pos or block.hi > hi or block.lo >= block.hi:
            continue
        if block.lo > pos:
            gaps.append((pos, block.lo))
        chosen.append(block)
        pos = block.hi
    gaps.append((pos, hi + "~"))
    return chosen, gaps


def merged(tallies: list[Tallies], merge: Callable[[list[dict[str, Any]]], dict[str, Any]]) -> Tallies:
    """One tally per retention class of several (`merge`: store.merge or store.merge_user) (pure)."""
    classes = sorted({c for t in tallies for c in t})
    return {c: merge([t[c] for t in tallies if c in t]) for c in classes}


def hour_item(hour: float, tallies: Tallies, ttl: int) -> dict[str, Any]:
    """An hour's counts as stored; those of very many users, emails or IPs keep the
    COUNTS_KEPT_WHEN_CUT largest of each and say `cut` (pure)."""
    cut = _too_big(tallies)
    if cut:
        for t in tallies.values():
            for name in ("users", "by_email", "by_ip"):
                t[name] = dict(sorted(t[name].items(), key=lambda kv: -kv[1])[:COUNTS_KEPT_WHEN_CUT])
    key = {"hour": hours_key(timeutil.day(hour)), "seg": _iso(hour), "end": _iso(hour + 3600)}
    return {**key, "tallies": to_dynamo(tallies), "cut": cut, "ttl": ttl}


def minute_tallies(
    items: list[dict[str, Any]], lo: float, hi: float, fn: Callable[[list[dict[str, Any]]], Any]
) -> dict[str, Any]:
    """`fn` (tally, user_tally, len) of each minute of [lo, hi), empty minutes included (pure)."""
    by_minute: dict[str, list[dict[str, Any]]] = {m: [] for m in _minute_keys(lo, hi)}
    for item in items:
        by_minute.setdefault(item["sk"][:16], []).append(item)
    return {m: fn(events) for m, events in by_minute.items()}


def minute_blocks(minutes: dict[str, dict[str, Any]], lo: str, hi: str) -> list[Block]:
    """A block per counted minute, clipped to the span [lo, hi) it was counted in (pure)."""
    out = []
    for minute, tallies in minutes.items():
        start = timeutil.parse_iso(minute + ":00Z")
        out.append(Block(max(_iso(start), lo), min(_iso(start + 60), hi), tallies))
    return out


def _nothing_between(hours: list[dict[str, Any]], lo: str, hi: str) -> list[Block]:
    """Empty blocks over the final time [lo, hi) outside a user's hours (pure)."""
    out, pos = [], lo
    for p in sorted(hours, key=lambda p: p["seg"]):
        if p["seg"] > pos:
            out.append(Block(pos, min(p["seg"], hi), {}, empty=True))
        pos = max(pos, p["end"])
    if pos < hi:
        out.append(Block(pos, hi, {}, empty=True))
    return [b for b in out if b.lo < b.hi]


def _user_hours(day_item: dict[str, Any]) -> list[dict[str, Any]]:
    """The hours of one user's day item: an attribute per hour, named by its start (pure)."""
    return [{"seg": name, **value} for name, value in day_item.items() if name not in ("hour", "seg", "ttl")]


def _by_user_minutes(items: list[dict[str, Any]]) -> dict[str, dict[str, Tallies]]:
    """Each user's tallies of the minutes they did something in (pure)."""
    out: dict[str, dict[str, list[dict[str, Any]]]] = {}
    for item in items:
        if item.get("user_id"):
            out.setdefault(str(item["user_id"]), {}).setdefault(item["sk"][:16], []).append(item)
    return {user: {m: store.user_tally(e) for m, e in minutes.items()} for user, minutes in out.items()}


def _minute_keys(lo: float, hi: float) -> list[str]:
    """`YYYY-MM-DDTHH:MM` of every minute touching [lo, hi) (pure)."""
    t, out = model.minute_start(lo), []
    while t < hi:
        out.append(_iso(t)[:16])
        t += 60
    return out


def _is_minute(name: str) -> bool:
    return len(name) == 16 and name[10] == "T" and name[13] == ":"


def _total(tallies: Tallies | None) -> int:
    return -1 if tallies is None else sum(int(t["total"]) for t in tallies.values())


def _too_big(value: Any) -> bool:
    return len(json.dumps(value, default=str)) > MAX_COUNTS_BYTES


def _days(lo: str, hi: str) -> list[str]:
    day, last, out = model.hour_start(timeutil.parse_iso(lo)) // 86400 * 86400, timeutil.parse_iso(hi), []
    while day <= last:
        out.append(timeutil.day(day))
        day += 86400
    return out


def _iso(ts: float) -> str:
    return timeutil.iso_ms(ts)


def _t(value: str) -> float:
    return timeutil.parse_iso(value)


def counts() -> Counts:
    return Counts(aws.table("audit_events"), aws.table("audit_digests"), chain.digests())
