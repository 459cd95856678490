"""The deploy's state outside one disk, adoption of what a failed run left, the verification after
a deploy and a teardown that stops rather than leave part of a stage (infra/deploy_state.py),
against moto in-process; tests/functional/test_chalice_deploy.py runs the real flow."""

from __future__ import annotations

import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest

from chalicelib import aws, catalog, config
from infra import app_shape, deploy, deploy_state
from infra import schedules as scheduler_deploy
from infra.app_shape import AppShape, Function, ScheduleSource, SqsSource

STAGE = "dev"
REGION = "us-east-1"


@pytest.fixture
def clients(aws_mock: None) -> dict[str, Any]:
    names = ("ssm", "lambda", "iam", "events", "apigateway", "apigatewayv2", "sqs", "dynamodb", "scheduler")
    return {name: aws.client(name) for name in names}


def shape() -> AppShape:
    s = AppShape(STAGE, rest=True, websocket=True, websocket_name=f"inkwell-{STAGE}-websocket-api")
    for name, cfn, fn_name in (
        ("api_handler", "APIHandler", f"inkwell-{STAGE}"),
        ("jobs_articles", "JobsArticles", f"inkwell-{STAGE}-jobs_articles"),
        ("daily_analytics", "DailyAnalytics", f"inkwell-{STAGE}-daily_analytics"),
    ):
        s.functions[cfn] = Function(name, fn_name, cfn, cfn + "Role", 60, f"{name}_role", f"inkwell-{STAGE}-{name}")
    s.sqs.append(
        SqsSource(
            "JobsArticles",
            "JobsArticlesSqsEventSource",
            f"inkwell-{STAGE}-articles",
            10,
            "jobs_articles-sqs-event-source",
        )
    )
    s.schedules.append(
        ScheduleSource("DailyAnalytics", "DailyAnalyticsSchedule", "cron(0 2 * * ? *)", "daily-analytics")
    )
    return s


def _zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as z:
        z.writestr("app.py", "def handler(event, context):\n    return None\n")
    return buffer.getvalue()


def make_stage(clients: dict[str, Any], s: AppShape, env: dict[str, str], mappings: int = 1) -> dict[str, str]:
    """What `chalice deploy` makes for the shape (as a failed run may leave it); returns function ARNs."""
    trust = {"Version": "2012-10-17", "Statement": []}
    arns = {}
    for fn in s.functions.values():
        role = clients["iam"].create_role(RoleName=fn.role_name, AssumeRolePolicyDocument=json.dumps(trust))
        arns[fn.name] = clients["lambda"].create_function(
            FunctionName=fn.function_name,
            Runtime="python3.12",
            Role=role["Role"]["Arn"],
            Handler="app.handler",
            Code={"ZipFile": _zip()},
            Environment={"Variables": env},
        )["FunctionArn"]
    url = clients["sqs"].create_queue(QueueName=f"inkwell-{STAGE}-articles")["QueueUrl"]
    queue_arn = clients["sqs"].get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    for _ in range(mappings):
        clients["lambda"].create_event_source_mapping(
            EventSourceArn=queue_arn,
            FunctionName=f"inkwell-{STAGE}-jobs_articles",
            FunctionResponseTypes=["ReportBatchItemFailures"],
            ScalingConfig={"MaximumConcurrency": catalog.queue("articles").concurrency},
        )
    # the rule an older version made for the schedule (`@app.schedule`), and the Scheduler's schedules
    rule = f"inkwell-{STAGE}-daily_analytics-event"
    clients["events"].put_rule(Name=rule, ScheduleExpression="cron(0 2 * * ? *)")
    clients["events"].put_targets(Rule=rule, Targets=[{"Id": "1", "Arn": arns["daily_analytics"]}])
    scheduler_deploy.deploy(clients, STAGE, "123456789012", REGION)
    rest = clients["apigateway"].create_rest_api(name="inkwell")["id"]
    root = clients["apigateway"].get_resources(restApiId=rest)["items"][0]["id"]
    clients["apigateway"].put_method(restApiId=rest, resourceId=root, httpMethod="GET", authorizationType="NONE")
    uri = f"arn:aws:apigateway:{REGION}:lambda:path/2015-03-31/functions/{arns['api_handler']}/invocations"
    clients["apigateway"].put_integration(
        restApiId=rest, resourceId=root, httpMethod="GET", type="AWS_PROXY", integrationHttpMethod="POST", uri=uri
    )
    websocket = clients["apigatewayv2"].create_api(
        Name=s.websocket_name, ProtocolType="WEBSOCKET", RouteSelectionExpression="$request.body.action"
    )["ApiId"]
    clients["apigatewayv2"].create_stage(ApiId=websocket, StageName="api")
    return {"rest": rest, "websocket": websocket, **arns}


