"""DynamoDB transactions in moto at the cost of what they touch (a moto gap).

moto 5.2's `transact_write_items` deep-copies each table a transaction names, once per item, so
that it can roll back a failed one: a 25-item transaction on a table of n items copies 25 n
items, and a stack (or a test) slows down as its data grows. `install()` snapshots only the
items the transaction names instead and, when it fails, puts those back as they were: the same
all-or-nothing outcome, at the cost of the transaction's own items. Installed in the stack's
moto process and in-process (tests, benchmarks); idempotent.
"""

from __future__ import annotations

import copy
import types
from typing import Any

_installed: dict[str, Any] = {}


def _deepcopy(obj: Any, memo: Any = None) -> Any:
    from moto.dynamodb.models.table import Table

    return obj if isinstance(obj, Table) else copy.deepcopy(obj, memo)


def install() -> None:
    """Make moto's TransactWriteItems roll back item by item, not by copying tables."""
    from moto.dynamodb import models

    if "transact" in _installed:
        return
    original = models.DynamoDBBackend.transact_write_items
    _installed["transact"] = original
    models.copy = types.SimpleNamespace(deepcopy=_deepcopy)  # type: ignore[attr-defined]

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        before = []
        for entry in transact_items:
            op = next(iter(entry.values()), {})
            table = self.tables.get(op.get("TableName")) if isinstance(op, dict) else None
            if table is None:
                continue
            source = op.get("Key") or op.get("Item") or {}
            names = [table.hash_key_attr] + ([table.range_key_attr] if table.range_key_attr else [])
            if not all(name in source for name in names):
                continue  # moto refuses it itself
            key = {name: source[name] for name in names}
            current = self.get_item(table.name, key)
            before.append((table.name, key, copy.deepcopy(current.to_json()["Attributes"]) if current else None))
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, attrs in reversed(before):
                if attrs is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attrs)
            raise

    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
