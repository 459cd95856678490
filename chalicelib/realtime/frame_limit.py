"""Each WebSocket connection's frame limit: a token bucket kept on its `ws_connections` item.

The bucket is stored as one number, `tat` (epoch milliseconds: when the bucket will be full again,
the generic cell rate algorithm's "theoretical arrival time"): a frame is accepted while
`tat <= now + (burst - 1) * interval`, and each accepted frame moves `tat` on by one interval
(`1000 / rate` ms). A frame thus costs one conditional UpdateItem, which also returns the
connection item the frame needs anyway (it replaces the GetItem each frame made before):

1. `SET tat = tat + interval` if the connection exists and `tat` lies in
   `[now - burst * interval, now + (burst - 1) * interval]`: accepted (the common case);
2. else DynamoDB hands back the item as it was (`ReturnValuesOnConditionCheckFailure`): no item
   is an unknown connection; a `tat` older than the window (a connection that paused) is
   reset to `now + interval` by a second conditional write, and the frame accepted; a `tat`
   past the window means the bucket is empty: the frame is refused and counted
   (`ADD refused 1`), and the handler closes the connection once `refused` reaches `close_after`.

DynamoDB cannot take `max(tat, now)` in one expression, hence the window below `now`: a
connection that paused less than `burst` intervals keeps its unused credit, so right after a
pause it may send up to twice `burst` frames at once; the rate over any longer time is `rate`.
An accepted frame clears `refused`, so only frames refused in a row close a connection.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chalicelib import timeutil


@dataclass(frozen=True)
class Verdict:
    """`connection` is None for an unknown connection; `refused` counts the frames refused in a row
    (0 when this frame is accepted)."""

    connection: dict[str, Any] | None
    refused: int = 0


class FrameLimit:
    def __init__(self, table: Any, rate: float, burst: int) -> None:
        self._table = table
        self.interval = max(1, math.ceil(1000 / rate))  # ms per token
        self.burst = burst

    def take(self, connection_id: str, now: float | None = None) -> Verdict:
        """Take a token for one frame of `connection_id` (see the module's docstring)."""
        now_ms = int((timeutil.now() if now is None else now) * 1000)
        low, high = now_ms - self.burst * self.interval, now_ms + (self.burst - 1) * self.interval
        key = {"connection_id": connection_id}
        client = self._table.meta.client
        for _ in range(3):  # a concurrent frame of the same connection may move tat meanwhile
            try:
                item = self._table.update_item(
                    Key=key,
                    UpdateExpression="SET tat = tat + :i REMOVE refused",
                    ConditionExpression="attribute_exists(connection_id) AND tat BETWEEN :low AND :high",
                    ExpressionAttributeValues={":i": self.interval, ":low": low, ":high": high},
                    ReturnValues="ALL_NEW",
                    ReturnValuesOnConditionCheckFailure="ALL_OLD",
                )["Attributes"]
                return _verdict(item, now_ms)
            except client.exceptions.ConditionalCheckFailedException as exc:
                old = _old_item(exc)
            if old is None or not _live(old, now_ms):
                return Verdict(None)
            if "tat" in old and int(old["tat"]) > high:
                try:
                    item = self._table.update_item(
                        Key=key,
                        UpdateExpression="ADD refused :one",
                        ConditionExpression="attribute_exists(connection_id)",
                        ExpressionAttributeValues={":one": 1},
                        ReturnValues="ALL_NEW",
                    )["Attributes"]
                except client.exceptions.ConditionalCheckFailedException:
                    return Verdict(None)
                return Verdict(item, int(item.get("refused", 1)))
            if "tat" not in old or int(old["tat"]) < low:  # new to the limit, or paused: a full bucket
                try:
                    item = self._table.update_item(
                        Key=key,
                        UpdateExpression="SET tat = :next REMOVE refused",
                        ConditionExpression="attribute_exists(connection_id) AND (attribute_not_exists(tat) OR tat < :low)",
                        ExpressionAttributeValues={":next": now_ms + self.interval, ":low": low},
                        ReturnValues="ALL_NEW",
                    )["Attributes"]
                    return _verdict(item, now_ms)
                except client.exceptions.ConditionalCheckFailedException:
                    continue
        return Verdict(None)


def _live(item: dict[str, Any], now_ms: int) -> bool:
    return int(item.get("ttl", 0)) * 1000 > now_ms


def _verdict(item: dict[str, Any], now_ms: int) -> Verdict:
    return Verdict(item if _live(item, now_ms) else None)


def _old_item(exc: Exception) -> dict[str, Any] | None:
    """The item a failed condition saw (`ReturnValuesOnConditionCheckFailure`), deserialized."""
    raw = (getattr(exc, "response", None) or {}).get("Item")
    if not raw:
        return None
    from boto3.dynamodb.types import TypeDeserializer

    deserializer = TypeDeserializer()
    return {name: deserializer.deserialize(value) for name, value in raw.items()}