def test_the_record_is_stored_compressed_and_fetched_into_a_clone_without_one(
    clients: dict[str, Any], tmp_path: Path
) -> None:
    record = {"resources": [{"name": f"fn{i}", "resource_type": "lambda_function"} for i in range(200)]}
    # GIVEN a clone without a record, and nothing stored: an empty record
    assert deploy_state.fetch(clients["ssm"], STAGE, tmp_path) == {"resources": []}
    # WHEN one machine stores its record (far over a standard parameter's 4 KB as JSON)
    deploy_state.write(STAGE, record, tmp_path)
    assert len(json.dumps(record)) > 4096
    deploy_state.store(clients["ssm"], STAGE, tmp_path)
    # THEN another clone fetches it into its own .chalice/deployed/
    other = tmp_path / "other"
    assert deploy_state.fetch(clients["ssm"], STAGE, other) == record
    assert json.loads((other / ".chalice" / "deployed" / f"{STAGE}.json").read_text()) == record
    # AND forgetting it removes both
    deploy_state.forget(clients["ssm"], STAGE, other)
    assert deploy_state.fetch(clients["ssm"], STAGE, tmp_path / "third") == {"resources": []}
    assert not (other / ".chalice" / "deployed" / f"{STAGE}.json").exists()


def test_adoption_writes_what_exists_into_the_record_and_deletes_duplicates(clients: dict[str, Any]) -> None:
    # GIVEN what a failed run left (no record), with a second mapping of one queue (an older run's)
    s = shape()
    made = make_stage(clients, s, {}, mappings=2)
    # (and a WebSocket API of a run that failed before creating its stage)
    clients["apigatewayv2"].create_api(Name=s.websocket_name, ProtocolType="WEBSOCKET", RouteSelectionExpression="x")
    # WHEN adopted into an empty record
    record, deleted = deploy_state.adopt(clients, s, {"resources": []}, REGION)
    # THEN every resource Chalice would record is there, by Chalice's resource names
    by_name = {r["name"]: r for r in record["resources"]}
    assert set(by_name) == {
        "api_handler_role",
        "jobs_articles_role",
        "daily_analytics_role",
        "api_handler",
        "jobs_articles",
        "daily_analytics",
        "jobs_articles-sqs-event-source",
        "daily_analytics-event",
        "rest_api",
        "websocket_api",
    }
    assert by_name["rest_api"]["rest_api_id"] == made["rest"]
    assert by_name["websocket_api"]["websocket_api_id"] == made["websocket"]
    assert by_name["jobs_articles"]["lambda_arn"] == made["jobs_articles"]
    assert by_name["daily_analytics-event"]["rule_name"] == f"inkwell-{STAGE}-daily_analytics-event"
    # AND the duplicate mapping and the API without a stage are gone, the recorded ones kept
    (mapping,) = clients["lambda"].list_event_source_mappings()["EventSourceMappings"]
    assert by_name["jobs_articles-sqs-event-source"]["event_uuid"] == mapping["UUID"]
    assert [a["ApiId"] for a in clients["apigatewayv2"].get_apis()["Items"]] == [made["websocket"]]
    assert len(deleted) == 2 and "a duplicate" in deleted[0] and "without its stage" in deleted[1]
    # AND a record's entries for other resources are kept, found values win over stale ones
    stale = {"name": "rest_api", "resource_type": "rest_api", "rest_api_id": "gone"}
    other = {"name": "old_function", "resource_type": "lambda_function", "lambda_arn": "arn"}
    again, _ = deploy_state.adopt(clients, s, {"resources": [other, stale]}, REGION)
    assert again["resources"][:2] == [other, by_name["rest_api"]]


