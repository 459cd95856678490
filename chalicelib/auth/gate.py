"""Login attempt budgets: a password is checked only after a slot of each budget it falls under
was reserved, atomically, so concurrent requests cannot check more passwords than the limit.

A budget (`email#<keyed hash>`, `ip#<address>`, `device#<id>`) is `limit` slot items in the
`login_attempts` table (`at` = `slot#<n>`), each holding when it was last used (`used`) and by
which attempt (`rid`). Reserving takes a slot free for WINDOW_SECONDS with a conditional
UpdateItem, so at most `limit` checks fall in any window (a sliding one), whatever the
concurrency. A check whose password was right gives its slots back (only failures hold them).

The condition also accepts the slot when it already carries the same `rid`: the SDK retrying a
reservation whose answer was lost meets its own earlier write and succeeds again instead of
taking a second slot (no double count), and a release is conditional on the `rid` too.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import random
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import timeutil

WINDOW_SECONDS = 15 * 60
SLOT = "slot#"


class Gate:
    def __init__(self, table: Any) -> None:
        self._table = table

    def _slots(self, key: str) -> dict[str, dict[str, Any]]:
        result = self._table.query(
            KeyConditionExpression=Key("key").eq(key) & Key("at").begins_with(SLOT),
            ConsistentRead=True,
        )
        return {item["at"]: item for item in result.get("Items", [])}

    def reserve(self, key: str, limit: int, rid: str) -> tuple[int, int]:
        """Take a free slot of `key`'s budget for attempt `rid`: `(0, slots left free)` when
        taken, else `(seconds until a slot frees, 0)` (the Retry-After). One Query, then
        conditional UpdateItems on the slots it saw free (in random order: concurrent attempts
        rarely meet on one)."""
        now = timeutil.now()
        cut = now - WINDOW_SECONDS
        held = self._slots(key)
        if any(item.get("rid") == rid and float(item.get("used", 0)) > cut for item in held.values()):
            return 0, 0  # this attempt holds a slot already (a repeated call)
        free = [
            f"{SLOT}{n}"
            for n in range(limit)
            if f"{SLOT}{n}" not in held or float(held[f"{SLOT}{n}"].get("used", 0)) <= cut
        ]
        random.shuffle(free)
        client = self._table.meta.client
        for tried, slot in enumerate(free):
            try:
                self._table.update_item(
                    Key={"key": key, "at": slot},
                    UpdateExpression="SET used = :now, rid = :rid, #t = :ttl, expiry_day = :expiry_day",
                    ConditionExpression="attribute_not_exists(used) OR used <= :cut OR rid = :rid",
                    ExpressionAttributeNames={"#t": "ttl"},
                    ExpressionAttributeValues={
                        ":now": _num(now),
                        ":rid": rid,
                        ":cut": _num(cut),
                        **{f":{k}": v for k, v in _ttl(now).items()},
                    },
                )
                return 0, len(free) - tried - 1
            except client.exceptions.ConditionalCheckFailedException:
                continue  # a concurrent attempt took it first
        return self.wait(key, limit), 0

    def wait(self, key: str, limit: int) -> int:
        """Seconds until one of `key`'s slots frees (at least 1)."""
        now = timeutil.now()
        held = [float(i.get("used", 0)) for i in self._slots(key).values() if i.get("used") is not None]
        if len(held) < limit:
            return 1  # a slot freed meanwhile: try again at once
        return max(1, int(min(held) + WINDOW_SECONDS - now) + 1)

    def release(self, key: str, rid: str) -> None:
        """Give back the slot attempt `rid` holds in `key`'s budget (its password was right)."""
        client = self._table.meta.client
        for slot, item in self._slots(key).items():
            if item.get("rid") != rid:
                continue
            # Reused meanwhile (its window passed): nothing of ours to give back.
            with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
                self._table.update_item(
                    Key={"key": key, "at": slot},
                    UpdateExpression="REMOVE used, rid",
                    ConditionExpression="rid = :rid",
                    ExpressionAttributeValues={":rid": rid},
                )


def email_key(email: str, key: str) -> str:
    """The budget of an email, by a keyed hash: whatever was typed in the email field (a
    password, sometimes) is never stored."""
    return "email#" + hmac.new(key.encode(), email.encode(), hashlib.sha256).hexdigest()[:32]


def _num(value: float) -> Any:
    from decimal import Decimal

    return Decimal(str(round(value, 3)))


def _ttl(now: float) -> dict[str, Any]:
    return timeutil.ttl_fields(now + WINDOW_SECONDS + 3600)
