"""Retention of the audit trail: a TTL per category (set on every event, see actions), plus the
weekly `cleanup/activity_logs` sweep that deletes what has expired but TTL has not removed yet
(DynamoDB takes up to a few days). The sweep queries the `by_expiry` index day by day, never a
Scan. A digest keeps each expired event's TTL, so verify knows its absence is expected.
"""

from __future__ import annotations

from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, timeutil

SWEEP_DAYS = 14  # the sweep runs weekly; look back two weeks in case a run was missed


def sweep(table: Any, now: float, days: int = SWEEP_DAYS) -> dict[str, int]:
    """Delete the events whose TTL passed during the last `days` days."""
    deleted = 0
    with table.batch_writer() as batch:
        for back in range(days, -1, -1):
            kwargs: dict[str, Any] = {
                "IndexName": "by_expiry",
                "KeyConditionExpression": Key("expiry_day").eq(timeutil.day(now - back * 86400))
                & Key("ttl").lte(int(now)),
                "ProjectionExpression": "#h, sk",
                "ExpressionAttributeNames": {"#h": "hour"},
            }
            while True:
                result = table.query(**kwargs)
                for item in result.get("Items", []):
                    batch.delete_item(Key={"hour": item["hour"], "sk": item["sk"]})
                    deleted += 1
                if "LastEvaluatedKey" not in result:
                    break
                kwargs["ExclusiveStartKey"] = result["LastEvaluatedKey"]
    return {"deleted": deleted}


def cleanup(now: float | None = None) -> dict[str, int]:
    """The `cleanup/activity_logs` job."""
    return sweep(aws.table("audit_events"), timeutil.now() if now is None else now)
