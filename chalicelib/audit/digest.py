"""Tamper evidence for the audit trail, as CloudTrail's digest files do it.

`seal(now)` (the `cleanup/audit_digest` job, hourly) writes a digest for every period not sealed
yet, up to `now - SEAL_GRACE`, one per hour at most: the digest lists a fingerprint of every event
of the period in canonical order (sort key order across the hour's shards), hashes that list,
chains the hash to the previous digest's and signs it with HMAC (`AUDIT_DIGEST_KEY`). Running it
now seals everything up to now. The head of the chain (`hour="chain"`) is signed too.

`verify(since, until)` recomputes it all and names every problem: an event changed, deleted,
inserted or moved out of its place (reordered), a digest edited or deleted, a broken link. Events
newer than the last seal are checked through their own MAC (see model), so an edit is caught at
once; a deletion, once the period is sealed. An event missing after its TTL passed is expected.
An event in a sealed period that no digest lists but whose MAC is valid was written late by
Inkwell itself (a retried or queued write), not by someone without the key: it is a note, not
a problem.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from boto3.dynamodb.conditions import Key

from chalicelib import aws, config, secret, timeutil
from chalicelib.audit import model
from chalicelib.audit.actions import MAX_RETENTION_SECONDS
from chalicelib.audit.store import AuditStore, tally, user_tally
from chalicelib.util import from_dynamo, to_dynamo

SEAL_GRACE = 60.0  # seconds: writes keyed before now - grace have landed (see model.REKEY_AFTER_SECONDS)
GENESIS_HOURS = 48  # the first seal reaches this far back
MAX_SEGMENTS_PER_RUN = 24 * 14
LEAVES_PER_PART = 500
MAX_VERIFY_EVENTS = 20_000  # one verify call reads about this many events at most (whole hours)
DIGEST_RETENTION = MAX_RETENTION_SECONDS + 30 * 24 * 3600
CHAIN = {"hour": "chain", "seg": "head"}
TAIL_REACH = 2 * 3600  # the tally counts at most this far behind its cut (a seal further behind: raw)
TAIL_RETENTION = 2 * 24 * 3600
LATE_REACH = 20 * 60  # a late write lands within its Lambda's 15 minutes; the tally runs every 5


class TamperDetected(RuntimeError):
    """The chain head does not carry a valid signature: sealing stops until someone looks."""


# --- pure: leaves, hashes, signatures -----------------------------------------------------------


def leaf(item: dict[str, Any]) -> str:
    """One line of a digest: `<sort key> <fingerprint> <ttl>`."""
    return f"{item['sk']} {model.fingerprint(item)} {int(item.get('ttl', 0))}"


def root(lines: list[str]) -> str:
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


def head_hash(head: dict[str, Any]) -> str:
    fields = {k: head[k] for k in ("seq", "start", "end", "prev", "count", "root")}
    fields["seq"], fields["count"] = int(fields["seq"]), int(fields["count"])
    return hashlib.sha256(json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()).hexdigest()


def sign(value: str, key: str) -> str:
    return hmac.new(key.encode(), b"digest:" + value.encode(), hashlib.sha256).hexdigest()


def make_digest(seq: int, start: str, end: str, prev: str, lines: list[str], key: str) -> dict[str, Any]:
    """The head of a digest (without its storage keys) and its parts' leaves."""
    head: dict[str, Any] = {"seq": seq, "start": start, "end": end, "prev": prev, "count": len(lines)}
    head["root"] = root(lines)
    head["hash"] = head_hash(head)
    head["sig"] = sign(head["hash"], key)
    head["parts"] = [lines[i : i + LEAVES_PER_PART] for i in range(0, len(lines), LEAVES_PER_PART)]
    return head


def segments(start: float, cut: float, limit: int = MAX_SEGMENTS_PER_RUN) -> list[tuple[float, float]]:
    """[start, cut) split at hour boundaries (pure)."""
    out: list[tuple[float, float]] = []
    while start < cut and len(out) < limit:
        end = min(model.hour_start(start) + 3600, cut)
        out.append((start, end))
        start = end
    return out


@dataclass
class Problem:
    type: str  # event_changed | event_deleted | event_inserted | event_reordered | digest_invalid | digest_missing | chain_broken
    message: str
    event_id: str | None = None
    digest: str | None = None

    def public(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v is not None}


