"""The deploy path brings an existing table up to the catalogue's indexes (a release adding one)."""

from __future__ import annotations

import dataclasses

from chalicelib import aws, catalog, config
from infra import provision


def test_a_table_from_an_earlier_release_gains_the_missing_indexes(aws_mock):
    dynamodb = aws.client("dynamodb")
    table = catalog.TABLES["jobs"]
    name = config.get().resource_name("jobs") + "-old"
    older = dataclasses.replace(table, indexes=table.indexes[:2])
    dynamodb.create_table(**provision.table_kwargs(older, name))
    created = provision.add_indexes(dynamodb, table, name)
    have = {i["IndexName"] for i in dynamodb.describe_table(TableName=name)["Table"]["GlobalSecondaryIndexes"]}
    assert have == {index.name for index in table.indexes}
    assert created == [index.name for index in table.indexes[2:]]
    assert provision.add_indexes(dynamodb, table, name) == []  # a second run changes nothing
