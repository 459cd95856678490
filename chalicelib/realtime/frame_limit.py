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

Each of these writes carries the frame's write token (`util.ONCE_CONDITION`, `last_write`): one
whose answer was lost, sent again by the SDK, is refused by its own token and taken as done, so a
frame never takes two tokens nor counts as refused twice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from chalicelib import timeutil
from chalicelib.util import ONCE_CONDITION, ONCE_NAMES, ONCE_SET, once_applied, once_token, refused_item


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
        token = once_token()  # a refusal carrying it: this write, applied, its answer lost
        once = {"ExpressionAttributeNames": ONCE_NAMES, "ReturnValuesOnConditionCheckFailure": "ALL_OLD"}
        for _ in range(3):  # a concurrent frame of the same connection may move tat meanwhile
            try:
                item = self._table.update_item(
                    Key=key,
                    UpdateExpression="SET tat = tat + :i, " + ONCE_SET + " REMOVE refused",
                    ConditionExpression="attribute_exists(connection_id) AND tat BETWEEN :low AND :high AND "
                    + ONCE_CONDITION,
                    ExpressionAttributeValues={":i": self.interval, ":low": low, ":high": high, ":once": token},
                    ReturnValues="ALL_NEW",
                    **once,
                )["Attributes"]
                return _verdict(item, now_ms)
            except client.exceptions.ConditionalCheckFailedException as exc:
                old = refused_item(exc)
            if old is not None and once_applied(old, token):
                return _verdict(old, now_ms)
            if old is None or not _live(old, now_ms):
                return Verdict(None)
            if "tat" in old and int(old["tat"]) > high:
                try:
                    item = self._table.update_item(
                        Key=key,
                        UpdateExpression="ADD refused :one SET " + ONCE_SET,
                        ConditionExpression="attribute_exists(connection_id) AND " + ONCE_CONDITION,
                        ExpressionAttributeValues={":one": 1, ":once": token},
                        ReturnValues="ALL_NEW",
                        **once,
                    )["Attributes"]
                except client.exceptions.ConditionalCheckFailedException as exc:
                    item = refused_item(exc)
                    if item is None or not once_applied(item, token):
                        return Verdict(None)
                return Verdict(item, int(item.get("refused", 1)))
            if "tat" not in old or int(old["tat"]) < low:  # new to the limit, or paused: a full bucket
                try:
                    item = self._table.update_item(
                        Key=key,
                        UpdateExpression="SET tat = :next, " + ONCE_SET + " REMOVE refused",
                        ConditionExpression="attribute_exists(connection_id) AND (attribute_not_exists(tat) OR tat < :low) AND "
                        + ONCE_CONDITION,
                        ExpressionAttributeValues={":next": now_ms + self.interval, ":low": low, ":once": token},
                        ReturnValues="ALL_NEW",
                        **once,
                    )["Attributes"]
                    return _verdict(item, now_ms)
                except client.exceptions.ConditionalCheckFailedException as exc:
                    old = refused_item(exc)
                    if old is not None and once_applied(old, token):
                        return _verdict(old, now_ms)
                    continue
        return Verdict(None)


def _live(item: dict[str, Any], now_ms: int) -> bool:
    return int(item.get("ttl", 0)) * 1000 > now_ms


def _verdict(item: dict[str, Any], now_ms: int) -> Verdict:
    return Verdict(item if _live(item, now_ms) else None)