@dataclass
class Findings:
    problems: list[Problem] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    checked: int = 0

    def add(self, type_: str, message: str, event_id: str | None = None, digest: str | None = None) -> None:
        self.problems.append(Problem(type_, message, event_id, digest))


def compare(
    leaves: dict[str, tuple[str, str, int, str]],
    items: list[dict[str, Any]],
    sealed_in: dict[str, str],
    now: float,
    key: str,
    out: Findings,
) -> None:
    """Compare the sealed leaves (sk -> (id, fingerprint, ttl, digest)) with the stored events of
    the same hours (pure); `sealed_in` names the digest whose period holds each sort key. Events
    outside any sealed period are checked by their MAC only."""
    by_sk = {i["sk"]: i for i in items}
    by_id: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        by_id.setdefault(str(item.get("id")), []).append(item)
    moved: set[str] = set()
    for sk, (event_id, print_, ttl, digest) in sorted(leaves.items()):
        sealed = by_sk.get(sk)
        if sealed is not None:
            if model.fingerprint(sealed) != print_:
                out.add("event_changed", f"event {event_id} differs from what digest {digest} sealed", event_id, digest)
            continue
        elsewhere = [i for i in by_id.get(event_id, []) if i["sk"] != sk]
        if elsewhere:
            moved.update(i["sk"] for i in elsewhere)
            out.add(
                "event_reordered",
                f"event {event_id} was sealed at {sk} but is stored at {elsewhere[0]['sk']}",
                event_id,
                digest,
            )
        elif ttl > now:
            out.add("event_deleted", f"event {event_id} sealed by digest {digest} is gone", event_id, digest)
    for item in items:
        if item["sk"] in leaves or item["sk"] in moved:
            continue
        event_id = str(item.get("id"))
        signed = model.mac_ok(item, key)
        if item["sk"] in sealed_in:
            if signed:
                out.notes.append(f"event {event_id} was written after its period was sealed")
            else:
                out.add(
                    "event_inserted",
                    f"event {event_id} at {item['sk']} is in a sealed period but in no digest",
                    event_id,
                    sealed_in[item["sk"]],
                )
        elif not signed:
            out.add("event_changed", f"event {event_id} does not match its signature (not sealed yet)", event_id)


# --- gateway ------------------------------------------------------------------------------------


