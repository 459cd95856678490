"""DynamoDB gateways of the WebSocket API: tickets, connections with their room memberships, and
each room's event log with its seq counter.

Every question is a GetItem or a Query: a ticket by its hash, a connection by id, a room's
members (`ws_members`, one item per membership), a room's events after a seq (`ws_events`,
sorted by seq; at seq 0 the room's counter, which also counts its members, and which a room gets
when a connection first joins it). Stale items (a `$disconnect` that never ran) carry a TTL and
are skipped when read after it.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import random
import time
from collections.abc import Iterator
from typing import Any

from chalicelib import aws, timeutil
from chalicelib.util import ONCE_CONDITION, ONCE_NAMES, ONCE_SET, once_token, refused_item

TICKET_TTL_SECONDS = 60
CONNECTION_TTL_SECONDS = 2 * 3600  # API Gateway closes a connection after 2 hours
EVENT_RETENTION_SECONDS = 25 * 3600  # "at least 24 h" for resume, with an hour to spare
# The counter outlives the events: while it exists, a room's seq never restarts. A room silent
# for this long restarts at 1, which `EventLog.replay` recognises (see there).
COUNTER_RETENTION_SECONDS = 30 * 24 * 3600
COUNTER_SEQ = 0
_QUERY_PAGE = 200
BATCH_WRITE_MAX = 25  # BatchWriteItem's limit of requests per call
WRITE_ATTEMPTS = 5  # per BatchWriteItem, while DynamoDB answers UnprocessedItems
BACKOFF_BASE = 0.05
BACKOFF_CAP = 1.0

log = logging.getLogger("inkwell.realtime")


class EventsNotStored(RuntimeError):
    """DynamoDB kept refusing some envelopes (UnprocessedItems) after every retry."""


def sleep(seconds: float) -> None:
    """The pause between retries of unprocessed items; tests replace it."""
    time.sleep(seconds)


def _key(name: str) -> Any:
    # boto3 loads on first use, not at import: the emitters are imported by every cold start.
    from boto3.dynamodb.conditions import Key

    return Key(name)


def ticket_hash(ticket: str) -> str:
    return hashlib.sha256(ticket.encode()).hexdigest()


def _live(item: dict[str, Any], now: float) -> bool:
    return int(item.get("ttl", 0)) > now


class Tickets:
    """Tickets are stored by hash only: a leaked table holds nothing that opens a connection."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def put(self, ticket: str, user: dict[str, Any], expires_at: float) -> None:
        self._table.put_item(
            Item={
                "hash": ticket_hash(ticket),
                "user_id": user["id"],
                "email": user["email"],
                "role": user["role"],
                "jti": user["jti"],
                **timeutil.ttl_fields(expires_at),
            }
        )

    def redeem(self, ticket: str) -> dict[str, Any] | None:
        """Delete the ticket and return what it held, or None when it does not exist, was already
        used (the conditional delete lets exactly one of two concurrent redeems win) or expired."""
        client = self._table.meta.client
        try:
            result = self._table.delete_item(
                Key={"hash": ticket_hash(ticket)},
                ConditionExpression="attribute_exists(#h)",
                ExpressionAttributeNames={"#h": "hash"},
                ReturnValues="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException:
            return None
        item = result.get("Attributes")
        if not item or not _live(item, timeutil.now()):
            return None
        return item


class Connections:
    """`ws_connections` (one item per connection) and `ws_members` (one per room membership)."""

    def __init__(self, connections: Any, members: Any, log: EventLog) -> None:
        self._connections = connections
        self._members = members
        # A room joined gets its counter, which counts its members (EventLog.open_room, left):
        # emitters skip a room without a counter, and read the members of a counted room only
        # while it has some.
        self._log = log

    def open(self, connection_id: str, user: dict[str, Any], rooms: list[str], endpoint: str | None) -> dict[str, Any]:
        now = timeutil.now()
        item: dict[str, Any] = {
            "connection_id": connection_id,
            "user_id": user["id"],
            "email": user["email"],
            "role": user["role"],
            "jti": user.get("jti", ""),
            "rooms": set(rooms),
            "connected_at": timeutil.iso_ms(now),
            "tat": int(now * 1000),  # a full frame bucket (realtime.frame_limit)
            **timeutil.ttl_fields(now + CONNECTION_TTL_SECONDS),
        }
        if endpoint:
            item["endpoint"] = endpoint
        # Counted before written (a fault between leaves a count too high: harmless), memberships
        # before the connection item: a connection item never points at rooms it is missing from.
        for room in rooms:
            self._log.open_room(room, joined=1)
        with self._members.batch_writer() as batch:
            for room in rooms:
                batch.put_item(Item=self._membership(room, item))
        self._connections.put_item(Item=item)
        return item

    @staticmethod
    def _membership(room: str, connection: dict[str, Any]) -> dict[str, Any]:
        item = {
            "room": room,
            "connection_id": connection["connection_id"],
            "user_id": connection["user_id"],
            "ttl": int(connection["ttl"]),
            "expiry_day": connection["expiry_day"],
            "counted": True,  # in its room's count (EventLog.open_room); memberships from before were not
        }
        if connection.get("endpoint"):
            item["endpoint"] = connection["endpoint"]
        return item

    def get(self, connection_id: str) -> dict[str, Any] | None:
        item = self._connections.get_item(Key={"connection_id": connection_id}, ConsistentRead=True).get("Item")
        if item is None or not _live(item, timeutil.now()):
            return None
        return item

    def of_user(self, user_id: str) -> list[dict[str, Any]]:
        """The user's open connections (the `by_user` index)."""
        pages = aws.query_pages(
            self._connections, IndexName="by_user", KeyConditionExpression=_key("user_id").eq(user_id)
        )
        return [item for page in pages for item in page.get("Items", []) if _live(item, timeutil.now())]

    def join(self, connection: dict[str, Any], room: str) -> None:
        # Counted before written, and counted out again when it was in already (a retried frame
        # after a fault midway): every fault leaves the count too high at worst, which is harmless.
        self._log.open_room(room, joined=1)
        old = self._members.put_item(Item=self._membership(room, connection), ReturnValues="ALL_OLD")
        if (old.get("Attributes") or {}).get("counted"):
            self._log.left(room)
        self._connections.update_item(
            Key={"connection_id": connection["connection_id"]},
            UpdateExpression="ADD rooms :r",
            ConditionExpression="attribute_exists(connection_id)",
            ExpressionAttributeValues={":r": {room}},
        )

    def leave(self, connection_id: str, room: str) -> None:
        self._remove_membership(room, connection_id)
        client = self._connections.meta.client
        # When the connection went away meanwhile, its membership is gone too.
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            self._connections.update_item(
                Key={"connection_id": connection_id},
                UpdateExpression="DELETE rooms :r",
                ConditionExpression="attribute_exists(connection_id)",
                ExpressionAttributeValues={":r": {room}},
            )

    def close(self, connection_id: str, opened_before: str | None = None) -> dict[str, Any] | None:
        """Remove the connection and its memberships (idempotent); the record removed, if any.
        With `opened_before` (an `iso_ms` time), only a connection opened earlier is removed."""
        condition: dict[str, Any] = {}
        if opened_before is not None:
            condition = {
                "ConditionExpression": "attribute_not_exists(connected_at) OR connected_at < :t",
                "ExpressionAttributeValues": {":t": opened_before},
            }
        client = self._connections.meta.client
        try:
            result = self._connections.delete_item(
                Key={"connection_id": connection_id}, ReturnValues="ALL_OLD", **condition
            )
        except client.exceptions.ConditionalCheckFailedException:
            return None
        removed = result.get("Attributes")
        for room in (removed or {}).get("rooms") or ():
            self._remove_membership(room, connection_id)
        return removed

    def _remove_membership(self, room: str, connection_id: str) -> None:
        """Delete the membership; the room's count goes down only when there was a counted one to
        delete (a leave racing a close, a retried frame: each membership is counted out once)."""
        old = self._members.delete_item(Key={"room": room, "connection_id": connection_id}, ReturnValues="ALL_OLD")
        if (old.get("Attributes") or {}).get("counted"):
            self._log.left(room)

    def members(self, room: str) -> list[str]:
        """The connection ids in `room`."""
        return [cid for ids in self.recipients(room).values() for cid in ids]

    def recipients(self, room: str) -> dict[str | None, list[str]]:
        """The connections in `room` by the management endpoint recorded when they connected
        (one Query, paged), without entries past their TTL."""
        now = timeutil.now()
        found: dict[str | None, list[str]] = {}
        pages = aws.query_pages(
            self._members,
            KeyConditionExpression=_key("room").eq(room),
            ProjectionExpression="connection_id, endpoint, #t",
            ExpressionAttributeNames={"#t": "ttl"},
        )
        for item in (i for page in pages for i in page.get("Items", [])):
            if _live(item, now):
                found.setdefault(item.get("endpoint"), []).append(item["connection_id"])
        return found


# A room counter's writes count once though the SDK repeats one whose answer was lost
# (`util.ONCE_CONDITION`): no seq skipped, no member counted out twice. What remains: a repeat that
# meets another emitter's write made in between can skip seqs (never repeat or reorder them).
class EventLog:
    """Each room's events under (room, seq), and at seq 0 the room's counter (`last`)."""

    def __init__(self, table: Any, client: Any = None) -> None:
        self._table = table
        # The Table's client takes and returns plain values (boto3's resource layer serializes).
        self._client = client or table.meta.client

    def open_room(self, room: str, joined: int) -> None:
        """Create the room's counter (at 0) if it has none, count `joined` more members (before
        their membership is written) and keep it COUNTER_RETENTION_SECONDS: a connection joining
        a room does this before it learns the room's seq, so every event after that is stored for
        its `resume`. Emitters skip a room without a counter: nobody joined it for that long, so
        nobody can resume it."""
        with contextlib.suppress(self._table.meta.client.exceptions.ConditionalCheckFailedException):
            self._table.update_item(
                Key={"room": room, "seq": COUNTER_SEQ},
                UpdateExpression="ADD #l :zero, members :j SET #t = :ttl, expiry_day = :day, " + ONCE_SET,
                ConditionExpression=ONCE_CONDITION,
                ExpressionAttributeNames={"#l": "last", "#t": "ttl", **ONCE_NAMES},
                ExpressionAttributeValues={
                    ":zero": 0,
                    ":j": joined,
                    ":once": once_token(),
                    **self._ttl_values(COUNTER_RETENTION_SECONDS),
                },
            )

    def left(self, room: str) -> None:
        """One member fewer (after its membership was deleted). A membership that expires
        without a `$disconnect` stays counted: the room's members are then read for nothing."""
        client = self._table.meta.client
        with contextlib.suppress(client.exceptions.ConditionalCheckFailedException):
            self._table.update_item(
                Key={"room": room, "seq": COUNTER_SEQ},
                UpdateExpression="ADD members :minus SET " + ONCE_SET,
                ConditionExpression="attribute_exists(#l) AND " + ONCE_CONDITION,
                ExpressionAttributeNames={"#l": "last", **ONCE_NAMES},
                ExpressionAttributeValues={":minus": -1, ":once": once_token()},
            )

    def opened(self, rooms: list[str]) -> list[str]:
        """Those of `rooms` that have a counter, in their order: one BatchGetItem (consistent)."""
        found = self.counters(rooms)
        return [room for room in rooms if room in found]

    def counters(self, rooms: list[str]) -> dict[str, bool]:
        """The rooms of `rooms` that have a counter, each with whether it may have members (as
        `reserve` says): one BatchGetItem (consistent) per 100 rooms."""
        return {item["room"]: int(item.get("members", 1)) > 0 for item in self._counters(rooms)}

    def reserve(self, room: str, count: int) -> tuple[int, bool] | None:
        """Take `count` consecutive seqs of `room` in one atomic ADD (concurrent emitters never
        share one): the first of them, and whether the room may have members at that moment (a
        connection counted later learns a seq past these); None when the room has no counter
        (`open_room`), leaving it without one. A counter from before members were counted has
        no count: it may have members."""
        client = self._table.meta.client
        token = once_token()
        try:
            result = self._table.update_item(
                Key={"room": room, "seq": COUNTER_SEQ},
                UpdateExpression="ADD #l :n SET #t = :ttl, expiry_day = :day, " + ONCE_SET,
                ConditionExpression="attribute_exists(#l) AND " + ONCE_CONDITION,
                ExpressionAttributeNames={"#l": "last", "#t": "ttl", **ONCE_NAMES},
                ExpressionAttributeValues={
                    ":n": count,
                    ":once": token,
                    **self._ttl_values(COUNTER_RETENTION_SECONDS),
                },
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
        except client.exceptions.ConditionalCheckFailedException as exc:
            counter = refused_item(exc)
            if counter is None or counter.get(ONCE_NAMES["#once"]) != token:
                return None
            # this very reservation, applied already: its answer was lost and the SDK sent it again
        else:
            counter = result["Attributes"]
        return int(counter["last"]) - count + 1, int(counter.get("members", 1)) > 0

    @staticmethod
    def _ttl_values(seconds: int) -> dict[str, Any]:
        fields = timeutil.ttl_fields(timeutil.now() + seconds)
        return {":ttl": fields["ttl"], ":day": fields["expiry_day"]}

    def current(self, rooms: list[str]) -> dict[str, int]:
        """The last seq of each room (0 for a room without a counter)."""
        found = {item["room"]: int(item.get("last", 0)) for item in self._counters(rooms)}
        return {room: found.get(room, 0) for room in rooms}

    def _counters(self, rooms: list[str]) -> list[dict[str, Any]]:
        """The counters the rooms have (`room`, `last` and `members` only), consistently read."""
        found: list[dict[str, Any]] = []
        keys = [{"room": room, "seq": COUNTER_SEQ} for room in dict.fromkeys(rooms)]
        for start in range(0, len(keys), 100):
            request = {
                self._table.name: {
                    "Keys": keys[start : start + 100],
                    "ConsistentRead": True,
                    "ProjectionExpression": "#r, #l, members",
                    "ExpressionAttributeNames": {"#r": "room", "#l": "last"},
                }
            }
            while request:
                result = self._client.batch_get_item(RequestItems=request)
                found += result.get("Responses", {}).get(self._table.name, [])
                request = result.get("UnprocessedKeys") or {}
        return found

    def bodies(self, room: str, seqs: list[int]) -> dict[int, str]:
        """The stored envelopes of `room` at `seqs` (consistent BatchGetItem); a missing one is
        an error (the fan-out reads only what its emit stored before sending the shard)."""
        found: dict[int, str] = {}
        keys = [{"room": room, "seq": seq} for seq in dict.fromkeys(seqs)]
        for start in range(0, len(keys), 100):
            request = {self._table.name: {"Keys": keys[start : start + 100], "ConsistentRead": True}}
            while request:
                result = self._client.batch_get_item(RequestItems=request)
                found.update({int(i["seq"]): i["body"] for i in result.get("Responses", {}).get(self._table.name, [])})
                request = result.get("UnprocessedKeys") or {}
        missing = [seq for seq in seqs if seq not in found]
        if missing:
            raise LookupError(f"events {missing} of room {room} are not stored")
        return found

    def append(self, entries: list[tuple[str, int, str]]) -> None:
        """Store (room, seq, envelope) entries, the envelope exactly as sent, so that a replay is
        byte for byte the same: BatchWriteItem, 25 entries per request (one request for an
        event's rooms), retrying UnprocessedItems with backoff. Raises EventsNotStored when
        DynamoDB still refuses some after WRITE_ATTEMPTS."""
        fields = timeutil.ttl_fields(timeutil.now() + EVENT_RETENTION_SECONDS)
        requests = [
            {"PutRequest": {"Item": {"room": room, "seq": seq, "body": body, **fields}}} for room, seq, body in entries
        ]
        for start in range(0, len(requests), BATCH_WRITE_MAX):
            pending = requests[start : start + BATCH_WRITE_MAX]
            for attempt in range(WRITE_ATTEMPTS):
                result = self._client.batch_write_item(RequestItems={self._table.name: pending})
                pending = (result.get("UnprocessedItems") or {}).get(self._table.name, [])
                if not pending:
                    break
                log.warning("%d envelopes unprocessed, attempt %d", len(pending), attempt + 1)
                if attempt + 1 < WRITE_ATTEMPTS:
                    sleep(min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * (0.5 + random.random() / 2))
            if pending:
                raise EventsNotStored(f"{len(pending)} of {len(requests)} envelopes could not be stored")

    def _expired_until(self, room: str, expired: int, now: float) -> int:
        """The seq past which `room`'s envelopes are live, given that `expired` is an expired
        one: a binary search up to the room's counter, each probe one Query reading one item
        (envelopes expire in seq order: they are kept EVENT_RETENTION_SECONDS from their append)."""
        lo, hi = expired - 1, max(expired, self.current([room])[room])  # first after lo expired; after hi live or none
        while hi - lo > 1:
            mid = (lo + hi) // 2
            probe = self._table.query(
                KeyConditionExpression=_key("room").eq(room) & _key("seq").gt(mid), Limit=1, ConsistentRead=True
            ).get("Items", [])
            if not probe or _live(probe[0], now):
                hi = mid
            else:
                lo = mid
        return hi

    def latest(self, room: str, since: str, cap: int) -> Iterator[str]:
        """The envelopes of the room's events sent at or after `since` (an ISO time, as their
        `ts`), newest first: pages of 100 read backwards, `cap` events at most."""
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": _key("room").eq(room) & _key("seq").gt(COUNTER_SEQ),
            "ScanIndexForward": False,
            "Limit": 100,
            "ConsistentRead": True,
        }
        read = 0
        while read < cap:
            result = self._table.query(**kwargs)
            for item in result.get("Items", []):
                read += 1
                if json.loads(item["body"]).get("ts", "") < since:
                    return
                yield item["body"]
            if "LastEvaluatedKey" not in result:
                return
            kwargs["ExclusiveStartKey"] = result["LastEvaluatedKey"]

    def replay(self, room: str, after: int, limit: int) -> tuple[list[tuple[int, str]], bool]:
        """Up to `limit` stored (seq, envelope) of `room` with seq > `after`, in order, and
        whether there are more. When `after` is beyond the room's counter, the counter restarted
        (the room was silent past COUNTER_RETENTION_SECONDS) and every kept event is newer."""
        now = timeutil.now()
        if after > 0 and after > self.current([room])[room]:
            after = 0
        after = max(after, COUNTER_SEQ)
        oldest = self._table.query(
            KeyConditionExpression=_key("room").eq(room) & _key("seq").gt(after), Limit=1, ConsistentRead=True
        ).get("Items", [])
        if oldest and not _live(oldest[0], now):
            # Expired envelopes TTL has not removed yet come first: start past them.
            after = self._expired_until(room, int(oldest[0]["seq"]), now)
        found: list[tuple[int, str]] = []
        kwargs: dict[str, Any] = {
            "KeyConditionExpression": _key("room").eq(room) & _key("seq").gt(after),
            "ConsistentRead": True,
        }
        while True:
            kwargs["Limit"] = min(_QUERY_PAGE, limit + 1 - len(found))
            result = self._table.query(**kwargs)
            found += [(int(item["seq"]), item["body"]) for item in result.get("Items", []) if _live(item, now)]
            if len(found) > limit:
                return found[:limit], True
            if "LastEvaluatedKey" not in result:
                return found, False
            kwargs["ExclusiveStartKey"] = result["LastEvaluatedKey"]
