"""Recording audit events: the one `record()` call, the per-invocation buffer, and the writer
that never loses an accepted event.

Critical actions are written with a conditional PutItem before `record()` returns; the others
are buffered on the running invocation (`BUFFER`) and written with TransactWriteItems (Puts
only: no writer holds a right that deletes audit events), 24 at a time with their manifest (see manifest: the write-time evidence verify checks): when 24 are waiting,
and at the end of every invocation (the buffer's end flush, which app.py's
middleware runs on success and on error).
Every event, critical or not, is then published for the admin room's `activity`: one
`events.AuditRecorded` per flush (the end of the invocation, an explicit `flush()`, or every
ACTIVITY_BATCH events of a long invocation) carrying all the events recorded since the last one,
in order, after they were written, so the realtime emitters pay per flush, not per event.
Throttling is retried with exponential backoff (the sleep is injected); whatever DynamoDB still
refuses goes to the `audit` SQS queue, whose processor (`store_fallback`) writes it later,
idempotently, and only what its writer signed (every role may send to that queue). Should SQS refuse too, the event is logged whole at ERROR, the last place left.
"""

from __future__ import annotations

import hmac
import json
import logging
import random
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from chalicelib import aws, config, events, redact, runtime, secret, timeutil
from chalicelib.audit import manifest, model
from chalicelib.audit.actions import ALERT_LEVELS, classify
from chalicelib.observe import metrics
from chalicelib.util import from_dynamo, to_dynamo

log = logging.getLogger("inkwell.audit")

BATCH_SIZE = 25  # items per write request: 24 events and their manifest
MAX_ATTEMPTS = 5
BACKOFF_BASE = 0.05
BACKOFF_CAP = 2.0
SQS_BODY_BYTES = 200_000  # under SQS's 256 KiB
MARKER_PREFIX = "id#"
NOT_RETRYABLE = frozenset({"ValidationException", "ResourceNotFoundException", "AccessDeniedException"})
ACTIVITY_BATCH = 4 * (BATCH_SIZE - 1)  # a long invocation publishes this often: 96, four full writes
FUTURE_SKEW = 60.0  # seconds: the clock skew a queued event's time may show, and no more


def sleep(seconds: float) -> None:
    """The pause between retries; tests replace it."""
    time.sleep(seconds)


def backoff(attempt: int, rand: Callable[[], float] = random.random) -> float:
    """Seconds to wait before retry `attempt + 1`: exponential with full jitter (pure)."""
    return min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt) * (0.5 + rand() / 2)


def _error_code(exc: Exception) -> str:
    return str((getattr(exc, "response", None) or {}).get("Error", {}).get("Code", type(exc).__name__))