class Digests:
    def __init__(self, events_table: Any, digests_table: Any, key: str) -> None:
        self._events = AuditStore(events_table)
        self._table = digests_table
        self._key = key

    def head(self) -> dict[str, Any] | None:
        return self._table.get_item(Key=CHAIN, ConsistentRead=True).get("Item")

    def head_ok(self, head: dict[str, Any]) -> bool:
        signed = f"{int(head['seq'])}|{head['end']}|{head['hash']}|{head.get('genesis', '')}"
        return hmac.compare_digest(str(head.get("sig", "")), sign(signed, self._key))

    def seal(self, now: float, time_left: Callable[[], float] | None = None) -> dict[str, Any]:
        """Seal every period up to now - SEAL_GRACE (at most MAX_SEGMENTS_PER_RUN), while
        `time_left()` (seconds) is positive: `more` says whether periods were left to seal.
        Raises TamperDetected on a forged head."""
        cut = minute_start(now - SEAL_GRACE)  # periods end on a minute: the tail's minute counts meet them
        head = self.head()
        if head is not None and not self.head_ok(head):
            raise TamperDetected("the audit chain head's signature is invalid")
        if head is None:
            start, seq, prev = model.hour_start(cut) - GENESIS_HOURS * 3600, 0, ""
            genesis = timeutil.iso_ms(start)
        else:
            start, seq, prev, genesis = timeutil.parse_iso(head["end"]), int(head["seq"]), head["hash"], head["genesis"]
        sealed = events = 0
        todo = segments(start, cut, MAX_SEGMENTS_PER_RUN + 1)
        for a, b in todo[:MAX_SEGMENTS_PER_RUN]:
            if time_left is not None and time_left() <= 0:
                break
            hour = model.hour_of(a)
            items = self._events.hour(hour, (timeutil.iso_ms(a), timeutil.iso_ms(b)))
            lines = [leaf(i) for i in items]
            digest = make_digest(seq + 1, timeutil.iso_ms(a), timeutil.iso_ms(b), prev, lines, self._key)
            ttl = int(now + DIGEST_RETENTION)
            counts = [counts_item(digest, items, ttl), *minute_ops(digest, items, ttl)]
            self._write(hour, digest, seq, genesis, now, counts)
            seq, prev = digest["seq"], digest["hash"]
            sealed, events = sealed + 1, events + len(lines)
        until = timeutil.iso_ms(todo[sealed - 1][1]) if sealed else None
        return {"sealed": sealed, "events": events, "until": until, "seq": seq, "more": sealed < len(todo)}

    def _write(
        self, hour: str, digest: dict[str, Any], old_seq: int, genesis: str, now: float, counts: list[dict[str, Any]]
    ) -> None:
        ttl = int(now + DIGEST_RETENTION)
        seg = digest["start"]
        parts = digest.pop("parts")
        head_item = {
            "hour": hour,
            "seg": seg,
            **digest,
            "parts": len(parts),
            "sealed_at": timeutil.iso_ms(now),
            "ttl": ttl,
        }
        pointer = {**CHAIN, "seq": digest["seq"], "end": digest["end"], "hash": digest["hash"], "genesis": genesis}
        pointer["sig"] = sign(f"{pointer['seq']}|{pointer['end']}|{pointer['hash']}|{genesis}", self._key)
        name = self._table.name
        puts = [
            {
                "Put": {
                    "TableName": name,
                    "Item": {
                        "hour": hour,
                        "seg": f"{seg}#{digest['end']}#p{n:04d}",
                        "leaves": "\n".join(p),
                        "ttl": ttl,
                    },
                }
            }
            for n, p in enumerate(parts)
        ]
        ops = [{kind: {"TableName": name, **args} for kind, args in op.items()} for op in counts[1:]]
        puts = ops + puts
        puts.append({"Put": {"TableName": name, "Item": counts[0]}})
        puts.append({"Put": {"TableName": name, "Item": head_item, "ConditionExpression": "attribute_not_exists(seg)"}})
        if old_seq:
            condition = {"ConditionExpression": "seq = :old", "ExpressionAttributeValues": {":old": old_seq}}
        else:
            condition = {"ConditionExpression": "attribute_not_exists(seg)"}
        puts.append({"Put": {"TableName": name, "Item": pointer, **condition}})
        client = self._table.meta.client
        # One transaction (all or nothing, and two concurrent seals cannot both extend the chain)
        # unless the leaves and users are too many for it: then the minutes', users' counts and the
        # parts go first (each keyed by user or part and the period, so a seal run again writes
        # the same values again: counted once; exact for their period whether or not it is sealed); the
        # period's counts, the head and the pointer always together, so the counts exist exactly
        # when the digest does.
        if len(puts) > 40:
            for op in puts[:-3]:
                if "Put" in op:
                    client.put_item(**op["Put"])
                else:
                    client.update_item(**op["Update"])
            puts = puts[-3:]
        client.transact_write_items(TransactItems=puts)

    def blocks(self, since: float, until: float, user_id: str | None = None) -> list[Block]:
        """The counted spans within reach of [since, until] (`cover` picks from them): each sealed
        period whole and minute by minute, then the minutes `tally` counted after the last seal;
        of everybody (the report) or of one user (the summary), whose sealed time outside their
        periods counts nothing. One Query per day of the range (a user's: one in all), the chain
        head and the tail's one or two hours."""
        first, hi = timeutil.iso_ms(model.hour_start(since)), timeutil.iso_ms(until)
        head = self.head()
        if head is not None and not self.head_ok(head):
            head = None
        if user_id is None:
            found = [p for day in _days(since, until) for p in self._query(counts_key(day), first, hi)]
        else:
            days = self._query(user_counts_key(user_id), first[:10], hi[:10] + "~")
            found = [p for d in days for p in _user_periods(d)]
        periods = [p for p in found if "late" not in p]
        out = [Block(p["seg"], p["end"], p["tallies"], bool(p.get("cut"))) for p in periods]
        out += [minute_blocks({p["late"]: p["tallies"]}, "", "~")[0]._replace(late=True) for p in found if "late" in p]
        # the minutes of the sealed periods the range starts or ends in
        lo = timeutil.iso_ms(since)
        edges = {(first, lo)}
        if head is not None and hi < head["end"]:
            edges.add((timeutil.iso_ms(model.hour_start(until)), hi))
        for a, b in sorted(edges):
            key = minutes_key(a[:10]) if user_id is None else user_minutes_key(user_id)
            for p in self._query(key, a, b):
                counted = p["minutes"] if user_id is None else _every_minute(p["minutes"], p["seg"], p["end"])
                out += minute_blocks(counted, p["seg"], p["end"])
        if user_id is not None and head is not None:
            out += _nothing_between(periods, max(first, head["genesis"]), head["end"])
        if head is None or head["end"] >= hi:
            return out
        end = timeutil.parse_iso(head["end"])
        lo = timeutil.iso_ms(model.hour_start(end))
        tails = [t for day in _days(end, until) for t in self._query(tail_key(day), lo, hi)]
        mine = {} if user_id is None else {t["seg"]: t for t in self._query(user_tail_key(user_id), lo, hi)}
        for t in tails:
            minutes = t["minutes"]
            if user_id is not None:
                minutes = {m: mine.get(t["seg"], {}).get(m, {}) for m in minutes}
            out += minute_blocks(minutes, t["seg"], t["end"])
        return out

    def _query(self, partition: str, lo: str, hi: str) -> list[dict[str, Any]]:
        pages = aws.query_pages(
            self._table, KeyConditionExpression=Key("hour").eq(partition) & Key("seg").between(lo, hi)
        )
        return [from_dynamo(i) for page in pages for i in page.get("Items", [])]

    def tally(self, now: float) -> dict[str, Any]:
        """Count each finished minute after the last seal (up to now - SEAL_GRACE, as the seal;
        at most TAIL_REACH back) that is not counted yet: per hour, one item of minute counts
        (`tail#<day>` / hour start) and one per user active in those minutes (`tail#<user_id>`
        / hour start, written first: a minute in the hour's item is counted for every user).
        A minute is counted again from its events and overwritten, never added to, so a tally
        run again or retried counts once. The `cleanup/audit_tally` job (every 5 minutes)."""
        cut = minute_start(now - SEAL_GRACE)
        head = self.head()
        if head is None:
            return {"minutes": 0, "until": None}
        start = minute_start(max(timeutil.parse_iso(head["end"]), cut - TAIL_REACH))
        ttl, counted = int(now + TAIL_RETENTION), 0
        for a, b in segments(start, cut):
            hour = model.hour_start(a)
            key = {"hour": tail_key(timeutil.day(hour)), "seg": timeutil.iso_ms(hour)}
            item = self._table.get_item(Key=key, ConsistentRead=True).get("Item") or {}
            have = from_dynamo(item.get("minutes") or {})
            todo = [m for m in _minute_keys(a, b) if m not in have]
            if not todo:
                continue
            lo = timeutil.parse_iso(todo[0] + ":00Z")
            events = self._events.hour(model.hour_of(hour), (timeutil.iso_ms(lo), timeutil.iso_ms(b)))
            fresh = minute_tallies(events, lo, b, tally)
            minutes = {**have, **fresh}
            if len(json.dumps(minutes, default=str)) > MAX_COUNTS_BYTES:
                continue  # a very busy hour: its minutes stay with the raw events
            for user, tallies in _by_user_minutes(events).items():
                names = {f"#m{n}": m for n, m in enumerate(tallies)}
                values = {f":m{n}": to_dynamo(t) for n, t in enumerate(tallies.values())}
                self._table.update_item(
                    Key={"hour": user_tail_key(user), "seg": key["seg"]},
                    UpdateExpression="SET " + ", ".join(f"#m{n} = :m{n}" for n in range(len(names))) + ", #t = :t",
                    ExpressionAttributeNames={**names, "#t": "ttl"},
                    ExpressionAttributeValues={**values, ":t": ttl},
                )
            end = timeutil.iso_ms(hour + 3600)
            self._table.put_item(Item={**key, "end": end, "minutes": to_dynamo(minutes), "ttl": ttl})
            counted += len(fresh)
        return {"minutes": counted, "until": timeutil.iso_ms(cut), "late": self._late(now, head)}

    def _late(self, now: float, head: dict[str, Any]) -> int:
        """Count the events written into a sealed minute after its seal (verify notes them), so
        that the counts equal the events: such a write lands within its Lambda's time (at most
        15 minutes) of its key, so the sealed minutes of the last LATE_REACH are read again and
        each one holding more events than its digest's minute counts gets an addendum of those
        its digest does not list: `counts#<day>` / `<minute>~late` and, per user, an attribute
        `late#<minute>` of their day item; recounted and overwritten, never added to."""
        end = timeutil.parse_iso(head["end"])
        start = max(minute_start(now - LATE_REACH), timeutil.parse_iso(head["genesis"]))
        ttl, found = int(now + DIGEST_RETENTION), 0
        for a, b in segments(start, end):
            hour = timeutil.iso_ms(model.hour_start(a))
            periods = self._query(minutes_key(hour[:10]), hour, timeutil.iso_ms(b))
            events = self._events.hour(model.hour_of(a), (timeutil.iso_ms(a), timeutil.iso_ms(b)))
            for minute, items in _by_minute(events).items():
                at = minute + ":00.000Z"
                period = next((p for p in periods if p["seg"] <= at < p["end"]), None)
                if period is None:
                    continue  # its minutes were too many to keep: left as they are
                if len(items) <= sum(int(t["total"]) for t in period["minutes"].get(minute, {}).values()):
                    continue
                listed = self._leaves(period["seg"])
                late = [i for i in items if i["sk"] not in listed]
                found += len(late)
                item = {"hour": counts_key(minute[:10]), "seg": minute + "~late", "late": minute}
                self._table.put_item(Item={**item, "tallies": to_dynamo(tally(late)), "ttl": ttl})
                for user, events_of in _by_user(late).items():
                    self._table.update_item(
                        Key={"hour": user_counts_key(user), "seg": minute[:10]},
                        UpdateExpression="SET #l = :l, #t = :t",
                        ExpressionAttributeNames={"#l": "late#" + minute, "#t": "ttl"},
                        ExpressionAttributeValues={":l": to_dynamo({"tallies": user_tally(events_of)}), ":t": ttl},
                    )
        return found

    def _leaves(self, seg: str) -> set[str]:
        """The sort keys the digest of the period starting at `seg` lists."""
        hour = model.hour_of(timeutil.parse_iso(seg))
        parts = self._query(hour, seg + "#", seg + "#~")
        return {line.split(" ", 1)[0] for p in parts for line in str(p.get("leaves", "")).split("\n") if line}

    # --- verify ---------------------------------------------------------------------------------

    def verify(
        self, since: float, until: float, now: float, time_left: Callable[[], float] | None = None
    ) -> dict[str, Any]:
        """Check [since, until] hour by hour until MAX_VERIFY_EVENTS events were read or
        `time_left()` (seconds) ran out, at least one hour: then `complete` is false and the
        hours left start at `next_since` (ask again from there, with the same `until`)."""
        out = Findings()
        steps = _hour_steps(since, until)
        items: list[dict[str, Any]] = []
        done = 0
        for step in steps:
            if done and (len(items) >= MAX_VERIFY_EVENTS or (time_left is not None and time_left() <= 0)):
                break
            items += self._events.hour(model.hour_of(step))
            done += 1
        next_since = None
        if done < len(steps):
            until, next_since = steps[done] - 0.001, timeutil.iso(steps[done])
        hours = [model.hour_of(t) for t in steps[:done]]
        heads, parts = self._load(hours)
        pointer = self.head()
        leaves: dict[str, tuple[str, str, int, str]] = {}
        sealed_spans: list[tuple[str, str, str]] = []
        for head in heads:
            name = _name(head)
            if head_hash(head) != head["hash"] or not hmac.compare_digest(
                str(head["sig"]), sign(head["hash"], self._key)
            ):
                out.add(
                    "digest_invalid", f"digest {name} was edited (its hash or signature does not match)", digest=name
                )
                continue
            lines = [
                line
                for n in range(int(head["parts"]))
                for line in parts.get(f"{head['seg']}#{head['end']}#p{n:04d}", "").split("\n")
                if line
            ]
            if len(lines) != int(head["count"]) or root(lines) != head["root"]:
                out.add("digest_invalid", f"the event list of digest {name} was edited or deleted", digest=name)
                continue
            sealed_spans.append((head["start"], head["end"], name))
            for line in lines:
                sk, print_, ttl = line.split(" ")
                leaves[sk] = (sk.split("#", 1)[1], print_, int(ttl), name)
        window = (timeutil.iso_ms(model.hour_start(since)), timeutil.iso_ms(model.hour_start(until) + 3600))
        self._check_chain(heads, pointer, window, now, out)
        sealed_in = {i["sk"]: name for i in items for start, end, name in sealed_spans if start <= i["sk"] < end}
        compare(leaves, items, sealed_in, now, self._key, out)
        out.checked = len(items)
        return {
            "valid": not out.problems,
            "checked": out.checked,
            "problems": [p.public() for p in out.problems],
            "digests": len(heads),
            "sealed_until": pointer["end"] if pointer else None,
            "since": timeutil.iso_ms(since),
            "until": timeutil.iso_ms(until),
            "notes": out.notes[:50],
            "complete": next_since is None,
            "next_since": next_since,
        }

    def _load(self, hours: list[str]) -> tuple[list[dict[str, Any]], dict[str, str]]:
        heads: list[dict[str, Any]] = []
        parts: dict[str, str] = {}
        for hour in hours:
            pages = aws.query_pages(self._table, KeyConditionExpression=Key("hour").eq(hour), ConsistentRead=True)
            for item in (i for page in pages for i in page.get("Items", [])):
                if "leaves" in item:
                    parts[item["seg"]] = item["leaves"]
                else:
                    heads.append(item)
        return sorted(heads, key=lambda h: h["start"]), parts

    def _previous(self, head: dict[str, Any]) -> dict[str, Any] | None:
        before = model.hour_of(timeutil.parse_iso(head["start"]) - 0.001)
        result = self._table.query(KeyConditionExpression=Key("hour").eq(before), ConsistentRead=True)
        found = [i for i in result.get("Items", []) if "leaves" not in i and i.get("end") == head["start"]]
        return found[0] if found else None

    def _check_chain(
        self,
        heads: list[dict[str, Any]],
        pointer: dict[str, Any] | None,
        window: tuple[str, str],
        now: float,
        out: Findings,
    ) -> None:
        """Sealed periods must cover [genesis, sealed end) without a gap, each digest linked to the
        one before it; `window` is the hour-aligned range being verified."""
        if pointer is not None and not self.head_ok(pointer):
            out.add("digest_invalid", "the chain head was edited (its signature does not match)", digest="chain")
            pointer = None
        if pointer is None:
            if heads:
                out.add("digest_missing", "the chain head is gone while digests exist", digest="chain")
            return
        cursor = max(window[0], pointer["genesis"])
        tail = min(window[1], pointer["end"])
        prev: dict[str, Any] | None = None
        if heads and int(heads[0]["seq"]) > 1:
            prev = self._previous(heads[0])
            expired = timeutil.parse_iso(heads[0]["start"]) < now - DIGEST_RETENTION + 7 * 24 * 3600
            if prev is None and heads[0]["start"] <= cursor and not expired:
                name = _name(heads[0])
                out.add("digest_missing", f"the digest before {name} is gone", digest=f"before {name}")
        for head in heads:
            name = _name(head)
            if head["start"] > cursor:
                out.add(
                    "digest_missing",
                    f"no digest covers {cursor} to {head['start']}",
                    digest=f"{cursor}..{head['start']}",
                )
            if prev is not None and (head["prev"] != prev["hash"] or int(head["seq"]) != int(prev["seq"]) + 1):
                out.add("chain_broken", f"digest {name} does not link to digest {_name(prev)}", digest=name)
            prev, cursor = head, max(cursor, head["end"])
        if cursor < tail:
            out.add("digest_missing", f"no digest covers {cursor} to {tail}", digest=f"{cursor}..{tail}")
        if prev is not None and prev["end"] == pointer["end"] and prev["hash"] != pointer["hash"]:
            out.add("chain_broken", f"the chain head does not point at digest {_name(prev)}", digest="chain")


