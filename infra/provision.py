"""Create (or update) the catalogue's tables and queues through boto3.

Used by the test fixtures, the local stack (against moto) and `make deploy` (against AWS), so
all three hold exactly what `chalicelib.catalog` declares.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Any

from chalicelib import catalog, config


def table_kwargs(table: catalog.Table, physical_name: str) -> dict[str, Any]:
    """CreateTable arguments for a catalogue table (on-demand billing)."""
    key_schema = [{"AttributeName": table.pk, "KeyType": "HASH"}]
    if table.sk:
        key_schema.append({"AttributeName": table.sk, "KeyType": "RANGE"})
    kwargs: dict[str, Any] = {
        "TableName": physical_name,
        "KeySchema": key_schema,
        "AttributeDefinitions": [
            {"AttributeName": a, "AttributeType": table.attr_type(a)} for a in table.key_attributes()
        ],
        "BillingMode": "PAY_PER_REQUEST",
    }
    if table.indexes:
        kwargs["GlobalSecondaryIndexes"] = [
            {
                "IndexName": index.name,
                "KeySchema": [{"AttributeName": index.pk, "KeyType": "HASH"}]
                + ([{"AttributeName": index.sk, "KeyType": "RANGE"}] if index.sk else []),
                "Projection": {"ProjectionType": "ALL"},
            }
            for index in table.indexes
        ]
    return kwargs


def queue_attributes(queue: catalog.Queue, dlq_arn: str | None) -> dict[str, str]:
    attributes = {
        "VisibilityTimeout": str(queue.visibility_timeout),
        "MessageRetentionPeriod": str(4 * 24 * 3600),
        "ReceiveMessageWaitTimeSeconds": "20",
    }
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.attempts})
    return attributes


def create_tables(dynamodb: Any, settings: config.Settings | None = None) -> None:
    settings = settings or config.get()
    existing = set(dynamodb.list_tables()["TableNames"])  # fine: a handful of tables
    for table in catalog.TABLES.values():
        name = settings.resource_name(table.name)
        if name not in existing:
            dynamodb.create_table(**table_kwargs(table, name))
            dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
        if table.ttl:
            dynamodb.update_time_to_live(
                TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl}
            )


def create_queues(
    sqs: Any, settings: config.Settings | None = None, queues: Iterable[catalog.Queue] | None = None
) -> dict[str, str]:
    """Every queue (the catalogue's by default) and its dead-letter queue; returns logical name -> URL."""
    settings = settings or config.get()
    urls: dict[str, str] = {}
    for queue in catalog.QUEUES.values() if queues is None else queues:
        dlq_url = sqs.create_queue(
            QueueName=settings.resource_name(queue.dlq),
            Attributes={"MessageRetentionPeriod": str(14 * 24 * 3600)},
        )["QueueUrl"]
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        name = settings.resource_name(queue.name)
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=queue_attributes(queue, dlq_arn))
        urls[queue.name], urls[queue.dlq] = url, dlq_url
    return urls


def provision(dynamodb: Any, sqs: Any, settings: config.Settings | None = None) -> dict[str, str]:
    create_tables(dynamodb, settings)
    return create_queues(sqs, settings)