class Writer:
    """Writes placed items to the audit table; falls back to the audit queue. Counts requests."""

    def __init__(
        self,
        client: Any,
        table_name: str,
        sqs: Any,
        queue_url: Callable[[], str],
        pause: Callable[[float], None] | None = None,
    ) -> None:
        self._client = client
        self._table = table_name
        self._sqs = sqs
        self._queue_url = queue_url
        self._sleep = pause or (lambda seconds: sleep(seconds))  # late-bound: tests replace `sleep`
        self.requests = 0

    def put(self, item: dict[str, Any]) -> str:
        """Write one item now. Returns where it went: dynamodb | queue | log."""
        for attempt in range(MAX_ATTEMPTS):
            self.requests += 1
            try:
                self._client.put_item(TableName=self._table, Item=item, ConditionExpression="attribute_not_exists(sk)")
                metrics.count("AuditWrites")
                return "dynamodb"
            except Exception as exc:
                code = _error_code(exc)
                if code == "ConditionalCheckFailedException":
                    metrics.count("AuditWrites")
                    return "dynamodb"  # an earlier attempt landed after all
                log.warning("audit PutItem failed (%s), attempt %d", code, attempt + 1)
                if code in NOT_RETRYABLE:
                    break
            if attempt + 1 < MAX_ATTEMPTS:
                self._sleep(backoff(attempt))
        return self.fallback([item])

    def batch(self, items: list[dict[str, Any]], evidence: dict[str, Any] | None = None) -> dict[str, int]:
        """Write items 25 per TransactWriteItems of Puts (so no writer needs a right that can
        delete: BatchWriteItem's DeleteRequest), retrying refusals with backoff; `evidence` (the
        flush's manifest) rides in the last request. A request DynamoDB still refuses goes to the
        queue whole, its manifest with it."""
        outcome = {"dynamodb": 0, "queue": 0, "log": 0}
        everything = [*items, evidence] if evidence is not None else items
        for start in range(0, len(everything), BATCH_SIZE):
            chunk = everything[start : start + BATCH_SIZE]
            events_ = [item for item in chunk if item is not evidence]
            if self._transact(chunk):
                outcome["dynamodb"] += len(events_)
                metrics.count("AuditWrites", len(events_))
                continue
            where = self.fallback(events_, evidence if len(events_) < len(chunk) else None)
            outcome[where] += len(events_)
        return outcome

    def _transact(self, chunk: list[dict[str, Any]]) -> bool:
        """Put `chunk` in one transaction (all or nothing); True once it landed. A lost answer
        the SDK repeats writes the same items again: no condition, nothing to refuse."""
        puts = [{"Put": {"TableName": self._table, "Item": item}} for item in chunk]
        for attempt in range(MAX_ATTEMPTS):
            self.requests += 1
            try:
                self._client.transact_write_items(TransactItems=puts)
                return True
            except Exception as exc:
                code = _error_code(exc)
                reasons = {r.get("Code") for r in (getattr(exc, "response", None) or {}).get("CancellationReasons", [])}
                log.warning(
                    "audit TransactWriteItems failed (%s %s), attempt %d", code, sorted(reasons - {"None"}), attempt + 1
                )
                if code in NOT_RETRYABLE or "ValidationError" in reasons:
                    break
            if attempt + 1 < MAX_ATTEMPTS:
                self._sleep(backoff(attempt))
        return False

    def fallback(self, items: list[dict[str, Any]], evidence: dict[str, Any] | None = None) -> str:
        """Hand items DynamoDB refused (and the manifest listing them) to the audit queue; log
        them whole if SQS refuses too."""
        metrics.count("AuditFallbacks", len(items))
        bodies = list(_bodies(items, evidence))
        for body in bodies:
            for attempt in range(3):
                self.requests += 1
                try:
                    self._sqs.send_message(QueueUrl=self._queue_url(), MessageBody=body)
                    break
                except Exception as exc:
                    log.warning("audit fallback SendMessage failed (%s)", _error_code(exc))
                    if attempt < 2:
                        self._sleep(backoff(attempt))
            else:
                log.error("AUDIT EVENTS NOT STORED (DynamoDB and SQS refused): %s", body)
                return "log"
        log.warning("%d audit events went to the fallback queue", len(items))
        events.publish(
            events.Alert("warning", "audit events were queued: DynamoDB refused them", {"count": len(items)})
        )
        return "queue"


def _bodies(items: list[dict[str, Any]], evidence: dict[str, Any] | None = None) -> Iterable[str]:
    """SQS message bodies `{"events": [...]}`, each under SQS_BODY_BYTES; the last one carries
    `evidence` (`"manifest"`) when given."""
    batch: list[Any] = []
    size = 0
    for item in items:
        plain = from_dynamo(item)
        encoded = len(json.dumps(plain, default=str))
        if batch and size + encoded > SQS_BODY_BYTES:
            yield json.dumps({"events": batch}, default=str)
            batch, size = [], 0
        batch.append(plain)
        size += encoded
    if batch or evidence is not None:
        last: dict[str, Any] = {"events": batch}
        if evidence is not None:
            last["manifest"] = from_dynamo(evidence)
        yield json.dumps(last, default=str)


def writer() -> Writer:
    table = aws.table("audit_events")
    return Writer(table.meta.client, table.name, aws.client("sqs"), lambda: aws.queue_url("audit"))


def _key() -> str:
    return secret.get(config.AUDIT_DIGEST_KEY)


