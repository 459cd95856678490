"""The steps of `make deploy` / `make teardown` against moto: each idempotent, each leaving the
stage as the template would (PITR, encryption, TTL, redrive, alarms, batch failures)."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib import aws, catalog, config
from infra import chalice_cli, chalice_config, deploy, deploy_state, iam, monitoring, provision, throttling
from infra.app_shape import AppShape, Function
from tests.functional import moto_server


@pytest.fixture
def clients(aws_mock: None) -> dict[str, Any]:
    names = (
        "ssm",
        "dynamodb",
        "sqs",
        "sns",
        "cloudwatch",
        "logs",
        "iam",
        "apigateway",
        "apigatewayv2",
        "lambda",
        "events",
        "kms",
        "s3",
        "scheduler",
    )
    return {name: aws.client(name) for name in names}


def app_shape_of(stage: str) -> AppShape:
    """A small app: the REST handler, one queue consumer, the WebSocket API."""
    s = AppShape(stage, rest=True, websocket=True)
    for name, cfn, fn_name in (
        ("api_handler", "APIHandler", f"inkwell-{stage}"),
        ("jobs_articles", "JobsArticles", f"inkwell-{stage}-jobs_articles"),
    ):
        s.functions[cfn] = Function(name, fn_name, cfn, cfn + "Role", 60)
    return s


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


def test_alarms_and_dashboard_watch_functions_queues_the_api_and_the_generator(clients: dict[str, Any]) -> None:
    # GIVEN an app of two functions; WHEN deploy ensures the alarms twice
    s = app_shape_of("test")
    topic = deploy.ensure_alarms(clients["sns"], clients["cloudwatch"], "test", shape=s)
    deploy.ensure_alarms(clients["sns"], clients["cloudwatch"], "test", shape=s)
    # THEN each is there once, every one notifying the stage's topic
    alarms = {
        a["AlarmName"]: a
        for a in clients["cloudwatch"].describe_alarms(AlarmNamePrefix="inkwell-test-")["MetricAlarms"]
    }
    assert len(alarms) == 2 * len(s.functions) + 2 * len(catalog.QUEUES) + 2
    assert all(a["AlarmActions"] == [topic] for a in alarms.values())
    throttles = alarms["inkwell-test-jobs_articles-throttles"]
    assert throttles["Dimensions"] == [{"Name": "FunctionName", "Value": "inkwell-test-jobs_articles"}]
    age = alarms["inkwell-test-articles-oldest-message-age"]
    assert age["Dimensions"] == [{"Name": "QueueName", "Value": "inkwell-test-articles"}]
    assert age["Threshold"] == monitoring.age_threshold(catalog.queue("articles"))
    assert {"inkwell-test-rest-5xx-rate", "inkwell-test-generator-failure-rate"} <= set(alarms)
    # AND the dashboard charts the queues, jobs, generator, functions and API
    body = json.loads(clients["cloudwatch"].get_dashboard(DashboardName="inkwell-test")["DashboardBody"])
    titles = [w["properties"]["title"] for w in body["widgets"]]
    assert titles == [
        "Queue depth (waiting)",
        "Age of oldest message (s)",
        "Jobs completed / failed",
        "Generator calls by status",
        "Lambda errors",
        "Lambda throttles",
        "REST API 5xx / requests",
    ]
    assert ["AWS/Lambda", "Errors", "FunctionName", "inkwell-test"] in body["widgets"][4]["properties"]["metrics"]


def test_logging_sets_retention_and_access_logs_on_both_stages(
    clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_server.apply_shims(monkeypatch)  # moto lacks apigatewayv2 UpdateStage
    # GIVEN the APIs `chalice deploy` made, with their stage
    rest, v2 = clients["apigateway"], clients["apigatewayv2"]
    rest_id = rest.create_rest_api(name="inkwell")["id"]
    root = rest.get_resources(restApiId=rest_id)["items"][0]["id"]
    rest.put_method(restApiId=rest_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    rest.put_integration(restApiId=rest_id, resourceId=root, httpMethod="GET", type="MOCK")
    rest.create_deployment(restApiId=rest_id, stageName="api")
    ws_id = v2.create_api(Name="ws", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")["ApiId"]
    v2.create_stage(ApiId=ws_id, StageName="api")
    record = {
        "resources": [
            {"resource_type": "rest_api", "rest_api_id": rest_id},
            {"resource_type": "websocket_api", "websocket_api_id": ws_id},
        ]
    }
    s = app_shape_of("prod")
    # WHEN deploy sets up logging, twice
    deploy.ensure_logging(clients, s, record, "us-east-1", "123456789012")
    groups = deploy.ensure_logging(clients, s, record, "us-east-1", "123456789012")
    # THEN every function's log group and both access log groups keep logs a year (prod)
    found = {g["logGroupName"]: g for g in clients["logs"].describe_log_groups()["logGroups"]}
    assert (
        set(found)
        == set(groups)
        == {
            "/aws/lambda/inkwell-prod",
            "/aws/lambda/inkwell-prod-jobs_articles",
            "/aws/apigateway/inkwell-prod-rest-access",
            "/aws/apigateway/inkwell-prod-websocket-access",
        }
    )
    assert {g["retentionInDays"] for g in found.values()} == {365}
    # AND both stages write JSON access logs there, with API Gateway's role for it
    settings = rest.get_stage(restApiId=rest_id, stageName="api")["accessLogSettings"]
    assert settings["destinationArn"].endswith(":log-group:/aws/apigateway/inkwell-prod-rest-access")
    assert set(json.loads(settings["format"])) >= {"requestId", "ip", "route", "status", "latency"}
    ws = v2.get_stage(ApiId=ws_id, StageName="api")["AccessLogSettings"]
    assert ws["DestinationArn"].endswith(":log-group:/aws/apigateway/inkwell-prod-websocket-access")
    assert rest.get_account()["cloudwatchRoleArn"].endswith(f"role/{deploy.APIGATEWAY_LOGS_ROLE}")


def test_deploy_throttles_both_api_stages_as_the_stage_config_says(
    clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    moto_server.apply_shims(monkeypatch)  # moto lacks apigatewayv2 UpdateStage
    # GIVEN the APIs `chalice deploy` made, unthrottled
    rest, v2 = clients["apigateway"], clients["apigatewayv2"]
    rest_id = rest.create_rest_api(name="inkwell")["id"]
    root = rest.get_resources(restApiId=rest_id)["items"][0]["id"]
    rest.put_method(restApiId=rest_id, resourceId=root, httpMethod="GET", authorizationType="NONE")
    rest.put_integration(restApiId=rest_id, resourceId=root, httpMethod="GET", type="MOCK")
    rest.create_deployment(restApiId=rest_id, stageName="api")
    ws_id = v2.create_api(Name="ws", ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action")["ApiId"]
    v2.create_stage(ApiId=ws_id, StageName="api")
    record = {
        "resources": [
            {"resource_type": "rest_api", "rest_api_id": rest_id},
            {"resource_type": "websocket_api", "websocket_api_id": ws_id},
        ]
    }
    assert "*/*" not in rest.get_stage(restApiId=rest_id, stageName="api").get("methodSettings", {})
    limits = throttling.throttling("prod")  # the committed stage's settings
    # WHEN deploy throttles them, twice
    assert deploy.ensure_throttling(clients, record, limits) == ["rest", "websocket"]
    deploy.ensure_throttling(clients, record, limits)
    # THEN every REST method and the WebSocket stage's default route have the stage's limits
    every = rest.get_stage(restApiId=rest_id, stageName="api")["methodSettings"]["*/*"]
    assert (every["throttlingRateLimit"], every["throttlingBurstLimit"]) == limits["rest"]
    route = v2.get_stage(ApiId=ws_id, StageName="api")["DefaultRouteSettings"]
    assert (route["ThrottlingRateLimit"], route["ThrottlingBurstLimit"]) == limits["websocket"]


def test_an_accounts_own_apigateway_logs_role_is_kept(clients: dict[str, Any]) -> None:
    own = "arn:aws:iam::123456789012:role/the-accounts-own"
    patch = [{"op": "replace", "path": "/cloudwatchRoleArn", "value": own}]
    clients["apigateway"].update_account(patchOperations=patch)
    assert deploy.ensure_apigateway_logs_role(clients["iam"], clients["apigateway"]) == own
    assert clients["iam"].list_roles()["Roles"] == []


def test_teardown_removes_the_stages_tables_queues_and_alarms(
    clients: dict[str, Any], monkeypatch: Any, tmp_path: Any
) -> None:
    # GIVEN a provisioned stage that was never `chalice deploy`ed (no deployed record)
    monkeypatch.setattr(deploy.app_shape, "load", app_shape_of)
    monkeypatch.setattr(deploy_state, "record_path", lambda stage, project_dir=None: tmp_path / f"{stage}.json")
    calls: list[list[str]] = []
    deploy.ensure_alarms(clients["sns"], clients["cloudwatch"], "test", shape=app_shape_of("test"))
    # (another stage whose name starts alike keeps its alarms)
    deploy.ensure_alarms(clients["sns"], clients["cloudwatch"], "test-2", shape=app_shape_of("test-2"))
    # WHEN torn down
    removed = deploy.teardown("test", clients, run=lambda cmd, env: calls.append(cmd))
    # THEN its tables, queues and alarms are gone, chalice had nothing to delete, and secrets stay
    assert calls == []
    assert clients["dynamodb"].list_tables()["TableNames"] == []
    assert clients["sqs"].list_queues().get("QueueUrls", []) == []
    left = clients["cloudwatch"].describe_alarms(AlarmNamePrefix="inkwell-test-")["MetricAlarms"]
    assert left and all(a["AlarmName"].startswith("inkwell-test-2-") for a in left)
    assert [d["DashboardName"] for d in clients["cloudwatch"].list_dashboards()["DashboardEntries"]] == [
        "inkwell-test-2"
    ]
    assert f"inkwell-test-{catalog.queue('articles').dlq}" in removed


def _project(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """A project tree with the module table and a `prod` stage, which infra.iam writes into."""
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "iam_modules.json").write_text(iam.modules_file().read_text())
    monkeypatch.setattr(iam, "ROOT", tmp_path)
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({"stages": {"prod": {}}}))


def test_deploy_writes_the_committed_policy_files_not_account_scoped_ones(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a project with the stage's old single policy file and none of its functions' files
    _project(tmp_path, monkeypatch)
    (tmp_path / ".chalice" / "policy-prod.json").write_text("{}\n")
    # WHEN the deploy path writes them twice THEN they are the committed form, written once
    changed = iam.write_policy_files("prod")
    assert tmp_path / ".chalice" / "policy-prod-jobs_articles.json" in changed
    assert (
        tmp_path / ".chalice" / "policy-prod.json" in changed
        and not (tmp_path / ".chalice" / "policy-prod.json").exists()
    )
    assert iam.write_policy_files("prod") == []
    text = (tmp_path / ".chalice" / "policy-prod-api_handler.json").read_text()
    assert text == iam.policy_texts("prod")[tmp_path / ".chalice" / "policy-prod-api_handler.json"]
    assert ":*:*:table/inkwell-prod-users" in text and "${" not in text
    # AND config.json points each function at its own file
    functions = json.loads((tmp_path / ".chalice" / "config.json").read_text())["stages"]["prod"]["lambda_functions"]
    assert functions["jobs_articles"] == {"iam_policy_file": "policy-prod-jobs_articles.json"}
    assert sorted(functions) == sorted(iam.functions())


# --- local stages are never deployed (they run on development secrets) -------------------------


@pytest.mark.parametrize("stage", sorted(config.LOCAL_STAGES))
def test_make_deploy_refuses_a_local_stage_before_any_aws_call(
    stage: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setattr(deploy, "_clients", lambda region: pytest.fail("no AWS client for a local stage"))
    with pytest.raises(SystemExit) as refused:
        deploy.main([stage])
    (line,) = str(refused.value).splitlines()
    assert f"stage {stage!r} is local" in line and "development secrets" in line


@pytest.mark.parametrize("stage", sorted(config.LOCAL_STAGES))
def test_make_package_refuses_a_local_stage(stage: str, monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from infra import package

    monkeypatch.setattr(package.subprocess, "run", lambda *a, **k: pytest.fail("no chalice package"))
    with pytest.raises(SystemExit) as refused:
        package.main([stage, "--out", str(tmp_path / "out")])
    assert f"stage {stage!r} is local" in str(refused.value)
    assert not (tmp_path / "out").exists()


WEBHOOK_REFUSAL = "stage 'dev' has no ARTICLE_WEBHOOK_URL"


def test_make_deploy_refuses_a_stage_without_article_webhook_before_any_aws_call(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # GIVEN stage dev, whose committed config has no ARTICLE_WEBHOOK_URL, and none in the environment
    monkeypatch.setattr(deploy, "_clients", lambda region: pytest.fail("no AWS client without a webhook"))
    # WHEN deployed THEN it exits non-zero, saying what to set and where
    with pytest.raises(SystemExit) as refused:
        deploy.main(["dev"])
    assert str(refused.value).startswith(WEBHOOK_REFUSAL)
    assert "stages.dev.environment_variables" in str(refused.value)
    # AND a value that is no URL is refused, naming it
    monkeypatch.setenv(config.ARTICLE_WEBHOOK_URL, "generator.example.com/articles")
    with pytest.raises(SystemExit) as refused:
        deploy.main(["dev"])
    assert "'generator.example.com/articles' is not an http(s) URL" in str(refused.value)


def test_make_package_refuses_a_stage_without_article_webhook(monkeypatch: pytest.MonkeyPatch, tmp_path: Any) -> None:
    from infra import package

    monkeypatch.setattr(package.subprocess, "run", lambda *a, **k: pytest.fail("no chalice package"))
    with pytest.raises(SystemExit) as refused:
        package.main(["prod", "--out", str(tmp_path / "out")])
    assert str(refused.value).startswith("stage 'prod' has no ARTICLE_WEBHOOK_URL")
    assert not (tmp_path / "out").exists()


def test_article_webhook_comes_from_the_environment_or_the_stages_config(tmp_path: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"stages": {"dev": {"environment_variables": {}}}}))
    assert (chalice_config.stage_error("dev", {}, path) or "").startswith(WEBHOOK_REFUSAL)
    assert chalice_config.stage_error("dev", {config.ARTICLE_WEBHOOK_URL: "https://gen.example.com/a"}, path) is None
    # `make deploy` writes a given one into the stage's config (a plain `chalice deploy` reads only that)
    assert chalice_config.set_variable("dev", config.ARTICLE_WEBHOOK_URL, "https://gen.example.com/a", path)
    assert chalice_config.stage_error("dev", {}, path) is None


# --- what a plain `chalice deploy` keeps, and when it refuses -----------------------------------


def test_websocket_endpoints_are_kept_in_the_stages_config_and_removed_at_teardown(tmp_path: Any) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"stages": {"dev": {"environment_variables": {config.STAGE: "dev"}}}}))
    record = {"resources": [{"resource_type": "websocket_api", "websocket_api_id": "abc123", "name": "websocket_api"}]}
    endpoints = deploy.websocket_environment(record, "eu-west-1")
    # WHEN make deploy records them (twice) THEN the stage's environment has them, once
    assert chalice_config.set_websocket_endpoints("dev", endpoints, path) is True
    assert chalice_config.set_websocket_endpoints("dev", endpoints, path) is False
    env = json.loads(path.read_text())["stages"]["dev"]["environment_variables"]
    assert env == {config.STAGE: "dev", **endpoints}
    # WHEN the stage is torn down THEN they are gone, and a stage config.json lacks is not added
    assert chalice_config.set_websocket_endpoints("dev", {}, path) is True
    assert chalice_config.set_websocket_endpoints("other", {}, path) is False
    assert json.loads(path.read_text()) == {"stages": {"dev": {"environment_variables": {config.STAGE: "dev"}}}}


def _record(project: Any, stage: str, queues: list[str]) -> None:
    resources: list[dict[str, Any]] = [{"name": "api_handler", "resource_type": "lambda_function"}]
    resources += [{"name": f"jobs_{q}-sqs-event-source", "resource_type": "sqs_event", "queue": q} for q in queues]
    resources.append({"name": "websocket_api", "resource_type": "websocket_api", "websocket_api_id": "abc123"})
    (project / ".chalice" / "deployed").mkdir(parents=True, exist_ok=True)
    (project / ".chalice" / "deployed" / f"{stage}.json").write_text(json.dumps({"resources": resources}))


def test_plain_chalice_deploy_refuses_a_stage_make_deploy_did_not_create(tmp_path: Any) -> None:
    every_queue = [f"inkwell-dev-{q}" for q in catalog.QUEUES]
    (tmp_path / ".chalice").mkdir()
    webhook = {config.ARTICLE_WEBHOOK_URL: "https://gen.example.com/a"}
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({"stages": {"dev": {}}}))
    assert (chalice_cli.deploy_refusal("dev", tmp_path) or "").startswith(WEBHOOK_REFUSAL)
    (tmp_path / ".chalice" / "config.json").write_text(
        json.dumps({"stages": {"dev": {"environment_variables": webhook}}})
    )
    # a local stage; no record; a record Chalice left after `chalice delete`
    assert "is local" in (chalice_cli.deploy_refusal("test", tmp_path) or "")
    never = chalice_cli.deploy_refusal("dev", tmp_path)
    assert never is not None and "run `make deploy STAGE=dev` first" in never
    _record(tmp_path, "dev", [])
    (tmp_path / ".chalice" / "deployed" / "dev.json").write_text(json.dumps({"resources": []}))
    assert chalice_cli.deploy_refusal("dev", tmp_path) == never
    # a record without a catalogue queue's trigger (a queue added since): Chalice would create a
    # mapping without ReportBatchItemFailures, to a queue that does not exist yet
    _record(tmp_path, "dev", every_queue[1:])
    missing = chalice_cli.deploy_refusal("dev", tmp_path)
    first = next(iter(catalog.QUEUES))
    assert missing is not None and f"no trigger yet for queue {first}: run `make deploy STAGE=dev`" in missing
    # a record, but config.json without the WebSocket endpoints (Chalice would drop them)
    _record(tmp_path, "dev", every_queue)
    no_endpoints = chalice_cli.deploy_refusal("dev", tmp_path)
    assert no_endpoints is not None and "lacks its WebSocket endpoints" in no_endpoints
    # a stage make deploy created
    record = json.loads((tmp_path / ".chalice" / "deployed" / "dev.json").read_text())
    chalice_config.set_websocket_endpoints(
        "dev", deploy.websocket_environment(record, "us-east-1"), tmp_path / ".chalice" / "config.json"
    )
    assert chalice_cli.deploy_refusal("dev", tmp_path) is None


def test_the_audit_key_policy_names_the_roles_and_the_export_bucket_its_account_and_region(
    clients: dict[str, Any], tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN the stage's policy files as the deploy path writes them, and its roles' names
    _project(tmp_path, monkeypatch)
    iam.write_policy_files("prod")
    shape = AppShape("prod")
    for name in ("api_handler", "jobs_cleanup", "jobs_cleanup_high", "websocket_disconnect"):
        shape.functions[name] = Function(
            name, f"inkwell-prod-{name}", name, name + "Role", 60, role_name=f"inkwell-prod-{name}"
        )
    # WHEN deploy makes the key and, once the roles exist, puts its policy (twice: idempotent)
    deploy.ensure_audit_key(clients["kms"], "prod")
    deploy.set_audit_key_policy(clients["kms"], "prod", shape, "123456789012")
    document = deploy.set_audit_key_policy(clients["kms"], "prod", shape, "123456789012")
    # THEN the key's policy lets the account administer it, the sealer's role sign, the REST
    # function's role read the public key, and no other role use it
    key_id = clients["kms"].describe_key(KeyId=iam.audit_key_alias("prod"))["KeyMetadata"]["KeyId"]
    stored = json.loads(clients["kms"].get_key_policy(KeyId=key_id, PolicyName="default")["Policy"])
    assert stored == document
    by_sid = {st["Sid"]: st for st in document["Statement"]}
    role = "arn:aws:iam::123456789012:role/inkwell-prod-"
    assert by_sid["SealerSigns"]["Principal"] == {"AWS": [role + "jobs_cleanup"]}
    assert by_sid["ReadersGetThePublicKey"]["Principal"] == {"AWS": [role + "api_handler"]}
    assert by_sid["AccountAdministers"]["Principal"] == {"AWS": "arn:aws:iam::123456789012:root"}
    # AND the export bucket's name carries the account and region; stale uploads are dropped
    name = iam.export_bucket_name("prod", "123456789012", "us-east-1")
    assert provision.create_export_bucket(clients["s3"], config.get(), name) == name
    rules = clients["s3"].get_bucket_lifecycle_configuration(Bucket=name)["Rules"]
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
