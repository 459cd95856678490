"""Rooms larger than one invocation can serve: their posts split into shards, each posted by an
invocation of its own through the FIFO queue `fanout.fifo` (app.py's `realtime_fanout`, whose
maximum concurrency is the catalogue's).

An emit stores its envelopes (seq taken, kept for `resume`) before anything is posted, as on the
direct path; then, for a room with more members than `INKWELL_FANOUT_THRESHOLD`, it sends shard
messages instead of posting: each connection belongs to one of `INKWELL_FANOUT_GROUPS` groups (a
hash of its id), and a group's shards share a FIFO message group per room, so SQS hands a group's
shards to one invocation at a time, in the order sent: every connection hears the room's events
in seq order, while the groups run in parallel. A shard carries its envelopes (byte for byte as
stored) and at most MAX_CONNECTIONS connection ids; a larger group, or envelopes that would not
fit in one message, become several shards of the same group. An envelope that cannot fit in a
message even alone (near the 128 KB WebSocket limit and made of characters JSON escapes: it grows
up to twice as a string) rides as its seq, and the shard reads it from the event log. Messages go
in SendMessageBatch calls of at most 10 entries and MAX_MESSAGE_BYTES in all (SQS's limit on a
batch's total, as on a message).

A shard's handler posts like the direct path (`Sender.broadcast_many`: a connection that answers
410 is forgotten, a post that keeps failing is logged and the client resumes over the gap). A
shard that fails as a whole (its invocation raised) is reported alone (`batchItemFailures`, with
the rest of its batch: a FIFO queue must not let later messages of a group pass it) and comes
back after a short backoff; the other shards are not posted again. SendMessageBatch entries carry
a deduplication id, so a batch sent again after a failure is not delivered twice; and a shard
whose message comes back after it was posted (its DeleteMessage lost) posts nothing (`_claim`).

Between a room's direct and sharded emits (the room crossing the threshold) nothing orders the
two paths: a client may hear seq n+1 before n, which the clients put back in order (they order
by seq and resume over gaps), as they do for concurrent emitters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
import zlib
from typing import Any

from chalicelib import aws, config, timeutil
from chalicelib.realtime import live
from chalicelib.realtime.protocol import dumps
from chalicelib.util import once_token, refused_item, to_dynamo

log = logging.getLogger("inkwell.realtime")

QUEUE = "fanout.fifo"
MAX_CONNECTIONS = 1000  # connection ids per shard message (with 128 KB of envelopes: < 256 KiB)
MAX_MESSAGE_BYTES = 250 * 1024  # SQS's 256 KiB, less a margin
SEND_ATTEMPTS = 5
RETRY_DELAY_SECONDS = (1, 2, 5, 10, 30)  # a failed shard comes back after this (by receive count)


def sleep(seconds: float) -> None:
    """The pause between retries of entries SendMessageBatch refused; tests replace it."""
    time.sleep(seconds)


def group_of(connection_id: str, groups: int) -> int:
    """The connection's group: the same for every event of every room while `groups` is unchanged."""
    return zlib.crc32(connection_id.encode()) % groups


def shards(
    room: str, recipients: dict[str | None, list[str]], bodies: list[str], groups: int, first_seq: int = 0
) -> list[dict[str, Any]]:
    """The shard messages of one delivery: per group (and endpoint), connections in chunks of
    MAX_CONNECTIONS, envelopes packed in order so that a message stays under MAX_MESSAGE_BYTES;
    an envelope too large for that even alone is carried as its seq (`first_seq` + its index)."""
    by_group: dict[tuple[int, str | None], list[str]] = {}
    for endpoint, ids in recipients.items():
        for cid in ids:
            by_group.setdefault((group_of(cid, groups), endpoint), []).append(cid)
    found = []
    for (group, endpoint), ids in sorted(by_group.items(), key=lambda item: (item[0][0], item[0][1] or "")):
        for start in range(0, len(ids), MAX_CONNECTIONS):
            chunk = ids[start : start + MAX_CONNECTIONS]
            budget = MAX_MESSAGE_BYTES - len(
                dumps({"room": room, "group": group, "endpoint": endpoint, "connections": chunk, "bodies": []}).encode()
            )
            part: list[str | int] = []
            used = 0
            for index, body in enumerate(bodies):
                carried: str | int = body
                size = len(dumps(body).encode()) + 1
                if size > budget:  # too large even alone: its seq, and the shard reads it
                    carried, size = first_seq + index, 20
                if part and used + size > budget:
                    found.append(
                        {"room": room, "group": group, "endpoint": endpoint, "connections": chunk, "bodies": part}
                    )
                    part, used = [], 0
                part.append(carried)
                used += size
            found.append({"room": room, "group": group, "endpoint": endpoint, "connections": chunk, "bodies": part})
    return found


