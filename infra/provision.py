"""Create (or update) the catalogue's tables and queues through boto3.

Used by the test fixtures, the local stack (against moto) and `make deploy` (against AWS), so
all three hold exactly what `chalicelib.catalog` declares. Every step is idempotent: a second run
changes nothing, and a run after the catalogue changed brings existing resources up to it (TTL,
redrive, visibility). `hardened=True` (the deploy path) adds what only a real stage needs:
point-in-time recovery, KMS encryption of tables and SSE of queues, matching the template that
`infra.template` generates for `chalice package`.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterable
from typing import Any

from chalicelib import catalog, config


def table_kwargs(table: catalog.Table, physical_name: str, hardened: bool = False) -> dict[str, Any]:
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
    if hardened:
        kwargs["SSESpecification"] = {"Enabled": True, "SSEType": "KMS"}
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


def queue_attributes(queue: catalog.Queue, dlq_arn: str | None, hardened: bool = False) -> dict[str, str]:
    attributes = {
        "VisibilityTimeout": str(queue.visibility_timeout),
        "MessageRetentionPeriod": str(4 * 24 * 3600),
        "ReceiveMessageWaitTimeSeconds": "20",
    }
    if hardened:
        attributes["SqsManagedSseEnabled"] = "true"
    if dlq_arn:
        attributes["RedrivePolicy"] = json.dumps({"deadLetterTargetArn": dlq_arn, "maxReceiveCount": queue.attempts})
    return attributes


def create_tables(dynamodb: Any, settings: config.Settings | None = None, hardened: bool = False) -> None:
    settings = settings or config.get()
    existing = set(_table_names(dynamodb))
    for table in catalog.TABLES.values():
        name = settings.resource_name(table.name)
        if name not in existing:
            dynamodb.create_table(**table_kwargs(table, name, hardened))
            dynamodb.get_waiter("table_exists").wait(TableName=name, WaiterConfig={"Delay": 1})
        elif hardened:  # a deployed stage's table from an earlier release
            add_indexes(dynamodb, table, name)
        if table.ttl:
            ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            if ttl.get("TimeToLiveStatus") not in ("ENABLED", "ENABLING") or ttl.get("AttributeName") != table.ttl:
                dynamodb.update_time_to_live(
                    TableName=name, TimeToLiveSpecification={"Enabled": True, "AttributeName": table.ttl}
                )
        if hardened:
            _harden_table(dynamodb, name)


def add_indexes(dynamodb: Any, table: catalog.Table, name: str, wait: float = 1800.0) -> list[str]:
    """Create the catalogue's indexes an existing table lacks (a later release added them), one
    UpdateTable each, as DynamoDB asks, waiting for each to be ACTIVE (backfilled) before the
    next; returns the names created."""
    import time

    wanted = table_kwargs(table, name).get("GlobalSecondaryIndexes", [])
    definitions = {d["AttributeName"]: d for d in table_kwargs(table, name)["AttributeDefinitions"]}
    created = []
    for index in wanted:
        have = dynamodb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])
        if index["IndexName"] in {i["IndexName"] for i in have}:
            continue
        keys = [k["AttributeName"] for k in index["KeySchema"]]
        dynamodb.update_table(
            TableName=name,
            AttributeDefinitions=[definitions[k] for k in keys],
            GlobalSecondaryIndexUpdates=[{"Create": index}],
        )
        deadline = time.monotonic() + wait
        while True:
            now = dynamodb.describe_table(TableName=name)["Table"].get("GlobalSecondaryIndexes", [])
            status = {i["IndexName"]: i.get("IndexStatus", "ACTIVE") for i in now}
            if status.get(index["IndexName"]) == "ACTIVE":
                break
            if time.monotonic() > deadline:
                raise TimeoutError(f"index {index['IndexName']} of {name} is not ACTIVE yet; run the deploy again")
            time.sleep(5)
        created.append(index["IndexName"])
    return created


def _table_names(dynamodb: Any) -> list[str]:
    names: list[str] = []
    for page in dynamodb.get_paginator("list_tables").paginate():
        names += page["TableNames"]
    return names


def _harden_table(dynamodb: Any, name: str) -> None:
    """Point-in-time recovery and KMS encryption on an existing table (no-ops when already on)."""
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    pitr = backups.get("PointInTimeRecoveryDescription", {}).get("PointInTimeRecoveryStatus")
    if pitr != "ENABLED":
        dynamodb.update_continuous_backups(
            TableName=name, PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True}
        )
    sse = dynamodb.describe_table(TableName=name)["Table"].get("SSEDescription", {})
    if sse.get("Status") not in ("ENABLED", "ENABLING", "UPDATING"):
        dynamodb.update_table(TableName=name, SSESpecification={"Enabled": True, "SSEType": "KMS"})


def create_queues(
    sqs: Any,
    settings: config.Settings | None = None,
    queues: Iterable[catalog.Queue] | None = None,
    hardened: bool = False,
) -> dict[str, str]:
    """Every queue (the catalogue's by default) and its dead-letter queue; returns logical name -> URL."""
    settings = settings or config.get()
    urls: dict[str, str] = {}
    for queue in catalog.QUEUES.values() if queues is None else queues:
        dlq_attributes = {"MessageRetentionPeriod": str(14 * 24 * 3600)}
        if hardened:
            dlq_attributes["SqsManagedSseEnabled"] = "true"
        # A FIFO queue (and its dead-letter queue) is one from its creation.
        fifo = {"Attributes": {"FifoQueue": "true"}} if queue.fifo else {}
        dlq_url = sqs.create_queue(QueueName=settings.resource_name(queue.dlq), **fifo)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=dlq_url, Attributes=dlq_attributes)
        dlq_arn = sqs.get_queue_attributes(QueueUrl=dlq_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        name = settings.resource_name(queue.name)
        # Attributes are set after creation: CreateQueue refuses an existing queue whose attributes differ.
        url = sqs.create_queue(QueueName=name, **fifo)["QueueUrl"]
        sqs.set_queue_attributes(QueueUrl=url, Attributes=queue_attributes(queue, dlq_arn, hardened))
        urls[queue.name], urls[queue.dlq] = url, dlq_url
    return urls


def create_schedules(
    scheduler: Any, function_arn: Callable[[str], str], role_arn: str, stage: str | None = None
) -> list[str]:
    """The stage's EventBridge Scheduler group and a schedule per catalogue schedule (its target
    the handler's Lambda, `function_arn(handler name)`, empty for a handler the app lacks: no
    schedule); returns the names it created or fixed.

    Converging without undoing run-time changes: a missing schedule is created as the catalogue
    says; an existing one keeps its expression, zone and state (an admin may have changed them,
    `PUT /api/schedules/{name}`) and gets its target, role, input and flexible window put right."""
    from chalicelib.schedules import remote, slots

    group = remote.group_name(stage or config.get().stage)
    try:
        scheduler.get_schedule_group(Name=group)
    except scheduler.exceptions.ResourceNotFoundException:
        scheduler.create_schedule_group(Name=group)
    changed: list[str] = []
    for schedule in catalog.SCHEDULES.values():
        arn = function_arn(slots.handler_name(schedule.name))
        if not arn:
            continue  # an app without this schedule's handler (a test app of the local stack)
        wanted = remote.definition(schedule, arn, role_arn, group)
        try:
            found = scheduler.get_schedule(Name=schedule.name, GroupName=group)
        except scheduler.exceptions.ResourceNotFoundException:
            scheduler.create_schedule(**wanted)
            changed.append(schedule.name)
            continue
        kept = {k: found[k] for k in ("ScheduleExpression", "ScheduleExpressionTimezone", "State") if found.get(k)}
        target = {k: found.get("Target", {}).get(k) for k in wanted["Target"]}
        if target != wanted["Target"] or found.get("FlexibleTimeWindow") != wanted["FlexibleTimeWindow"]:
            scheduler.update_schedule(**{**wanted, **kept})
            changed.append(schedule.name)
    return changed


def provision(
    dynamodb: Any, sqs: Any, settings: config.Settings | None = None, hardened: bool = False
) -> dict[str, str]:
    create_tables(dynamodb, settings, hardened)
    return create_queues(sqs, settings, hardened=hardened)


# An export's multipart upload a job left behind (its Lambda killed before it could abort)
ABORT_INCOMPLETE_UPLOADS = {
    "ID": "abort-incomplete-uploads",
    "Status": "Enabled",
    "Filter": {"Prefix": ""},
    "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
}


def create_export_bucket(s3: Any, settings: config.Settings | None = None, name: str = "") -> str:
    """The audit export bucket (`name`, else the local stage's `inkwell-<stage>-audit-exports`):
    private (every public access blocked), encrypted, versioned, an upload left incomplete
    removed after a day. Idempotent; returns its name."""
    settings = settings or config.get()
    name = name or config.physical_name(settings.stage, "audit-exports")
    region = s3.meta.region_name
    kwargs: dict[str, Any] = {"Bucket": name}
    if region and region != "us-east-1":
        kwargs["CreateBucketConfiguration"] = {"LocationConstraint": region}
    with contextlib.suppress(s3.exceptions.BucketAlreadyOwnedByYou):
        s3.create_bucket(**kwargs)
    blocked = dict.fromkeys(("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True)
    s3.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=blocked)
    s3.put_bucket_versioning(Bucket=name, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_lifecycle_configuration(Bucket=name, LifecycleConfiguration={"Rules": [ABORT_INCOMPLETE_UPLOADS]})
    s3.put_bucket_encryption(
        Bucket=name,
        ServerSideEncryptionConfiguration={
            "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
    )
    return name


def delete(dynamodb: Any, sqs: Any, settings: config.Settings) -> list[str]:
    """Remove a stage's tables and queues (teardown); returns what it removed."""
    removed: list[str] = []
    existing = set(_table_names(dynamodb))
    for table in catalog.TABLES.values():
        name = settings.resource_name(table.name)
        if name in existing:
            dynamodb.delete_table(TableName=name)
            removed.append(name)
    for queue in catalog.QUEUES.values():
        for logical in (queue.name, queue.dlq):
            try:
                url = sqs.get_queue_url(QueueName=settings.resource_name(logical))["QueueUrl"]
            except sqs.exceptions.QueueDoesNotExist:
                continue
            sqs.delete_queue(QueueUrl=url)
            removed.append(settings.resource_name(logical))
    return removed
