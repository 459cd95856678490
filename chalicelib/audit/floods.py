"""Refusals audited as counts: a flood of refused requests writes a few events, not one each.

`note(action, (kind, value), details)` counts one refusal of `action` by one source (an address,
a user) in the current minute, in the `login_attempts` table (`key` = `flood#<minute>`, `at` =
`<action>#<kind>#<value>`, an atomic ADD). The first refusal of a source and minute is recorded
at once, with its details and `"count": 1`, so admins see a flood begin; the rest of that minute
is recorded by `flush` (the `cleanup/audit_tally` job, every 5 minutes) as one event carrying
`"count": <the refusals not recorded yet>` and `<kind>: <value>`. The events' counts add up to
every refusal, which is what the report counts (`store.tally`); the admin room gets an event per
source and minute at most twice, not one per request.

A retried ADD whose answer was lost meets its own write (the item's `rid`, unless another
refusal of the same source landed in between) and is not counted again; a flush claims the remainder it records (`reported`, conditional) before recording it.
"""

from __future__ import annotations

import uuid
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, timeutil
from chalicelib.audit.logger import record

PREFIX = "flood#"
LOOKBACK_MINUTES = 20  # a flush (every 5 minutes) looks this far back for remainders
SETTLED_SECONDS = 5  # a minute is flushed once it ended this long ago
RETENTION_SECONDS = 24 * 3600


def _minute(ts: float) -> str:
    return timeutil.iso(ts)[:16]


def note(
    action: str,
    source: tuple[str, str],
    details: dict[str, Any],
    *,
    resource: tuple[str, str] | None = None,
    user_id: str | None = None,
) -> int:
    """Count one refusal of `action` by `source` (`("ip", address)`, `("user", id)`...) and record
    it when it is the source's first in this minute. Returns the minute's count so far."""
    table = aws.table("login_attempts")
    now = timeutil.now()
    kind, value = source
    rid = uuid.uuid4().hex  # the same in the SDK's retries of this one call
    key = {"key": PREFIX + _minute(now), "at": f"{action}#{kind}#{value}"}
    try:
        attributes = table.update_item(
            Key=key,
            UpdateExpression="ADD n :one SET rid = :rid, #t = :ttl, expiry_day = :expiry_day",
            ConditionExpression="attribute_not_exists(rid) OR rid <> :rid",
            ExpressionAttributeNames={"#t": "ttl"},
            ExpressionAttributeValues={
                ":one": 1,
                ":rid": rid,
                **{f":{k}": v for k, v in timeutil.ttl_fields(now + RETENTION_SECONDS).items()},
            },
            ReturnValues="UPDATED_NEW",
        )["Attributes"]
        count = int(attributes["n"])
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        # The SDK repeated this call after its answer was lost: counted once already; what it
        # counted to is read back (the first of the minute is still recorded at once).
        count = int((table.get_item(Key=key, ConsistentRead=True).get("Item") or {}).get("n", 0))
    if count == 1:
        record(action, resource=resource, user_id=user_id, details={**details, kind: value, "count": 1})
    return count


def flush(now: float | None = None) -> int:
    """Record the refusals counted but not recorded yet, in the finished minutes of the last
    LOOKBACK_MINUTES: an event per action, source and minute. How many events it recorded."""
    table = aws.table("login_attempts")
    now = timeutil.now() if now is None else now
    last = int(now - SETTLED_SECONDS) // 60 * 60 - 60  # the last finished minute
    recorded = 0
    for back in range(LOOKBACK_MINUTES):
        minute = _minute(last - back * 60)
        pages = aws.query_pages(table, KeyConditionExpression=Key("key").eq(PREFIX + minute))
        for item in (i for page in pages for i in page.get("Items", [])):
            recorded += _report(table, item, minute)
    return recorded


def _report(table: Any, item: dict[str, Any], minute: str) -> int:
    """Claim and record what `item` counted beyond what was recorded. The claim is conditional on
    what was read (another flush claiming first wins) or on its own id (the SDK repeating the
    claim after its answer was lost finds its own write, and the event is still recorded)."""
    count, seen = int(item["n"]), item.get("reported")
    delta = count - int(seen if seen is not None else 1)  # the first was recorded by `note`
    if delta <= 0:
        return 0
    claim = uuid.uuid4().hex
    try:
        table.update_item(
            Key={"key": item["key"], "at": item["at"]},
            UpdateExpression="SET reported = :n, claim = :claim",
            ConditionExpression=("attribute_not_exists(reported)" if seen is None else "reported = :seen")
            + " OR claim = :claim",
            ExpressionAttributeValues={":n": count, ":claim": claim, **({} if seen is None else {":seen": seen})},
        )
    except table.meta.client.exceptions.ConditionalCheckFailedException:
        return 0  # another flush claimed it
    action, kind, value = str(item["at"]).split("#", 2)
    record(action, details={kind: value, "count": delta, "minute": minute, "remainder": True})
    return 1
