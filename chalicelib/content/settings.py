"""Admin settings (scope `config`) and stored reports (scope `report`) in one table.

Settings are read with one Query on their scope, never a Scan; reports live in their own scope
so that the settings listing does not grow with them.
"""

from __future__ import annotations

import json
import re
from typing import Any

from boto3.dynamodb.conditions import Key
from pydantic import field_validator

from chalicelib import audit, aws, timeutil
from chalicelib.http import Body
from chalicelib.util import from_dynamo, storable_problem, to_dynamo

CONFIG = "config"
REPORT = "report"
KEY_PATTERN = re.compile(r"^[a-z][a-z0-9_.-]{0,127}$")
MAX_VALUE_BYTES = 32 * 1024


class SettingValue(Body):
    value: Any

    @field_validator("value")
    @classmethod
    def _size(cls, value: Any) -> Any:
        problem = storable_problem(value)  # first: it bounds the depth that json.dumps walks
        if problem:
            raise ValueError(problem)
        if len(json.dumps(value)) > MAX_VALUE_BYTES:
            raise ValueError(f"must be at most {MAX_VALUE_BYTES} bytes as JSON")
        return value


def valid_key(key: str) -> bool:
    return bool(KEY_PATTERN.match(key))


class Settings:
    def __init__(self, table: Any) -> None:
        self._table = table

    def put(self, key: str, value: Any, user_id: str | None, scope: str = CONFIG) -> dict[str, Any]:
        item = {
            "scope": scope,
            "key": key,
            "value": to_dynamo(value),
            "updated_at": timeutil.iso(),
            "updated_by": user_id or "",
        }
        self._table.put_item(Item=item)
        return public(item)

    def get(self, key: str, scope: str = CONFIG) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"scope": scope, "key": key}).get("Item")
        return public(item) if item else None

    def value(self, key: str, default: Any = None, scope: str = CONFIG) -> Any:
        found = self.get(key, scope)
        return default if found is None else found["value"]

    def all(self, scope: str = CONFIG) -> list[dict[str, Any]]:
        pages = aws.query_pages(self._table, KeyConditionExpression=Key("scope").eq(scope))
        return [public(i) for page in pages for i in page.get("Items", [])]


def public(item: dict[str, Any]) -> dict[str, Any]:
    return {
        "key": item["key"],
        "value": from_dynamo(item.get("value")),
        "updated_at": item.get("updated_at"),
        "updated_by": item.get("updated_by") or None,
    }


def settings() -> Settings:
    return Settings(aws.table("settings"))


def update(key: str, value: Any, user_id: str | None) -> dict[str, Any]:
    """Set a setting and record the change (old and new value; secrets masked by their key)."""
    store = settings()
    old = store.get(key)
    saved = store.put(key, value, user_id)
    change = {"old": {key: old["value"] if old else None}, "new": {key: saved["value"]}}
    audit.record("settings.update", resource=("setting", key), details={"key": key, **change})
    return saved