MAX_COUNTS_BYTES = 300_000  # a counts item stays under DynamoDB's 400 KB
COUNTS_KEPT_WHEN_CUT = 500


def counts_key(day: str) -> str:
    """The `audit_digests` partition of one UTC day's counts (no hour is named like it)."""
    return f"counts#{day}"


def counts_item(digest: dict[str, Any], items: list[dict[str, Any]], ttl: int) -> dict[str, Any]:
    """The sealed period's counts (`store.tally` of its events), which the report reads instead
    of the events: one item per period, partition `counts#<day of its start>`, sort key its start.
    Written with the digest, from the same events, so a period is counted once and exactly (pure)."""
    tallies = tally(items)
    cut = False
    if len(json.dumps(tallies, default=str)) > MAX_COUNTS_BYTES:  # very many users, emails or IPs in one hour
        cut = True
        for t in tallies.values():
            for name in ("users", "by_email", "by_ip"):
                t[name] = dict(sorted(t[name].items(), key=lambda kv: -kv[1])[:COUNTS_KEPT_WHEN_CUT])
    return {
        "hour": counts_key(digest["start"][:10]),
        "seg": digest["start"],
        "end": digest["end"],
        "tallies": to_dynamo(tallies),
        "cut": cut,
        "ttl": ttl,
    }


