"""Write-time evidence: every flush of the audit buffer also writes a manifest, in the same
BatchWriteItem as its events, listing each event it wrote (storage key, MAC, TTL) and the
critical events written since the last one. `verify` checks the manifests older than
`GRACE` against the stored events, so a deleted or replaced event is named within two minutes
of its write, whether or not a seal ran since, whatever API deleted it (BatchWriteItem's
DeleteRequest included).

A manifest is keyed `m#<hour>#<shard>` / `<ts>#<id>` (its own partitions: the event listings and
indexes never see one) and chained per writer (a Lambda container): `writer`, `seq`, `prev`, so
a deleted manifest leaves a gap that verify names as a period. Its MAC (`AUDIT_DIGEST_KEY`, as
the events') covers its listing and its link.

Its `id` is the SHA-256 of its content (`content_id`), so its key names what it holds: no role
but the sealer's may delete from the table (writers write with TransactWriteItems' Put, which
cannot delete), and a Put over a manifest, even one MACed with the event key every writer holds,
cannot keep that key and change the content unseen (`manifest_invalid`). A writer's last manifest
is then as safe as the others. Manifests written before content ids (a 32-digit random id) are
checked by their MAC alone.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any

from chalicelib import aws, timeutil
from chalicelib.audit import model

PREFIX = "m#"
GRACE = 120.0  # seconds: a manifest (and what it lists) is checked once it is this old
WRITER = uuid.uuid4().hex[:16]  # this container's chain of manifests
_seq = itertools.count(1)
_lock = threading.Lock()
_last: list[str] = [""]


def partitions(hour: str) -> list[str]:
    return [f"{PREFIX}{hour}#{n}" for n in range(model.SHARDS)]


def line(item: dict[str, Any]) -> str:
    """`<hour> <sk> <mac> <ttl>` of one stored event (pure)."""
    return f"{item['hour']} {item['sk']} {item['mac']} {int(item.get('ttl', 0))}"


def _signed(manifest: dict[str, Any]) -> str:
    fields = "|".join(str(manifest.get(k, "")) for k in ("hour", "sk", "writer", "seq", "prev", "keys"))
    return hashlib.sha256(fields.encode()).hexdigest()


def mac(manifest: dict[str, Any], key: str) -> str:
    return hmac.new(key.encode(), b"manifest:" + _signed(manifest).encode(), hashlib.sha256).hexdigest()


def content_id(manifest: dict[str, Any]) -> str:
    """The SHA-256 of what a manifest holds (its time, link, listing and TTL): its id (pure)."""
    when = str(manifest.get("sk", "")).split("#", 1)[0]
    fields = [when, *(str(manifest.get(k, "")) for k in ("writer", "seq", "prev", "keys", "ttl"))]
    return hashlib.sha256("|".join(fields).encode()).hexdigest()


def build(lines: list[str], now: float, key: str) -> dict[str, Any]:
    """The next manifest of this writer's chain, listing `lines` (written at `now`)."""
    with _lock:
        seq = next(_seq)
        prev, _last[0] = _last[0], f"{seq}"
    ttls = [int(x.rsplit(" ", 1)[1]) for x in lines] or [int(now)]
    when = timeutil.iso_ms(now)
    item: dict[str, Any] = {"sk": when, "writer": WRITER, "seq": seq, "prev": prev, "keys": "\n".join(lines)}
    item["ttl"] = max(ttls)
    manifest_id = content_id(item)
    item.update(hour=f"{PREFIX}{model.hour_of(now)}#{model.shard_of(manifest_id)}", sk=f"{when}#{manifest_id}")
    item["mac"] = mac(item, key)
    return item


def overwritten(manifest: dict[str, Any]) -> bool:
    """Whether the item at a content-addressed manifest's key holds other content (pure)."""
    manifest_id = str(manifest.get("sk", "")).split("#", 1)[-1]
    return len(manifest_id) == 64 and not hmac.compare_digest(manifest_id, content_id(manifest))


def is_manifest(item: dict[str, Any]) -> bool:
    return str(item.get("hour", "")).startswith(PREFIX)


@dataclass
class Listed:
    """What the manifests older than GRACE list, and the problems found in the manifests themselves."""

    events: dict[tuple[str, str], tuple[str, int, str]] = field(default_factory=dict)  # key -> (mac, ttl, manifest)
    problems: list[tuple[str, str, str | None]] = field(default_factory=list)  # (type, message, event id)


