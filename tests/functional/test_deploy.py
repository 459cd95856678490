"""The steps of `make deploy` / `make teardown` against moto: each idempotent, each leaving the
stage as the template would (PITR, encryption, TTL, redrive, alarms, batch failures)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib import aws, catalog, config
from infra import deploy, iam, provision


@pytest.fixture
def clients(aws_mock: None) -> dict[str, Any]:
    return {name: aws.client(name) for name in ("ssm", "dynamodb", "sqs", "sns", "cloudwatch")}


def test_secrets_are_generated_once_and_never_overwritten(clients: dict[str, Any]) -> None:
    # GIVEN one secret already set by an operator
    ssm = clients["ssm"]
    ssm.put_parameter(Name="/inkwell/prod/JWT_SECRET", Value="operator-chosen", Type="SecureString")
    # WHEN deploy ensures the secrets twice
    first = deploy.ensure_secrets(ssm, "prod")
    second = deploy.ensure_secrets(ssm, "prod")
    # THEN the missing ones were created once, as SecureStrings, and the operator's is untouched
    assert first == ["/inkwell/prod/WEBHOOK_SECRET", "/inkwell/prod/AUDIT_DIGEST_KEY"]
    assert second == []
    jwt = ssm.get_parameter(Name="/inkwell/prod/JWT_SECRET", WithDecryption=True)["Parameter"]
    assert jwt["Value"] == "operator-chosen"
    webhook = ssm.get_parameter(Name="/inkwell/prod/WEBHOOK_SECRET", WithDecryption=True)["Parameter"]
    assert webhook["Type"] == "SecureString" and len(webhook["Value"]) >= 48


def test_hardened_provisioning_creates_tables_with_pitr_encryption_and_ttl_idempotently(
    clients: dict[str, Any],
) -> None:
    dynamodb, sqs = clients["dynamodb"], clients["sqs"]
    settings = dataclasses.replace(config.get(), stage="prod")
    # GIVEN a new stage WHEN the deploy path provisions it twice
    provision.provision(dynamodb, sqs, settings, hardened=True)
    provision.provision(dynamodb, sqs, settings, hardened=True)
    # THEN every table has point-in-time recovery and KMS encryption, and TTL where declared
    for table in catalog.TABLES.values():
        name = settings.resource_name(table.name)
        backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
        assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"
        assert dynamodb.describe_table(TableName=name)["Table"]["SSEDescription"]["Status"] == "ENABLED"
        if table.ttl:
            ttl = dynamodb.describe_time_to_live(TableName=name)["TimeToLiveDescription"]
            assert ttl == {"TimeToLiveStatus": "ENABLED", "AttributeName": table.ttl}
    # AND every queue is encrypted and redrives to its dead-letter queue after its attempts
    for queue in catalog.QUEUES.values():
        url = sqs.get_queue_url(QueueName=settings.resource_name(queue.name))["QueueUrl"]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["SqsManagedSseEnabled"] == "true"
        assert json.loads(attributes["RedrivePolicy"])["maxReceiveCount"] == queue.attempts
        assert int(attributes["VisibilityTimeout"]) >= 6 * queue.function_timeout


def test_hardening_an_existing_stage_turns_on_pitr_and_encryption(
    clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the plain tables of an existing stage (moto does not apply UpdateTable's SSE: spy on it)
    dynamodb = clients["dynamodb"]
    updates: list[dict[str, Any]] = []
    monkeypatch.setattr(dynamodb, "update_table", lambda **kw: updates.append(kw))
    # WHEN the deploy path provisions it
    provision.create_tables(dynamodb, hardened=True)
    # THEN each table was asked for KMS encryption and has point-in-time recovery
    assert sorted(u["TableName"] for u in updates) == sorted(config.get().resource_name(t) for t in catalog.TABLES)
    assert all(u["SSESpecification"] == {"Enabled": True, "SSEType": "KMS"} for u in updates)
    name = config.get().resource_name("users")
    backups = dynamodb.describe_continuous_backups(TableName=name)["ContinuousBackupsDescription"]
    assert backups["PointInTimeRecoveryDescription"]["PointInTimeRecoveryStatus"] == "ENABLED"


def test_provisioning_brings_an_existing_queue_up_to_the_catalogue(clients: dict[str, Any]) -> None:
    # GIVEN a queue whose visibility was changed by hand
    sqs = clients["sqs"]
    url = aws.queue_url("articles")
    sqs.set_queue_attributes(QueueUrl=url, Attributes={"VisibilityTimeout": "30"})
    # WHEN provisioned again THEN it is back to the catalogue's value
    provision.provision(clients["dynamodb"], sqs)
    visibility = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["VisibilityTimeout"])["Attributes"]
    assert int(visibility["VisibilityTimeout"]) == catalog.queue("articles").visibility_timeout


def test_alarms_watch_every_dead_letter_queue(clients: dict[str, Any]) -> None:
    topic = deploy.ensure_alarms(clients["sns"], clients["cloudwatch"], "test")
    assert deploy.ensure_alarms(clients["sns"], clients["cloudwatch"], "test") == topic
    alarms = clients["cloudwatch"].describe_alarms(AlarmNamePrefix="inkwell-test-")["MetricAlarms"]
    assert sorted(a["Dimensions"][0]["Value"] for a in alarms) == sorted(
        f"inkwell-test-{q.dlq}" for q in catalog.QUEUES.values()
    )
    assert all(a["AlarmActions"] == [topic] and a["Threshold"] == 1 for a in alarms)


class FakeLambda:
    """The few Lambda calls the deploy script makes, over an in-memory state."""

    def __init__(self, mappings: dict[str, list[dict[str, Any]]], env: dict[str, dict[str, str]]) -> None:
        self.mappings, self.env, self.updates = mappings, env, []

    def get_paginator(self, name: str) -> Any:
        assert name == "list_event_source_mappings"
        fake = self

        class Pages:
            def paginate(self, FunctionName: str) -> list[dict[str, Any]]:
                return [{"EventSourceMappings": fake.mappings.get(FunctionName, [])}]

        return Pages()

    def update_event_source_mapping(self, UUID: str, FunctionResponseTypes: list[str]) -> None:
        self.updates.append(UUID)
        for mappings in self.mappings.values():
            for m in mappings:
                if m["UUID"] == UUID:
                    m["FunctionResponseTypes"] = FunctionResponseTypes

    def get_function_configuration(self, FunctionName: str) -> dict[str, Any]:
        return {"Environment": {"Variables": dict(self.env[FunctionName])}}

    def get_waiter(self, name: str) -> Any:
        class Waiter:
            def wait(self, **_: Any) -> None:
                pass

        return Waiter()

    def update_function_configuration(self, FunctionName: str, Environment: dict[str, Any]) -> None:
        self.env[FunctionName] = Environment["Variables"]


def test_batch_failures_are_set_on_every_sqs_mapping_once() -> None:
    # GIVEN what `chalice deploy` leaves: SQS mappings without FunctionResponseTypes
    fake = FakeLambda(
        {
            "inkwell-prod-jobs_articles": [
                {"UUID": "a", "EventSourceArn": "arn:aws:sqs:us-east-1:1:inkwell-prod-articles"},
            ],
            "inkwell-prod-jobs_emails": [
                {"UUID": "e", "EventSourceArn": "arn:aws:sqs:us-east-1:1:inkwell-prod-emails"},
                {"UUID": "k", "EventSourceArn": "arn:aws:kinesis:us-east-1:1:stream/other"},
            ],
        },
        {},
    )
    names = ["inkwell-prod-jobs_articles", "inkwell-prod-jobs_emails", "inkwell-prod-api_handler"]
    # WHEN the post-deploy step runs twice
    assert deploy.report_batch_failures(fake, names) == ["a", "e"]
    assert deploy.report_batch_failures(fake, names) == []
    # THEN only the SQS mappings changed, once each
    assert fake.updates == ["a", "e"]


def test_websocket_endpoint_reaches_every_function_without_dropping_its_variables() -> None:
    record = {"resources": [{"resource_type": "websocket_api", "websocket_api_id": "abc123", "name": "websocket_api"}]}
    extra = deploy.websocket_environment(record, "eu-west-1")
    assert extra[config.WS_MANAGEMENT_ENDPOINT] == "https://abc123.execute-api.eu-west-1.amazonaws.com/api"
    assert extra[config.WS_URL] == "wss://abc123.execute-api.eu-west-1.amazonaws.com/api"
    fake = FakeLambda({}, {"f1": {"INKWELL_STAGE": "prod"}, "f2": {"INKWELL_STAGE": "prod", **extra}})
    assert deploy.set_environment(fake, ["f1", "f2"], extra) == ["f1"]
    assert fake.env["f1"] == {"INKWELL_STAGE": "prod", **extra}
    assert deploy.websocket_environment({"resources": []}, "eu-west-1") == {}


def test_teardown_removes_the_stages_tables_queues_and_alarms(clients: dict[str, Any], monkeypatch: Any) -> None:
    # GIVEN a provisioned stage that was never `chalice deploy`ed (no deployed record)
    monkeypatch.setattr(deploy.app_shape, "stage_environment", lambda stage: {config.STAGE: stage})
    calls: list[list[str]] = []
    deploy.ensure_alarms(clients["sns"], clients["cloudwatch"], "test")
    # WHEN torn down
    removed = deploy.teardown("test", clients, run=lambda cmd, env: calls.append(cmd))
    # THEN its tables, queues and alarms are gone, chalice had nothing to delete, and secrets stay
    assert calls == []
    assert clients["dynamodb"].list_tables()["TableNames"] == []
    assert clients["sqs"].list_queues().get("QueueUrls", []) == []
    assert clients["cloudwatch"].describe_alarms(AlarmNamePrefix="inkwell-test-")["MetricAlarms"] == []
    assert f"inkwell-test-{catalog.queue('articles').dlq}" in removed


def test_deploy_policy_file_is_scoped_to_the_account_and_region(tmp_path: Any) -> None:
    path = tmp_path / "policy-prod.json"
    iam.write_policy_file(str(path), iam.Scope("prod", region="eu-west-1", account="123456789012"))
    text = path.read_text()
    assert ":eu-west-1:123456789012:table/inkwell-prod-users" in text
    assert "${" not in text