def minutes_key(day: str) -> str:
    """The `audit_digests` partition of one day's sealed periods' minute counts."""
    return f"minutes#{day}"


def user_minutes_key(user_id: str) -> str:
    return f"minutes-user#{user_id}"


def user_counts_key(user_id: str) -> str:
    """The `audit_digests` partition of one user's counts (no hour is named like it)."""
    return f"user#{user_id}"


def minute_ops(digest: dict[str, Any], items: list[dict[str, Any]], ttl: int) -> list[dict[str, Any]]:
    """What the seal writes besides the period's counts, as transaction operations without their
    table (pure): the period's minute counts (`minutes#<day>` / period start, for a report that
    starts or ends inside it; left out when too large, that report then reads the events); each
    user's counts (`user#<user_id>` / day, an attribute per period named by its start, set by an
    update, never added to) and minute counts (`minutes-user#<user_id>` / period start)."""
    start, end = timeutil.parse_iso(digest["start"]), timeutil.parse_iso(digest["end"])
    ops: list[dict[str, Any]] = []
    minutes = minute_tallies(items, start, end, tally)
    if len(json.dumps(minutes, default=str)) <= MAX_COUNTS_BYTES:
        item = {"hour": minutes_key(digest["start"][:10]), "seg": digest["start"], "end": digest["end"]}
        ops.append({"Put": {"Item": {**item, "minutes": to_dynamo(minutes), "ttl": ttl}}})
    for user, events in sorted(_by_user(items).items()):
        period = {"end": digest["end"], "tallies": user_tally(events)}
        ops.append(
            {
                "Update": {
                    "Key": {"hour": user_counts_key(user), "seg": digest["start"][:10]},
                    "UpdateExpression": "SET #p = :p, #t = :t",
                    "ExpressionAttributeNames": {"#p": digest["start"], "#t": "ttl"},
                    "ExpressionAttributeValues": {":p": to_dynamo(period), ":t": ttl},
                }
            }
        )
        mine = _by_user_minutes(events)[user]
        if len(json.dumps(mine, default=str)) <= MAX_COUNTS_BYTES:
            item = {"hour": user_minutes_key(user), "seg": digest["start"], "end": digest["end"]}
            ops.append({"Put": {"Item": {**item, "minutes": to_dynamo(mine), "ttl": ttl}}})
    return ops


