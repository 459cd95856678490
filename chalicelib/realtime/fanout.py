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
a deduplication id, so a batch sent again after a failure is not delivered twice.

Between a room's direct and sharded emits (the room crossing the threshold) nothing orders the
two paths: a client may hear seq n+1 before n, which the clients put back in order (they order
by seq and resume over gaps), as they do for concurrent emitters.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
import zlib
from typing import Any

from chalicelib import aws, config
from chalicelib.realtime import live
from chalicelib.realtime.protocol import dumps

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
        body = dumps(message)
        dedup = hashlib.sha256(f"{room}\n{first_seq}\n{index}\n{len(bodies)}".encode()).hexdigest()
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
        except Exception:
            log.exception("fan-out shard %s failed", record["messageId"])
            failures.append({"itemIdentifier": record["messageId"]})
            _retry_soon(record)
    return {"batchItemFailures": failures}


def deliver(shard: dict[str, Any]) -> None:
    """Post the shard's envelopes, in order, to its connections; forget those that are gone. An
    envelope carried as its seq is read from the event log first (one BatchGetItem)."""
    bodies = shard["bodies"]
    refs = [b for b in bodies if isinstance(b, int)]
    if refs:
        stored = live.event_log().bodies(shard["room"], refs)
        bodies = [stored[b] if isinstance(b, int) else b for b in bodies]
    live.post(None, shard["endpoint"], shard["connections"], bodies)  # DynamoDB only for 410s and refs


def _retry_soon(record: dict[str, Any]) -> None:
    """Bring a failed shard back after a short delay rather than the queue's visibility timeout
    (its group waits for it meanwhile); best effort."""
    received = int((record.get("attributes") or {}).get("ApproximateReceiveCount", "1"))
    delay = RETRY_DELAY_SECONDS[min(received, len(RETRY_DELAY_SECONDS)) - 1]
    try:
        aws.client("sqs").change_message_visibility(
            QueueUrl=aws.queue_url(QUEUE), ReceiptHandle=record["receiptHandle"], VisibilityTimeout=delay
        )
    except Exception:
        log.warning("could not shorten the visibility of fan-out shard %s", record.get("messageId"), exc_info=True)
