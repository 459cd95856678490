"""The one writer of the audit trail's counts (see counts): `count(now)`, the `cleanup/audit_tally`
job. A module of its own so that only the functions running it may write `audit_digests`."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from chalicelib import aws, timeutil
from chalicelib.audit import chain, model, store
from chalicelib.audit.counts import (
    LATE_REACH,
    MAX_HOURS_PER_RUN,
    RETENTION,
    STATE,
    Counts,
    Tallies,
    _by_user_minutes,
    _is_minute,
    _iso,
    _minute_keys,
    _t,
    _too_big,
    _total,
    hour_item,
    merged,
    minute_tallies,
    minutes_key,
    user_hours_key,
    user_minutes_key,
)
from chalicelib.util import from_dynamo, to_dynamo


class Tally(Counts):
    # --- the writer -----------------------------------------------------------------------------

    def count(self, now: float, time_left: Callable[[], float] | None = None) -> dict[str, Any]:
        """Count every finished minute not counted yet (at most MAX_HOURS_PER_RUN hours, while
        `time_left()` is positive: `more` says whether minutes were left for the next run), count
        again the sealed minutes whose count may be short, and put the hours whose minutes became
        final into the hour layer. Nothing before the first seal."""
        head = self._chain.head()
        if head is None or not self._chain.head_ok(head):
            return {"minutes": 0, "until": None, "recounted": 0, "more": False}
        state = self.state() or {
            "genesis": head["genesis"],
            **dict.fromkeys(("counted", "checked", "final"), head["genesis"]),
        }
        ttl = int(now + RETENTION)
        cut = model.minute_start(now - model.LANDED_AFTER_SECONDS)
        todo = chain.segments(_t(state["counted"]), cut, MAX_HOURS_PER_RUN + 1)
        done = minutes = 0
        for a, b in todo[:MAX_HOURS_PER_RUN]:
            if time_left is not None and time_left() <= 0:
                break
            minutes, done = minutes + self._count(a, b, ttl), done + 1
        counted = todo[done - 1][1] if done else _t(state["counted"])
        sealed = min(timeutil.parse_iso(head["end"]), counted)
        recent = max(model.minute_start(now - LATE_REACH), _t(state["genesis"]))
        recounted = self._recent(recent, sealed, ttl)
        checked, found = self._check(_t(state["checked"]), sealed, recent, ttl)
        final = max(_t(state["final"]), min(checked, model.minute_start(now - LATE_REACH)))
        self._roll_up(_t(state["final"]), final, ttl)
        stands = {"counted": counted, "checked": checked, "final": final}
        self._table.put_item(Item={**STATE, "genesis": state["genesis"], **{k: _iso(v) for k, v in stands.items()}})
        more = done < len(todo)
        return {"minutes": minutes, "until": _iso(counted), "recounted": recounted + found, "more": more}

    def _count(self, a: float, b: float, ttl: int, events: list[dict[str, Any]] | None = None) -> int:
        """Count the minutes of [a, b) (within one hour) from their events, overwriting them:
        each user's first, then the hour's. How many minutes were written."""
        hour = model.hour_start(a)
        if events is None:
            events = self._events.hour(model.hour_of(a), (_iso(a), _iso(b)))
        key = {"hour": minutes_key(timeutil.day(hour)), "seg": _iso(hour)}
        fresh = minute_tallies(events, a, b, store.tally)
        minutes = {**self._minutes(hour), **fresh}
        if _too_big(minutes):
            return 0  # a very busy hour: its minutes stay with the raw events
        for user, tallies in sorted(_by_user_minutes(events).items()):
            self._count_user(user, hour, tallies, ttl)
        self._table.put_item(Item={**key, "end": _iso(hour + 3600), "minutes": to_dynamo(minutes), "ttl": ttl})
        return len(fresh)

    def _count_user(self, user: str, hour: float, tallies: dict[str, Tallies], ttl: int) -> None:
        """One user's minutes of an hour, then their hour's counts from all their minutes."""
        names = {f"#m{n}": m for n, m in enumerate(tallies)}
        values = {f":m{n}": to_dynamo(t) for n, t in enumerate(tallies.values())}
        written = self._table.update_item(
            Key={"hour": user_minutes_key(user), "seg": _iso(hour)},
            UpdateExpression="SET " + ", ".join(f"{name} = :{name[1:]}" for name in names) + ", #t = :t",
            ExpressionAttributeNames={**names, "#t": "ttl"},
            ExpressionAttributeValues={**values, ":t": ttl},
            ReturnValues="ALL_NEW",
        )["Attributes"]
        mine = [v for k, v in from_dynamo(written).items() if _is_minute(k)]
        counted = {"end": _iso(hour + 3600), "tallies": merged(mine, store.merge_user)}
        self._table.update_item(
            Key={"hour": user_hours_key(user), "seg": timeutil.day(hour)},
            UpdateExpression="SET #h = :h, #t = :t",
            ExpressionAttributeNames={"#h": _iso(hour), "#t": "ttl"},
            ExpressionAttributeValues={":h": to_dynamo(counted), ":t": ttl},
        )

    def _minutes(self, hour: float) -> dict[str, Tallies]:
        key = {"hour": minutes_key(timeutil.day(hour)), "seg": _iso(hour)}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
        return from_dynamo(item.get("minutes") or {})

    def _recent(self, lo: float, hi: float, ttl: int) -> int:
        """Count the sealed minutes of [lo, hi) again (a write may still land in them) where their
        events are not as many as their counts say. How many minutes differed."""
        found = 0
        for a, b in chain.segments(lo, hi):
            events = self._events.hour(model.hour_of(a), (_iso(a), _iso(b)))
            stored = self._minutes(model.hour_start(a))
            differ = [m for m, n in minute_tallies(events, a, b, len).items() if _total(stored.get(m)) != n]
            if differ:
                self._count(a, b, ttl, events)
                found += len(differ)
        return found

    def _check(self, start: float, end: float, recent: float, ttl: int) -> tuple[float, int]:
        """Compare each digest of [start, end) with its minutes' counts, and count its period
        again when they differ (or the digest is gone), but for the periods from `recent` on,
        counted again already. Where the check got to, and how many minutes it counted again."""
        pos, found = start, 0
        while pos < end:
            head = self._chain.period(_iso(pos))
            stop = min(timeutil.parse_iso(head["end"]) if head else model.hour_start(pos) + 3600, end)
            if head is not None and timeutil.parse_iso(head["end"]) > end:
                break  # sealed further than counted: checked on a later run
            if pos < recent and (head is None or self._total(pos, stop) != int(head["count"])):
                found += self._count(pos, stop, ttl)
            pos = stop
        return pos, found

    def _total(self, a: float, b: float) -> int:
        stored = self._minutes(model.hour_start(a))
        return sum(_total(stored.get(m)) for m in _minute_keys(a, b))

    def _roll_up(self, old: float, new: float, ttl: int) -> None:
        """Put each hour whose minutes became final (its end in (old, new]) into the hour layer:
        from its minutes' counts or, for a very busy hour without them, its events."""
        hour = model.hour_start(old)
        while hour + 3600 <= new:
            minutes = self._minutes(hour)
            if minutes:
                tallies = merged(list(minutes.values()), store.merge)
            else:
                tallies = store.tally(self._events.hour(model.hour_of(hour)))
            self._table.put_item(Item=hour_item(hour, tallies, ttl))
            hour += 3600


def count(now: float | None = None, time_left: Callable[[], float] | None = None) -> dict[str, Any]:
    """Count the audit trail's minutes up to `now` (default: the clock). The `cleanup/audit_tally` job."""
    tally = Tally(aws.table("audit_events"), aws.table("audit_digests"), chain.digests())
    return tally.count(timeutil.now() if now is None else now, time_left)