def test_verification_names_every_problem(clients: dict[str, Any]) -> None:
    s = shape()
    env = {config.STAGE: STAGE, config.ARTICLE_WEBHOOK_URL: "https://gen.example.com/a"}
    made = make_stage(clients, s, env)
    record, _ = deploy_state.adopt(clients, s, {"resources": []}, REGION)
    endpoints = deploy.websocket_environment(record, REGION)
    for fn in s.functions.values():
        clients["lambda"].update_function_configuration(
            FunctionName=fn.function_name, Environment={"Variables": {**env, **endpoints}}
        )
    # GIVEN a whole stage (chalice deploy deleted the old rule: it is in the record) THEN no problem
    clients["events"].remove_targets(Rule=f"inkwell-{STAGE}-daily_analytics-event", Ids=["1"])
    clients["events"].delete_rule(Name=f"inkwell-{STAGE}-daily_analytics-event")
    assert deploy_state.problems(clients, s, record, {**env, **endpoints}) == []
    # WHEN its mapping loses batch failures and concurrency, its schedule and a function's webhook go
    (mapping,) = clients["lambda"].list_event_source_mappings()["EventSourceMappings"]
    clients["lambda"].update_event_source_mapping(
        UUID=mapping["UUID"], FunctionResponseTypes=[], ScalingConfig={"MaximumConcurrency": 1000}
    )
    clients["scheduler"].delete_schedule(Name="daily-analytics", GroupName=f"inkwell-{STAGE}")
    clients["lambda"].update_function_configuration(
        FunctionName=f"inkwell-{STAGE}", Environment={"Variables": {config.STAGE: STAGE, **endpoints}}
    )
    # THEN each is named
    found = deploy_state.problems(clients, s, record, {**env, **endpoints})
    assert found == [
        f"the mapping inkwell-{STAGE}-jobs_articles <- inkwell-{STAGE}-articles does not report batch item failures",
        f"the mapping inkwell-{STAGE}-jobs_articles <- inkwell-{STAGE}-articles has maximum concurrency 1000, "
        f"not {catalog.queue('articles').concurrency}",
        "schedule daily-analytics is missing",
        f"function inkwell-{STAGE} lacks ARTICLE_WEBHOOK_URL in its environment",
    ]
    # AND a queue without a mapping, a second WebSocket API, endpoints not set are named too
    clients["lambda"].delete_event_source_mapping(UUID=mapping["UUID"])
    second = clients["apigatewayv2"].create_api(
        Name=s.websocket_name, ProtocolType="WEBSOCKET", RouteSelectionExpression="x"
    )
    clients["apigatewayv2"].create_stage(ApiId=second["ApiId"], StageName="api")
    found = deploy_state.problems(clients, s, record, env)
    assert f"inkwell-{STAGE}-jobs_articles has 0 event source mappings on inkwell-{STAGE}-articles, not 1" in found
    assert f"2 WebSocket APIs named {s.websocket_name}, not the one recorded" in found
    assert made["websocket"] in json.dumps(record)