class Block(NamedTuple):
    """Counts of the events whose sort keys fall in [lo, hi), per retention class."""

    lo: str
    hi: str
    tallies: dict[str, Any]
    cut: bool = False
    empty: bool = False  # counts nothing anywhere within: any part of it may be used
    late: bool = False  # events written into a sealed minute after its seal: added to the block holding it


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
        if block.late:
            continue
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


def _nothing_between(periods: list[dict[str, Any]], lo: str, hi: str) -> list[Block]:
    """Empty blocks over the sealed time [lo, hi) outside a user's periods (pure)."""
    out, pos = [], lo
    for p in sorted(periods, key=lambda p: p["seg"]):
        if p["seg"] > pos:
            out.append(Block(pos, min(p["seg"], hi), {}, empty=True))
        pos = max(pos, p["end"])
    if pos < hi:
        out.append(Block(pos, hi, {}, empty=True))
    return [b for b in out if b.lo < b.hi]


def minute_start(ts: float) -> float:
    return float(int(ts) // 60 * 60)


def _minute_keys(lo: float, hi: float) -> list[str]:
    """`YYYY-MM-DDTHH:MM` of every minute touching [lo, hi) (pure)."""
    t, out = minute_start(lo), []
    while t < hi:
        out.append(timeutil.iso_ms(t)[:16])
        t += 60
    return out


def minute_tallies(
    items: list[dict[str, Any]], lo: float, hi: float, fn: Callable[[list[dict[str, Any]]], dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """`fn` (tally or user_tally) of each minute of [lo, hi), empty minutes included (pure)."""
    by_minute: dict[str, list[dict[str, Any]]] = {m: [] for m in _minute_keys(lo, hi)}
    for item in items:
        by_minute.setdefault(item["sk"][:16], []).append(item)
    return {m: fn(events) for m, events in by_minute.items()}


def minute_blocks(minutes: dict[str, dict[str, Any]], lo: str, hi: str) -> list[Block]:
    """A block per counted minute, clipped to the period [lo, hi) it was counted in (pure)."""
    out = []
    for minute, tallies in minutes.items():
        start = timeutil.parse_iso(minute + ":00Z")
        out.append(Block(max(timeutil.iso_ms(start), lo), min(timeutil.iso_ms(start + 60), hi), tallies))
    return out


def _every_minute(minutes: dict[str, Any], lo: str, hi: str) -> dict[str, Any]:
    """A sealed period's minutes of one user: those without their events count nothing (pure)."""
    return {m: minutes.get(m, {}) for m in _minute_keys(timeutil.parse_iso(lo), timeutil.parse_iso(hi))}


def _by_minute(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        out.setdefault(item["sk"][:16], []).append(item)
    return out


def _by_user(items: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = {}
    for item in items:
        if item.get("user_id"):
            out.setdefault(str(item["user_id"]), []).append(item)
    return out


def _by_user_minutes(items: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, Any]]]:
    """Each user's tallies of the minutes they did something in (pure)."""
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for user, events in _by_user(items).items():
        by_minute: dict[str, list[dict[str, Any]]] = {}
        for event in events:
            by_minute.setdefault(event["sk"][:16], []).append(event)
        out[user] = {m: user_tally(e) for m, e in by_minute.items()}
    return out


def _user_periods(day_item: dict[str, Any]) -> list[dict[str, Any]]:
    """The sealed periods of one user's day item: an attribute per period, named by its start
    (an item of one period, as the first seals wrote them, is one)."""
    if "tallies" in day_item:
        return [day_item]
    out = []
    for name, value in day_item.items():
        if name.startswith("late#"):
            out.append({"late": name[5:], **value})
        elif name not in ("hour", "seg", "ttl"):
            out.append({"seg": name, **value})
    return out


def tail_key(day: str) -> str:
    """The `audit_digests` partition of one day's minute counts after the last seal."""
    return f"tail#{day}"


def user_tail_key(user_id: str) -> str:
    return f"tail-user#{user_id}"


def _name(head: dict[str, Any]) -> str:
    return f"#{int(head['seq'])} {head['start']}..{head['end']}"


def _days(since: float, until: float) -> list[str]:
    day, last, out = int(since) // 86400 * 86400, until, []
    while day <= last:
        out.append(timeutil.day(day))
        day += 86400
    return out


def _hour_steps(since: float, until: float) -> list[float]:
    t, out = model.hour_start(since), []
    while t <= until:
        out.append(t)
        t += 3600
    return out


def digests() -> Digests:
    return Digests(aws.table("audit_events"), aws.table("audit_digests"), secret.get(config.AUDIT_DIGEST_KEY))


def seal(now: float | None = None, time_left: Callable[[], float] | None = None) -> dict[str, Any]:
    """Seal the audit trail up to `now` (default: the clock). The `cleanup/audit_digest` job."""
    return digests().seal(timeutil.now() if now is None else now, time_left)