def record(
    action: str,
    category: str | None = None,
    severity: str | None = None,
    *,
    resource: tuple[str, str] | None = None,
    details: dict[str, Any] | None = None,
    critical: bool | None = None,
    user_id: str | None = None,
    user_email: str | None = None,
) -> dict[str, Any]:
    """Record one audit event for the running invocation and return it (the contract's shape).

    The actor (user and email, IP, user agent, request id) comes from `runtime.current()`;
    `user_id` and `user_email` name the actor where no one is authenticated yet (a login). Raises
    actions.UnknownAction for a malformed or uncatalogued name (a programming error, found by tests).
    """
    cls = classify(action, category, severity, critical)
    inv = runtime.current()
    now = timeutil.now()
    actor = inv.user or {}
    user_id = user_id or actor.get("id")
    item = model.build(
        action,
        cls,
        user_id=user_id,
        user_email=user_email or (actor.get("email") if user_id == actor.get("id") else None),
        ip=inv.ip,
        user_agent=inv.user_agent,
        request_id=inv.request_id,
        resource=resource,
        details=redact.details(details),
        now=now,
    )
    event = model.public(item)
    buffer = BUFFER.get()
    if cls.critical:
        placed = model.place(item, now, now, _key())
        writer().put(placed)
        buffer.listed.append(manifest.line(placed))
    else:
        buffer.writes.append((item, now))
        if len(buffer.writes) >= BATCH_SIZE - 1:  # and the manifest: one request
            _write(buffer)
    buffer.unpublished.append(event)
    if len(buffer.unpublished) >= ACTIVITY_BATCH:
        _flush(buffer)
    level = ALERT_LEVELS.get(action)
    if level:
        events.publish(events.Alert(level, f"{action}: {_summary(event)}", {"event": event}))
    return event


def _summary(event: dict[str, Any]) -> str:
    parts = [f"{k}={v}" for k, v in event["details"].items() if isinstance(v, (str, int))][:4]
    if event["actor"]["ip"]:
        parts.append(f"ip={event['actor']['ip']}")
    return ", ".join(parts) or event["id"]


@dataclass
class Pending:
    """An invocation's audit events not yet written (with when each was recorded), and those not
    yet published (every event since the last `events.AuditRecorded`)."""

    writes: list[tuple[dict[str, Any], float]] = field(default_factory=list)
    unpublished: list[dict[str, Any]] = field(default_factory=list)
    listed: list[str] = field(default_factory=list)  # critical events written, for the next manifest


def pending() -> int:
    """How many events of the running invocation wait to be written."""
    buffer = BUFFER.peek()
    return len(buffer.writes) if buffer else 0


def flush() -> dict[str, int]:
    """Write the running invocation's buffered events, then publish every event recorded since
    the last flush as one `events.AuditRecorded`. Returns where the buffered events went."""
    return _flush(BUFFER.get())


def end_flush() -> None:
    """`BUFFER`'s end flush (app.py's middleware, at the end of every invocation)."""
    buffer = BUFFER.take()
    if buffer is not None:
        _flush(buffer)


BUFFER = runtime.Buffer("audit", Pending, end_flush)


def _flush(buffer: Pending) -> dict[str, int]:
    outcome = _write(buffer)
    unpublished, buffer.unpublished = buffer.unpublished, []
    if unpublished:  # taken off the buffer first: a listener that fails cannot send them twice
        events.publish(events.AuditRecorded(tuple(unpublished)))
    return outcome


def _write(buffer: Pending) -> dict[str, int]:
    """Write the buffered events with their manifest (listing them and the critical events
    written since the last one) in one TransactWriteItems when they fit."""
    writes, buffer.writes = buffer.writes, []
    listed, buffer.listed = buffer.listed, []
    if not writes and not listed:
        return {}
    now = timeutil.now()
    key = _key()
    placed = [model.place(item, at, now, key) for item, at in writes]
    evidence = manifest.build([*listed, *(manifest.line(p) for p in placed)], now, key)
    return writer().batch(placed, evidence)


def check_fallback(item: dict[str, Any], now: float, key: str) -> str | None:
    """Why a queued event must not be stored (None when it may): its writer's signature is missing
    or wrong, or it claims a time later than now + FUTURE_SKEW (pure)."""
    if not isinstance(item.get("id"), str) or not isinstance(item.get("mac"), str):
        return "unsigned"
    if not hmac.compare_digest(item["mac"], model.mac(item, key)):
        return "forged"
    try:
        recorded_at = timeutil.parse_iso(str(item.get("ts")))
    except ValueError:
        return "forged"
    return "future" if recorded_at > now + FUTURE_SKEW else None


