"""The shape of an audit event: how it is built, keyed, stored, shown and fingerprinted (pure).

Storage key: the base table is partitioned by hour and shard (`2026-11-28T02#3`) so that heavy
writing spreads across partitions and over time; the sort key `<ts with ms>#<id>` gives the
canonical order of events within the hour, which the digests hash. The index attributes
(`user_id`, `action_month`, `category_month`, `resource_key`) answer the read questions.

Each stored item carries `mac`, an HMAC (`AUDIT_DIGEST_KEY`) of its content: every attribute but
its storage keys (`STORAGE_FIELDS`), so an edit made directly in DynamoDB is detected even before
its hour is sealed, and an event re-keyed later (the fallback queue's writer) keeps the signature
its writer gave it: nothing downstream ever signs an event again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import uuid
from datetime import UTC, datetime
from typing import Any

from chalicelib import timeutil
from chalicelib.audit.actions import Action, retention_seconds
from chalicelib.util import from_dynamo, to_dynamo

SHARDS = 4
# An event recorded more than this long before it is written is keyed at its write time
# instead, so that no write lands in a period a digest has already sealed (see chain.SEAL_GRACE).
REKEY_AFTER_SECONDS = 2.0
# Writes keyed before now - this have landed, but for a write retried for long (within its
# Lambda's 15 minutes): the seal and the counts take the minutes before it.
LANDED_AFTER_SECONDS = 60.0
KEY_FIELDS = ("hour", "sk")
# What `place` derives from the event and the time it is written: outside the MAC.
STORAGE_FIELDS = frozenset({"hour", "sk", "action_month", "category_month", "keyed_at", "mac"})


def hour_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H")


def month_of(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m")


def hour_start(ts: float) -> float:
    return float(int(ts) // 3600 * 3600)


def minute_start(ts: float) -> float:
    return float(int(ts) // 60 * 60)


def shard_of(event_id: str) -> int:
    return int(event_id[:8], 16) % SHARDS


def partitions(hour: str) -> list[str]:
    """The base-table partition keys of one hour, one per shard."""
    return [f"{hour}#{n}" for n in range(SHARDS)]


def build(
    action: str,
    cls: Action,
    *,
    user_id: str | None,
    ip: str | None,
    user_agent: str | None,
    request_id: str | None,
    resource: tuple[str, str] | None,
    details: dict[str, Any],
    now: float,
    event_id: str | None = None,
    user_email: str | None = None,
) -> dict[str, Any]:
    """The event's attributes, before it is keyed (None values are left out: index keys must be
    strings)."""
    item: dict[str, Any] = {
        "id": event_id or uuid.uuid4().hex,
        "ts": timeutil.iso_ms(now),
        "action": action,
        "category": cls.category,
        "severity": cls.severity,
        "details": details,
        "request_id": request_id,
        "user_id": user_id,
        "user_email": user_email,
        "ip": ip,
        "user_agent": user_agent[:512] if user_agent else None,
        **timeutil.ttl_fields(now + retention_seconds(cls.category)),
    }
    if resource:
        rtype, rid = str(resource[0])[:64], str(resource[1])[:256]
        item.update(resource_type=rtype, resource_id=rid, resource_key=f"{rtype}#{rid}")
    return {k: v for k, v in item.items() if v not in (None, "")}


def place(item: dict[str, Any], recorded_at: float, now: float, key: str | None) -> dict[str, Any]:
    """The item with its storage key, index attributes and MAC, written at `now`; with `key`
    None the item keeps the MAC it carries (re-keyed, never signed again)."""
    at = recorded_at if recorded_at >= now - REKEY_AFTER_SECONDS else now
    placed = {k: v for k, v in item.items() if k not in STORAGE_FIELDS}
    placed.update(
        hour=f"{hour_of(at)}#{shard_of(item['id'])}",
        sk=f"{timeutil.iso_ms(at)}#{item['id']}",
        action_month=f"{item['action']}#{month_of(at)}",
        category_month=f"{item['category']}#{month_of(at)}",
    )
    if at != recorded_at:
        placed["keyed_at"] = timeutil.iso_ms(at)
    placed["mac"] = mac(placed, key) if key is not None else str(item.get("mac", ""))
    return placed


def sort_key_time(sk: str) -> float:
    return timeutil.parse_iso(sk.split("#", 1)[0])


def public(item: dict[str, Any]) -> dict[str, Any]:
    """The contract's audit event."""
    resource = None
    if item.get("resource_type"):
        resource = {"type": item["resource_type"], "id": item.get("resource_id")}
    return {
        "id": item["id"],
        "ts": item["ts"],
        "action": item["action"],
        "category": item["category"],
        "severity": item["severity"],
        "actor": {
            "user_id": item.get("user_id"),
            "email": item.get("user_email"),
            "ip": item.get("ip"),
            "user_agent": item.get("user_agent"),
        },
        "resource": resource,
        "details": from_dynamo(item.get("details") or {}),
        "request_id": item.get("request_id"),
    }


def canonical(item: dict[str, Any]) -> bytes:
    """The bytes an event's fingerprint covers: every attribute but the MAC, as DynamoDB gives
    them back (so a fingerprint computed before the write matches one computed after a read)."""
    plain = from_dynamo(to_dynamo({k: v for k, v in item.items() if k != "mac"}))
    return json.dumps(plain, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def fingerprint(item: dict[str, Any]) -> str:
    return hashlib.sha256(canonical(item)).hexdigest()


def mac(item: dict[str, Any], key: str) -> str:
    """The writer's signature of the event's content (its storage keys left out)."""
    content = fingerprint({k: v for k, v in item.items() if k not in STORAGE_FIELDS})
    return hmac.new(key.encode(), b"event:v2:" + content.encode(), hashlib.sha256).hexdigest()


def mac_ok(item: dict[str, Any], key: str) -> bool:
    """Whether the event carries its writer's signature (or the older one over every attribute)."""
    carried = str(item.get("mac", ""))
    legacy = hmac.new(key.encode(), b"event:" + fingerprint(item).encode(), hashlib.sha256).hexdigest()
    return hmac.compare_digest(carried, mac(item, key)) or hmac.compare_digest(carried, legacy)