def enqueue(room: str, recipients: dict[str | None, list[str]], bodies: list[str], first_seq: int) -> int:
    """Send the shards of `bodies` (envelopes of `room` from seq `first_seq`, already stored) for
    `recipients`; returns how many. Raises when SQS keeps refusing some (the events are stored:
    the room's clients get them through `resume`)."""
    messages = shards(room, recipients, bodies, config.get().fanout_groups, first_seq)
    entries = []
    for index, message in enumerate(messages):
        dedup = hashlib.sha256(f"{room}\n{first_seq}\n{index}\n{len(bodies)}".encode()).hexdigest()
        body = dumps({**message, "id": dedup})  # the shard's id: its delivery is marked under it
        entries.append(
            {
                "Id": str(index),
                "MessageBody": body,
                "MessageGroupId": _group_id(room, message["group"]),
                "MessageDeduplicationId": dedup,
            }
        )
    sqs, url = aws.client("sqs"), aws.queue_url(QUEUE)
    for batch in batches(entries):
        _send(sqs, url, batch)
    return len(entries)


def batches(entries: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The entries in order, in batches of at most 10 and MAX_MESSAGE_BYTES of bodies (pure)."""
    found: list[list[dict[str, Any]]] = []
    used = 0
    for entry in entries:
        size = len(entry["MessageBody"].encode())
        if not found or len(found[-1]) == 10 or used + size > MAX_MESSAGE_BYTES:
            found.append([])
            used = 0
        found[-1].append(entry)
        used += size
    return found


def _group_id(room: str, group: int) -> str:
    # At most 128 characters; a long room name is hashed (its shards still share their group).
    name = room if len(room) <= 100 else hashlib.sha256(room.encode()).hexdigest()
    return f"{name}#{group}"


def _send(sqs: Any, url: str, entries: list[dict[str, Any]]) -> None:
    """One SendMessageBatch (at most 10 entries), sent again from the first entry SQS refused (the
    ones it took are dropped as duplicates: same deduplication id). A shard sent again may follow
    a later one of its group: the clients order by seq."""
    for attempt in range(SEND_ATTEMPTS):
        failed = {f["Id"] for f in sqs.send_message_batch(QueueUrl=url, Entries=entries).get("Failed", [])}
        if not failed:
            return
        first = min(int(i) for i in failed)
        entries = [e for e in entries if int(e["Id"]) >= first]  # in order: resend from the first refused
        sleep(min(1.0, 0.05 * 2**attempt))
    raise RuntimeError(f"SQS refused fan-out shards after {SEND_ATTEMPTS} attempts")


# --- the fan-out function ------------------------------------------------------------------------


def handle(event: dict[str, Any]) -> dict[str, Any]:
    """Post each shard of the batch; the shards that failed, and (FIFO) everything after the first
    failure, are reported in `batchItemFailures` and come back after a short backoff."""
    failures: list[dict[str, str]] = []
    for record in event.get("Records", []):
        if failures:
            failures.append({"itemIdentifier": record["messageId"]})
            continue
        try:
            deliver(json.loads(record["body"]))
        except Busy as busy:  # delivered by a live invocation now, or killed: back when its lease ends
            log.info("fan-out shard %s is being delivered elsewhere; back in %d s", record["messageId"], busy.seconds)
            failures.append({"itemIdentifier": record["messageId"]})
            _retry_soon(record, busy.seconds)
        except Exception:
            log.exception("fan-out shard %s failed", record["messageId"])
            failures.append({"itemIdentifier": record["messageId"]})
            _retry_soon(record)
    return {"batchItemFailures": failures}


def deliver(shard: dict[str, Any]) -> None:
    """Post the shard's envelopes, in order, to its connections; forget those that are gone. An
    envelope carried as its seq is read from the event log first (one BatchGetItem). A shard
    marked delivered (a redelivery after a lost DeleteMessage) posts nothing; see `_claim`."""
    marker, token = shard.get("id"), once_token()
    if marker is not None and not _claim(marker, token):
        log.info("fan-out shard %s was delivered already; acknowledged", marker)
        return
    try:
        bodies = shard["bodies"]
        refs = [b for b in bodies if isinstance(b, int)]
        if refs:
            stored = live.event_log().bodies(shard["room"], refs)
            bodies = [stored[b] if isinstance(b, int) else b for b in bodies]
        live.post(None, shard["endpoint"], shard["connections"], bodies)  # DynamoDB only for 410s and refs
    except Exception:
        if marker is not None:
            _mark(marker, "SET #l = :zero", {":zero": 0}, token)  # let its retry claim it at once
        raise
    if marker is not None:
        _mark(marker, "SET #d = :yes", {":yes": True})


# --- a shard delivered once ----------------------------------------------------------------------
# A shard's message can come back after its handler posted it (its DeleteMessage lost, or the
# poller's answer lost): before posting, the handler claims the shard's mark (`fanout#<id>`, seq 0
# in `ws_events`) with a lease as long as the fan-out function's timeout, by one conditional
# UpdateItem, and marks it done after posting by a second. A redelivery finds the mark done and
# posts nothing; one that finds a live lease comes back when it ends (`Busy`); a killed handler's
# shard is taken over once its lease ended (its connections may hear that shard twice: twice beats
# never, and clients drop a seq they have). Cost: two UpdateItems per shard (a shard holds up to
# MAX_CONNECTIONS connections), one per redelivery. Marks live a day (TTL).

MARK_RETENTION_SECONDS = 24 * 3600
LEASE_GRACE_SECONDS = 5
MAX_BUSY_WAIT_SECONDS = 900


class Busy(Exception):  # noqa: N818 (not an error: a shard another invocation holds)
    def __init__(self, seconds: float) -> None:
        super().__init__(f"fan-out shard leased for {seconds:.0f} s more")
        self.seconds = max(1, min(MAX_BUSY_WAIT_SECONDS, math.ceil(seconds)))


def _mark_key(marker: str) -> dict[str, Any]:
    return {"room": f"fanout#{marker}", "seq": 0}


def _claim(marker: str, token: str) -> bool:
    """Claim the shard for this delivery: True to post it, False when it was delivered already;
    Busy while another delivery's lease lasts."""
    from chalicelib import catalog

    now = timeutil.now()
    lease = now + catalog.queue(QUEUE).function_timeout + LEASE_GRACE_SECONDS
    fields = timeutil.ttl_fields(now + MARK_RETENTION_SECONDS)
    table = aws.table("ws_events")
    try:
        table.update_item(
            Key=_mark_key(marker),
            UpdateExpression="SET #l = :lease, #c = :token, #t = :ttl, expiry_day = :day",
            ConditionExpression="attribute_not_exists(#r) OR (attribute_not_exists(#d) AND #l < :now)",
            ExpressionAttributeNames={**_NAMES, "#t": "ttl", "#r": "room"},
            ExpressionAttributeValues={
                ":lease": to_dynamo(lease),
                ":token": token,
                ":now": to_dynamo(now),
                ":ttl": fields["ttl"],
                ":day": fields["expiry_day"],
            },
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        )
    except table.meta.client.exceptions.ConditionalCheckFailedException as exc:
        old = refused_item(exc) or {}
        if old.get("claim") == token:
            return True  # this very claim, applied: its answer was lost and the SDK sent it again
        if old.get("done"):
            return False
        raise Busy(float(old.get("lease_until", 0)) - now) from None
    return True


_NAMES = {"#l": "lease_until", "#c": "claim", "#d": "done"}


def _mark(marker: str, update: str, values: dict[str, Any], owner: str | None = None) -> None:
    """Set the mark (done, or its lease ended); with `owner`, only while that claim holds it."""
    condition = "#c = :owner" if owner is not None else ""
    used = f"{update} {condition}"
    args: dict[str, Any] = {
        "Key": _mark_key(marker),
        "UpdateExpression": update,
        "ExpressionAttributeNames": {k: v for k, v in _NAMES.items() if k in used},
        "ExpressionAttributeValues": {**values, **({":owner": owner} if owner is not None else {})},
    }
    if condition:
        args["ConditionExpression"] = condition
    try:
        aws.table("ws_events").update_item(**args)
    except Exception:  # best effort: a mark not done is delivered again after its lease (twice beats never)
        log.warning("could not mark fan-out shard %s", marker, exc_info=True)


def _retry_soon(record: dict[str, Any], delay: float | None = None) -> None:
    """Bring a failed shard back after a short delay rather than the queue's visibility timeout
    (its group waits for it meanwhile); best effort."""
    received = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
    delay = RETRY_DELAY_SECONDS[min(received, len(RETRY_DELAY_SECONDS)) - 1] if delay is None else delay
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=aws.queue_url(QUEUE), ReceiptHandle=record["receiptHandle"], VisibilityTimeout=int(delay)
        )
    except Exception:
        log.warning("could not shorten the visibility of fan-out shard %s", record.get("messageId"), exc_info=True)