def read(manifests: list[dict[str, Any]], now: float, key: str) -> Listed:
    """The listings of the manifests written before now - GRACE, and every edited manifest or
    gap in a writer's chain (pure)."""
    out = Listed()
    cut = timeutil.iso_ms(now - GRACE)
    chains: dict[str, list[int]] = {}
    for m in sorted(manifests, key=lambda m: m["sk"]):
        if m["sk"] >= cut:
            continue
        name = f"manifest {m['sk']}"
        chains.setdefault(str(m.get("writer")), []).append(int(m.get("seq", 0)))  # present, if edited
        if not hmac.compare_digest(str(m.get("mac", "")), mac(m, key)):
            out.problems.append(("manifest_invalid", f"{name} was edited (its MAC does not match)", None))
            continue
        if overwritten(m):
            out.problems.append(("manifest_invalid", f"{name} was overwritten (its content is not its id's)", None))
            continue
        for text in str(m["keys"]).split("\n"):
            if text:
                hour, sk, event_mac, ttl = text.split(" ")
                out.events[(hour, sk)] = (event_mac, int(ttl), name)
    for writer, seqs in chains.items():
        seqs.sort()
        for a, b in itertools.pairwise(seqs):
            if b != a + 1:
                out.problems.append(
                    ("manifest_deleted", f"manifests {a + 1}..{b - 1} of writer {writer} are gone", None)
                )
    return out


def check(
    listed: Listed, stored: dict[tuple[str, str], dict[str, Any]], moved: dict[str, dict[str, Any] | None], now: float
) -> list[tuple[str, str, str | None]]:
    """Every listed event that is gone (before its TTL) or replaced by another item (pure):
    `stored` holds the events found at their keys, `moved` those the fallback queue re-keyed
    (event id -> the item its marker points at, None when it has no marker)."""
    out = list(listed.problems)
    for (hour, sk), (event_mac, ttl, name) in sorted(listed.events.items()):
        event_id = sk.split("#", 1)[-1]
        item = stored.get((hour, sk)) or moved.get(event_id)
        if item is None:
            if ttl > now:
                out.append(("event_deleted", f"event {event_id} listed by {name} is gone", event_id))
        elif not hmac.compare_digest(str(item.get("mac", "")), event_mac):
            out.append(("event_replaced", f"event {event_id} is not the one {name} listed", event_id))
    return out


class Manifests:
    """Reading manifests and the events they list (the verify side)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def of_hours(self, hours: list[str]) -> list[dict[str, Any]]:
        from boto3.dynamodb.conditions import Key  # the verify side only: not at import (cold starts)

        out: list[dict[str, Any]] = []
        for hour in hours:
            for pk in partitions(hour):
                pages = aws.query_pages(self._table, KeyConditionExpression=Key("hour").eq(pk), ConsistentRead=True)
                out += [i for page in pages for i in page.get("Items", [])]
        return out

    def findings(
        self, hours: list[str], items: list[dict[str, Any]], now: float, key: str
    ) -> list[tuple[str, str, str | None]]:
        """The manifests of `hours` checked against `items` (the events of those hours), reading
        what they list elsewhere one item at a time."""
        listed = read(self.of_hours(hours), now, key)
        stored = {(i["hour"], i["sk"]): i for i in items}
        loaded = set(hours)
        moved: dict[str, dict[str, Any] | None] = {}
        for hour, sk in listed.events:
            if (hour, sk) in stored:
                continue
            if hour.split("#", 1)[0] not in loaded:
                found = self._table.get_item(Key={"hour": hour, "sk": sk}, ConsistentRead=True).get("Item")
                if found is not None:
                    stored[(hour, sk)] = found
                    continue
            moved[sk.split("#", 1)[-1]] = self._moved(sk.split("#", 1)[-1])
        return check(listed, stored, moved, now)

    def _moved(self, event_id: str) -> dict[str, Any] | None:
        marker = self._table.get_item(Key={"hour": "id#" + event_id, "sk": "id"}, ConsistentRead=True).get("Item")
        if marker is None or " " not in str(marker.get("at", "")):
            return None
        hour, sk = str(marker["at"]).split(" ", 1)
        return self._table.get_item(Key={"hour": hour, "sk": sk}, ConsistentRead=True).get("Item")