def test_make_deploy_exits_non_zero_naming_what_is_wrong(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.setenv(config.ARTICLE_WEBHOOK_URL, "https://gen.example.com/a")
    monkeypatch.setattr(deploy, "_clients", lambda region: {})
    monkeypatch.setattr(deploy, "deploy", lambda *a, **k: {"problems": ["schedule rule x is missing"]})
    with pytest.raises(SystemExit) as failed:
        deploy.main([STAGE])
    assert str(failed.value) == "make deploy: stage 'dev' is not right:\n  schedule rule x is missing"


def test_teardown_without_a_record_finds_everything_by_name(
    clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # GIVEN a stage and no record anywhere
    s = shape()
    make_stage(clients, s, {})
    monkeypatch.setattr(app_shape, "load", lambda stage: s)
    monkeypatch.setattr(deploy_state.app_shape, "ROOT", tmp_path)
    monkeypatch.setattr(deploy_state, "record_path", lambda stage, project_dir=tmp_path: tmp_path / f"{stage}.json")
    deleted: list[dict[str, Any]] = []

    def chalice_delete(command: list[str], env: dict[str, str]) -> None:
        deleted.append(json.loads((tmp_path / f"{STAGE}.json").read_text()))

    # WHEN torn down, and `chalice delete` leaves everything in place (it failed)
    with pytest.raises(SystemExit) as refused:
        deploy.teardown(STAGE, {**clients, "sns": None}, run=chalice_delete)
    # THEN Chalice was given every resource found by name
    assert len(deleted[0]["resources"]) == 10
    # AND the teardown stopped, naming what is left, before any table or queue was deleted
    message = str(refused.value)
    assert message.startswith(f"teardown of '{STAGE}' stopped: still there after `chalice delete`: function inkwell-")
    assert "WebSocket API" in message and "rule inkwell-dev-daily_analytics-event" in message
    assert clients["sqs"].get_queue_url(QueueName=f"inkwell-{STAGE}-articles")
    assert (
        deploy_state.decode(clients["ssm"].get_parameter(Name=deploy_state.parameter(STAGE))["Parameter"]["Value"])
        == deleted[0]
    )


def test_verification_names_a_role_without_its_functions_policy(
    clients: dict[str, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    s = shape()
    make_stage(clients, s, {})
    record, _ = deploy_state.adopt(clients, s, {"resources": []}, REGION)

    def allow(action: str) -> dict[str, Any]:
        return {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": action, "Resource": "*"}]}

    # GIVEN one policy per function's role, each its own
    for fn in s.functions.values():
        (tmp_path / f"{fn.name}.json").write_text(json.dumps(allow(f"sqs:SendMessage{fn.name}")))
    monkeypatch.setattr(deploy.iam, "policy_file", lambda stage, function: tmp_path / f"{function}.json")
    policies = deploy.policy_documents(s)
    assert sorted(policies) == [
        f"inkwell-{STAGE}-{name}" for name in ("api_handler", "daily_analytics", "jobs_articles")
    ]
    # GIVEN roles without them THEN each is named
    found = deploy_state.problems(clients, s, record, {}, policies)
    assert [p for p in found if p.startswith("role ")] == [
        f"role {role} does not carry its function's policy (.chalice/policy-{STAGE}-<function>.json)"
        for role in sorted(policies)
    ]
    # WHEN `make deploy` puts each function's policy on its role (twice: the second changes none)
    assert deploy.apply_policy_files(clients["iam"], policies) == sorted(policies)
    assert deploy.apply_policy_files(clients["iam"], policies) == []
    # THEN no role is named
    assert not [p for p in deploy_state.problems(clients, s, record, {}, policies) if p.startswith("role ")]
    # AND a role given another function's policy is
    swapped = dict(policies, **{f"inkwell-{STAGE}-api_handler": policies[f"inkwell-{STAGE}-jobs_articles"]})
    assert [p for p in deploy_state.problems(clients, s, record, {}, swapped) if p.startswith("role ")] == [
        f"role inkwell-{STAGE}-api_handler does not carry its function's policy (.chalice/policy-{STAGE}-<function>.json)"
    ]
