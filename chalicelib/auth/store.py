"""DynamoDB gateways for users, sessions and login attempts."""

from __future__ import annotations

import uuid
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import timeutil

WINDOW_SECONDS = 15 * 60
ATTEMPT_RETENTION_SECONDS = 24 * 3600


class EmailTaken(Exception):
    pass


class Users:
    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, email: str, password_hash: str, role: str) -> dict[str, Any]:
        user = {
            "id": uuid.uuid4().hex,
            "email": email,
            "role": role,
            "password_hash": password_hash,
            "created_at": timeutil.iso(),
        }
        client = self._table.meta.client
        try:
            client.transact_write_items(
                TransactItems=[
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": {"id": f"email#{email}", "user_id": user["id"]},
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                    {
                        "Put": {
                            "TableName": self._table.name,
                            "Item": user,
                            "ConditionExpression": "attribute_not_exists(id)",
                        }
                    },
                ]
            )
        except client.exceptions.TransactionCanceledException:
            raise EmailTaken(email) from None
        return user

    def by_email(self, email: str) -> dict[str, Any] | None:
        result = self._table.query(IndexName="by_email", KeyConditionExpression=Key("email").eq(email), Limit=1)
        items = result.get("Items", [])
        return items[0] if items else None

    def get(self, user_id: str) -> dict[str, Any] | None:
        if user_id.startswith("email#"):
            return None
        return self._table.get_item(Key={"id": user_id}).get("Item")


class Sessions:
    """One item per issued token; a token whose item is gone is revoked."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def create(self, jti: str, user: dict[str, Any], expires_at: int) -> None:
        self._table.put_item(
            Item={
                "jti": jti,
                "user_id": user["id"],
                "email": user["email"],
                "role": user["role"],
                **timeutil.ttl_fields(expires_at),
            }
        )

    def get(self, jti: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"jti": jti}, ConsistentRead=True).get("Item")
        if item and int(item["ttl"]) <= timeutil.now():
            return None  # expired but not yet removed by TTL
        return item

    def revoke(self, jti: str) -> None:
        self._table.delete_item(Key={"jti": jti})


class LoginAttempts:
    """Failed logins under `email#<email>` and `ip#<ip>`, newest last."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def record_failure(self, keys: list[str]) -> None:
        now = timeutil.now()
        with self._table.batch_writer() as batch:
            for key in keys:
                batch.put_item(
                    Item={
                        "key": key,
                        "at": f"{timeutil.iso_ms(now)}#{uuid.uuid4().hex[:8]}",
                        **timeutil.ttl_fields(now + ATTEMPT_RETENTION_SECONDS),
                    }
                )

    def failures(self, key: str) -> int:
        """How many failures for `key` fall within the window now."""
        now = timeutil.now()
        result = self._table.query(
            KeyConditionExpression=Key("key").eq(key) & Key("at").gte(timeutil.iso_ms(now - WINDOW_SECONDS)),
            Select="COUNT",
            ConsistentRead=True,
        )
        return int(result.get("Count", 0))

    def locked_for(self, key: str, limit: int) -> int:
        """Seconds until `key` may try again (0 when it may now): locked while `limit`
        failures fall within the window."""
        now = timeutil.now()
        result = self._table.query(
            KeyConditionExpression=Key("key").eq(key) & Key("at").gte(timeutil.iso_ms(now - WINDOW_SECONDS)),
            ScanIndexForward=False,
            Limit=limit,
            ProjectionExpression="#a",
            ExpressionAttributeNames={"#a": "at"},
            ConsistentRead=True,
        )
        items = result.get("Items", [])
        if len(items) < limit:
            return 0
        oldest = timeutil.parse_iso(items[-1]["at"].split("#")[0])
        return max(1, int(oldest + WINDOW_SECONDS - now) + 1)
