"""Tamper evidence for the audit trail, as CloudTrail's digest files do it.

`sealer.seal(now)` (the `cleanup/audit_digest` job, hourly) writes a digest for every period not
sealed yet, up to `now - SEAL_GRACE`, one per hour at most: the digest lists a fingerprint of every
event of the period in canonical order (sort key order across the hour's shards), hashes that list,
chains the hash to the previous digest's and signs it with the digest key (ECDSA P-256: a KMS key
on AWS, see signing). Running it now seals everything up to now. The head of the chain
(`hour="chain"`) is signed too. This module only reads and checks digests, with the public key.

`verify(since, until)` recomputes it all and names every problem: an event changed, deleted,
inserted or moved out of its place (reordered), a digest edited or deleted, a broken link. Events
newer than the last seal are checked through their own MAC (see model), so an edit is caught at
once; a deletion or a replacement, through the flush manifests (see manifest) two minutes after
the write, sealed or not. An event missing after its TTL passed is expected.
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
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, config, secret, timeutil
from chalicelib.audit import manifest, model, signing
from chalicelib.audit.actions import MAX_RETENTION_SECONDS
from chalicelib.audit.store import AuditStore

SEAL_GRACE = model.LANDED_AFTER_SECONDS
GENESIS_HOURS = 48  # the first seal reaches this far back
MAX_SEGMENTS_PER_RUN = 24 * 14
LEAVES_PER_PART = 500
MAX_VERIFY_EVENTS = 20_000  # one verify call reads about this many events at most (whole hours)
DIGEST_RETENTION = MAX_RETENTION_SECONDS + 30 * 24 * 3600
CHAIN = {"hour": "chain", "seg": "head"}


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


def legacy_sign(value: str, key: str) -> str:
    """The HMAC digests were signed with before the asymmetric key (still checked, never written)."""
    return hmac.new(key.encode(), b"digest:" + value.encode(), hashlib.sha256).hexdigest()


def pointer_text(pointer: dict[str, Any]) -> str:
    return f"{int(pointer['seq'])}|{pointer['end']}|{pointer['hash']}|{pointer.get('genesis', '')}"


def make_digest(
    seq: int, start: str, end: str, prev: str, lines: list[str], sign: Callable[[bytes], str]
) -> dict[str, Any]:
    """The head of a digest (without its storage keys) and its parts' leaves, signed by `sign`."""
    head: dict[str, Any] = {"seq": seq, "start": start, "end": end, "prev": prev, "count": len(lines)}
    head["root"] = root(lines)
    head["hash"] = head_hash(head)
    head["sig"] = sign(signing.message("digest", head["hash"]))
    head["alg"] = signing.ALGORITHM
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
    type: str  # event_changed | event_deleted | event_replaced | event_inserted | event_reordered | digest_invalid | digest_missing | chain_broken | manifest_invalid | manifest_deleted
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
        self._manifests = manifest.Manifests(events_table)
        self._table = digests_table
        self._key = key

    def head(self) -> dict[str, Any] | None:
        return self._table.get_item(Key=CHAIN, ConsistentRead=True).get("Item")

    def head_ok(self, head: dict[str, Any]) -> bool:
        return self.signed(head, "head", pointer_text(head))

    def signed(self, item: dict[str, Any], kind: str, value: str) -> bool:
        """Whether `item` carries the digest key's signature of `value` (or, for what was sealed
        before that key, the older HMAC)."""
        if item.get("alg") == signing.ALGORITHM:
            return signing.valid(signing.public_key()["public_key_pem"], signing.message(kind, value), str(item["sig"]))
        legacy = legacy_sign(value, self._key)
        return "alg" not in item and hmac.compare_digest(str(item.get("sig", "")), legacy)

    def period(self, start: str) -> dict[str, Any] | None:
        """The head of the digest whose period starts at `start` (None when there is none)."""
        key = {"hour": model.hour_of(timeutil.parse_iso(start)), "seg": start}
        item = self._table.get_item(Key=key, ConsistentRead=True).get("Item")
        return item if item is not None and "leaves" not in item else None

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
            if head_hash(head) != head["hash"] or not self.signed(head, "digest", head["hash"]):
                out.add(
                    "digest_invalid", f"digest {name} was edited (its hash or signature does not match)", digest=name
                )
                continue
            lines = leaf_lines(head, parts)
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
        named = {p.event_id for p in out.problems}
        for type_, message, event_id in self._manifests.findings(hours, items, now, self._key):
            if event_id is None or event_id not in named:
                out.add(type_, message, event_id)
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


def _name(head: dict[str, Any]) -> str:
    return f"#{int(head['seq'])} {head['start']}..{head['end']}"


def _hour_steps(since: float, until: float) -> list[float]:
    t, out = model.hour_start(since), []
    while t <= until:
        out.append(t)
        t += 3600
    return out


def digests() -> Digests:
    return Digests(aws.table("audit_events"), aws.table("audit_digests"), secret.get(config.AUDIT_DIGEST_KEY))


def leaf_lines(head: dict[str, Any], parts: dict[str, str]) -> list[str]:
    """A digest's leaf lines, from its parts (stored apart as `<seg>#<end>#p<n>`)."""
    return [
        line
        for n in range(int(head["parts"]))
        for line in parts.get(f"{head['seg']}#{head['end']}#p{n:04d}", "").split("\n")
        if line
    ]