def check_manifest(item: dict[str, Any], now: float, key: str) -> str | None:
    """Why a queued flush manifest must not be stored (None when it may): not one, not signed by
    its writer, not the content its key names, or from the future (pure)."""
    if not manifest.is_manifest(item) or not isinstance(item.get("sk"), str):
        return "unsigned"
    if not hmac.compare_digest(str(item.get("mac", "")), manifest.mac(item, key)) or manifest.overwritten(item):
        return "forged"
    try:
        written_at = timeutil.parse_iso(item["sk"].split("#", 1)[0])
    except ValueError:
        return "forged"
    return "future" if written_at > now + FUTURE_SKEW else None


def store_manifest(table: Any, item: dict[str, Any]) -> bool:
    """Write a checked manifest that came back through the audit queue at its own key (the
    events it lists are found where their markers say); False when it was already there."""
    client = table.meta.client
    try:
        table.put_item(Item=item, ConditionExpression="attribute_not_exists(sk)")
    except client.exceptions.ConditionalCheckFailedException:
        return False
    return True


def store_fallback(table: Any, item: dict[str, Any]) -> bool:
    """Write one checked event that came back through the audit queue; False when it was already
    stored.

    Idempotent: the event is skipped when its original key holds it (the first write landed after
    all) and otherwise written in one transaction with a marker item keyed by its id (naming where
    it went, for the flush manifests), so a redelivered message cannot store it twice. It is
    re-keyed at the time it is written, never into a period a digest may already have sealed, and
    keeps its writer's MAC: nothing here signs.
    """
    if isinstance(item.get("hour"), str) and isinstance(item.get("sk"), str):
        original = table.get_item(Key={"hour": item["hour"], "sk": item["sk"]}, ConsistentRead=True).get("Item")
        if original is not None:
            return False
    placed = model.place(item, timeutil.parse_iso(item["ts"]), timeutil.now(), None)
    client = table.meta.client
    marker = {
        "hour": MARKER_PREFIX + item["id"],
        "sk": "id",
        "ttl": item.get("ttl", 0),
        "at": f"{placed['hour']} {placed['sk']}",
    }
    try:
        client.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": table.name,
                        "Item": marker,
                        "ConditionExpression": "attribute_not_exists(#h)",
                        "ExpressionAttributeNames": {"#h": "hour"},
                    }
                },
                {
                    "Put": {
                        "TableName": table.name,
                        "Item": placed,
                        "ConditionExpression": "attribute_not_exists(sk)",
                    }
                },
            ]
        )
    except client.exceptions.TransactionCanceledException as exc:
        reasons = [r.get("Code") for r in exc.response.get("CancellationReasons", [])]
        if "ConditionalCheckFailed" in reasons:
            return False
        raise
    return True


def process_fallback_message(body: str) -> int:
    """The audit queue's processor: store every event of one message that its writer signed and
    that is not from the future; returns how many were new. What it refuses is counted (the
    `AuditFallbackRefused` metric) and recorded as one `security.audit_refused` per message."""
    table = aws.table("audit_events")
    stored = 0
    refused: dict[str, int] = {}
    ids: list[str] = []
    key, now = _key(), timeutil.now()
    message = json.loads(body)
    message = message if isinstance(message, dict) else {}
    if "manifest" in message:
        evidence = to_dynamo(message["manifest"]) if isinstance(message["manifest"], dict) else {}
        reason = check_manifest(evidence, now, key)
        if reason is None:
            store_manifest(table, evidence)
        else:
            refused[reason] = refused.get(reason, 0) + 1
            ids.append(str(evidence.get("sk", "?"))[:64])
    for item in message.get("events", []):
        item = to_dynamo(item) if isinstance(item, dict) else {}
        reason = check_fallback(item, now, key)
        if reason is None:
            stored += store_fallback(table, item)
            continue
        refused[reason] = refused.get(reason, 0) + 1
        ids.append(str(item.get("id", "?"))[:64])
    if refused:
        total = sum(refused.values())
        metrics.count("AuditFallbackRefused", total)
        log.error("audit queue: %d events refused (%s)", total, refused)
        record("security.audit_refused", details={"refused": total, "reasons": refused, "ids": ids[:20]})
    return stored
