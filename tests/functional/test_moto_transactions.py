"""The stack's fix of moto's TransactWriteItems (`local.moto_transactions`): a failed transaction
still changes nothing, rolled back item by item instead of by copying whole tables."""

from __future__ import annotations

import pytest

from chalicelib import aws


def test_a_cancelled_transaction_leaves_every_item_as_it_was(aws_mock):
    table = aws.table("settings")
    client = table.meta.client
    table.put_item(Item={"scope": "t", "key": "kept", "value": "before"})
    with pytest.raises(client.exceptions.TransactionCanceledException):
        client.transact_write_items(
            TransactItems=[
                {"Put": {"TableName": table.name, "Item": {"scope": "t", "key": "new", "value": "x"}}},
                {"Put": {"TableName": table.name, "Item": {"scope": "t", "key": "kept", "value": "after"}}},
                {"Delete": {"TableName": table.name, "Key": {"scope": "t", "key": "gone"}}},
                {
                    "Put": {
                        "TableName": table.name,
                        "Item": {"scope": "t", "key": "guarded", "value": "y"},
                        "ConditionExpression": "attribute_exists(#k)",
                        "ExpressionAttributeNames": {"#k": "key"},
                    }
                },
            ]
        )
    assert table.get_item(Key={"scope": "t", "key": "kept"})["Item"]["value"] == "before"
    assert "Item" not in table.get_item(Key={"scope": "t", "key": "new"})
    assert "Item" not in table.get_item(Key={"scope": "t", "key": "guarded"})


def test_a_transaction_that_passes_writes_every_item(aws_mock):
    table = aws.table("settings")
    table.meta.client.transact_write_items(
        TransactItems=[
            {"Put": {"TableName": table.name, "Item": {"scope": "t", "key": f"k{n}", "value": n}}} for n in range(25)
        ]
    )
    assert sorted(int(table.get_item(Key={"scope": "t", "key": f"k{n}"})["Item"]["value"]) for n in range(25)) == list(
        range(25)
    )


def test_moto_no_longer_copies_a_table_to_roll_back(aws_mock, monkeypatch):
    from moto.dynamodb.models.table import Table

    def refuse(self, memo):
        raise AssertionError("a whole table was copied")

    monkeypatch.setattr(Table, "__deepcopy__", refuse, raising=False)
    table = aws.table("settings")
    table.meta.client.transact_write_items(
        TransactItems=[{"Put": {"TableName": table.name, "Item": {"scope": "t", "key": "a"}}}]
    )
    assert table.get_item(Key={"scope": "t", "key": "a"})["Item"]["key"] == "a"
