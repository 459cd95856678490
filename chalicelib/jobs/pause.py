"""Which queues an admin paused, and the worker hold that makes a pause strict.

Disabling a queue's event source mapping stops Lambda from polling within seconds, but a batch
already being received still arrives. So a pause is also written here first (settings table,
scope `dashboard`, key `paused#<queue>`), and the worker's hold (`is_paused`, given to every
`Worker` by app.py) puts any message of a paused queue back, delayed, without starting it or
using up an attempt. The hold reads the flag for each record (one consistent GetItem, next to the
claim's UpdateItem), so a pause holds from the moment it is answered.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, timeutil

SCOPE = "dashboard"
PREFIX = "paused#"


class PauseFlags:
    def __init__(self, table: Any) -> None:
        self._table = table

    def set(self, queue: str, paused: bool, user_id: str | None) -> None:
        if paused:
            self._table.put_item(
                Item={
                    "scope": SCOPE,
                    "key": PREFIX + queue,
                    "paused_at": timeutil.iso_ms(),
                    "paused_by": user_id or "",
                }
            )
        else:
            self._table.delete_item(Key={"scope": SCOPE, "key": PREFIX + queue})

    def paused(self) -> dict[str, float]:
        """Paused queue -> epoch seconds it was paused at (one Query)."""
        result = self._table.query(
            KeyConditionExpression=Key("scope").eq(SCOPE) & Key("key").begins_with(PREFIX), ConsistentRead=True
        )
        return {item["key"][len(PREFIX) :]: timeutil.parse_iso(item["paused_at"]) for item in result.get("Items", [])}

    def is_paused(self, queue: str) -> bool:
        item = self._table.get_item(Key={"scope": SCOPE, "key": PREFIX + queue}, ConsistentRead=True).get("Item")
        return item is not None


def flags() -> PauseFlags:
    return PauseFlags(aws.table("settings"))


def is_paused(queue: str) -> bool:
    """The worker hold: True while `queue` is paused."""
    return flags().is_paused(queue)
