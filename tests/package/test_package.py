"""`make package STAGE=prod` for real: `chalice package --merge-template` with the generated
overlay, offline and without credentials, then cfn-lint and the issue's checklist on its output.

The packaging runs once for the module (about 5 s with Chalice's wheel cache, up to a minute on
a fresh machine, which downloads the Lambda wheels from PyPI).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from chalicelib import catalog
from infra import template
from infra.chalice_cli import LAMBDA_RUNTIME

ROOT = Path(__file__).resolve().parents[2]
CFN_LINT = Path(sys.executable).parent / "cfn-lint"
WEBHOOK = "https://generator.example.com/articles"


@pytest.fixture(scope="module")
def packaged(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("dist") / "prod"
    config_before = (ROOT / ".chalice" / "config.json").read_text()
    # no credentials, no Inkwell variables from the caller: only a region, as in CI
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "INKWELL_"))}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    env["ARTICLE_WEBHOOK_URL"] = WEBHOOK  # a non-local stage is refused without one
    result = subprocess.run(
        [sys.executable, "-m", "infra.package", "prod", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert (ROOT / ".chalice" / "config.json").read_text() == config_before, (
        ".chalice/config.json was out of step with the catalogue: `make package` rewrote it, commit the change"
    )
    return out


@pytest.fixture(scope="module")
def sam(packaged: Path) -> dict[str, Any]:
    return json.loads((packaged / "sam.json").read_text())


def resources_of(sam: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in sam["Resources"].items() if v["Type"] == kind}


def test_template_passes_cfn_lint_without_errors_or_warnings(packaged: Path) -> None:
    result = subprocess.run([str(CFN_LINT), str(packaged / "sam.json")], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr


def test_deployment_zip_holds_the_app_and_lambda_builds_of_its_dependencies(packaged: Path) -> None:
    names = zipfile.ZipFile(packaged / "deployment.zip").namelist()
    assert "app.py" in names and "chalicelib/catalog.py" in names
    version = LAMBDA_RUNTIME.removeprefix("python").replace(".", "")
    assert any(n.startswith("pydantic_core/") and f"cpython-{version}-x86_64-linux-gnu.so" in n for n in names)
    assert not any(n.startswith(("tests/", "local/", "infra/")) for n in names)


def test_template_has_nothing_missing_from_the_checklist(sam: dict[str, Any]) -> None:
    assert template.problems(sam) == []


def test_every_function_runs_on_a_supported_runtime(sam: dict[str, Any]) -> None:
    functions = resources_of(sam, "AWS::Serverless::Function")
    assert {f["Properties"]["Runtime"] for f in functions.values()} == {LAMBDA_RUNTIME}


def test_every_function_is_told_the_article_webhook_given_at_package_time(sam: dict[str, Any]) -> None:
    functions = resources_of(sam, "AWS::Serverless::Function")
    assert {f["Properties"]["Environment"]["Variables"].get("ARTICLE_WEBHOOK_URL") for f in functions.values()} == {
        WEBHOOK
    }


def test_every_queue_has_its_dead_letter_queue_and_redrive(sam: dict[str, Any]) -> None:
    queues = resources_of(sam, "AWS::SQS::Queue")
    assert len(queues) == 2 * len(catalog.QUEUES)
    for queue in catalog.QUEUES.values():
        props = queues[template.queue_id(queue.name)]["Properties"]
        assert props["QueueName"] == f"inkwell-prod-{queue.name}"
        assert props["RedrivePolicy"]["maxReceiveCount"] == queue.attempts
        assert props["RedrivePolicy"]["deadLetterTargetArn"] == {"Fn::GetAtt": [template.dlq_id(queue.name), "Arn"]}


def test_every_table_is_there_with_its_ttl(sam: dict[str, Any]) -> None:
    tables = resources_of(sam, "AWS::DynamoDB::Table")
    assert {t["Properties"]["TableName"] for t in tables.values()} == {f"inkwell-prod-{n}" for n in catalog.TABLES}
    for table in catalog.TABLES.values():
        if table.ttl:
            ttl = tables[template.table_id(table.name)]["Properties"]["TimeToLiveSpecification"]
            assert ttl == {"AttributeName": table.ttl, "Enabled": True}


def test_every_queue_is_consumed_with_batch_item_failures_and_enough_visibility(sam: dict[str, Any]) -> None:
    events = template.sqs_events(sam)
    consumed = Counter(json.dumps(props["Queue"]) for _, _, props in events)
    # every catalogue queue has exactly one consumer, reading this stage's queue
    assert consumed == Counter(json.dumps(template.queue_arn_ref(q)) for q in catalog.QUEUES)
    functions = resources_of(sam, "AWS::Serverless::Function")
    queues = sam["Resources"]
    for fn_id, _, props in events:
        assert props["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
        queue_id = props["Queue"]["Fn::Sub"][2:-5]
        timeout = functions[fn_id]["Properties"]["Timeout"]
        assert queues[queue_id]["Properties"]["VisibilityTimeout"] >= 6 * timeout


def test_schedules_are_the_catalogues_as_scheduler_schedules_in_their_zones(sam: dict[str, Any]) -> None:
    assert len(catalog.SCHEDULES) >= 7
    expected = sorted(" ".join(s.expression.split()) for s in catalog.SCHEDULES.values())
    assert template.schedule_expressions(sam) == expected
    schedules = resources_of(sam, "AWS::Scheduler::Schedule")
    assert not resources_of(sam, "AWS::Events::Rule")
    assert {r["Properties"]["Name"]: r["Properties"]["ScheduleExpressionTimezone"] for r in schedules.values()} == {
        s.name: s.timezone for s in catalog.SCHEDULES.values()
    }
    assert all(r["Properties"]["FlexibleTimeWindow"] == {"Mode": "OFF"} for r in schedules.values())


def test_websocket_api_routes_and_urls(sam: dict[str, Any]) -> None:
    api = sam["Resources"]["WebsocketAPI"]
    assert api["Type"] == "AWS::ApiGatewayV2::Api" and api["Properties"]["ProtocolType"] == "WEBSOCKET"
    routes = {r["Properties"]["RouteKey"] for r in resources_of(sam, "AWS::ApiGatewayV2::Route").values()}
    assert routes == {"$connect", "$disconnect", "$default"}
    assert sam["Outputs"]["WebSocketUrl"]["Value"] == template.api_url("wss", "WebsocketAPI")
    assert sam["Outputs"]["RestApiUrl"]["Value"] == template.api_url("https", "RestAPI")


def test_every_role_has_only_its_functions_policy(sam: dict[str, Any]) -> None:
    roles = resources_of(sam, "AWS::IAM::Role")
    # API Gateway's role for writing access logs is no function's
    (managed,) = roles.pop("ApiGatewayCloudWatchRole")["Properties"]["ManagedPolicyArns"]
    assert managed["Fn::Sub"].endswith(":policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs")
    # EventBridge Scheduler's: it invokes the schedules' functions and sends delayed jobs, nothing else
    (scheduler,) = roles.pop("SchedulerRole")["Properties"]["Policies"]
    actions = {a for st in scheduler["PolicyDocument"]["Statement"] for a in st["Action"]}
    assert actions == {"lambda:InvokeFunction", "sqs:SendMessage"}
    functions = resources_of(sam, "AWS::Serverless::Function")
    assert len(roles) == len(functions)
    for role in roles.values():
        (policy,) = role["Properties"]["Policies"]
        assert policy["PolicyName"] == "InkwellLeastPrivilege"
        assert "ManagedPolicyArns" not in role["Properties"]
        text = json.dumps(policy)
        assert "inkwell-dev-" not in text and "inkwell-local-" not in text
    # each role its function's own: they differ, and only SQS consumers may receive from a queue
    documents = {json.dumps(role["Properties"]["Policies"]) for role in roles.values()}
    assert len(documents) > 2
    consumers = {
        name
        for name, fn in functions.items()
        if fn["Properties"].get("Events", {})
        and any(e.get("Type") == "SQS" for e in fn["Properties"]["Events"].values())
    }
    receiving = {name for name, role in roles.items() if "sqs:ReceiveMessage" in json.dumps(role)}
    assert consumers and len(receiving) < len(roles)


CHECKOV = ROOT / ".venv-checkov" / "bin" / "checkov"  # its own venv (Makefile: checkov pins boto3)
CHECKOV_SKIPS = ROOT / "infra" / "checkov-skips.yaml"


def checkov_skips() -> dict[str, str]:
    import yaml

    skips = yaml.safe_load(CHECKOV_SKIPS.read_text())
    assert isinstance(skips, dict) and skips, f"{CHECKOV_SKIPS} holds no skips"
    return skips


def test_every_skipped_checkov_check_has_its_reason() -> None:
    for check, reason in checkov_skips().items():
        assert check.startswith("CKV_"), check
        assert isinstance(reason, str) and len(reason.split()) >= 8, f"{check} needs its reason"


def test_template_passes_checkov_but_for_the_reasoned_skips(packaged: Path) -> None:
    assert CHECKOV.exists(), f"{CHECKOV} is missing: `make checkov` (or `make test`) installs it"
    skips = checkov_skips()
    result = subprocess.run(
        [str(CHECKOV), "--file", str(packaged / "sam.json"), "--framework", "cloudformation", "--skip-download"]
        + ["--output", "json", "--quiet", "--compact"],  # --quiet: only the failed checks
        capture_output=True,
        text=True,
        timeout=300,
    )
    report = json.loads(result.stdout)
    failed = {(f["check_id"], f["resource"]) for f in report["results"].get("failed_checks", [])}
    unexpected = sorted((check, resource) for check, resource in failed if check not in skips)
    assert unexpected == [], f"fix these, or skip the check with its reason in {CHECKOV_SKIPS.name}: {unexpected}"
    # a skip that no longer fails anything is dead weight: remove it from the file
    assert {check for check, _ in failed} == set(skips)
    assert report["summary"]["passed"] >= 200


def test_template_has_tracing_access_logs_retention_dashboard_and_alarms(sam: dict[str, Any]) -> None:
    functions = resources_of(sam, "AWS::Serverless::Function")
    assert {f["Properties"]["Tracing"] for f in functions.values()} == {"Active"}
    groups = resources_of(sam, "AWS::Logs::LogGroup")
    # one per function, one per API stage's access logs, each with a retention period
    assert len(groups) == len(functions) + 2
    assert {g["Properties"]["RetentionInDays"] for g in groups.values()} == {365}
    rest = sam["Resources"]["RestAPI"]["Properties"]
    assert rest["TracingEnabled"] is True
    assert rest["AccessLogSetting"]["DestinationArn"] == {"Fn::GetAtt": ["RestAccessLogGroup", "Arn"]}
    ws = sam["Resources"]["WebsocketAPIStage"]["Properties"]["AccessLogSettings"]
    for fmt in (rest["AccessLogSetting"]["Format"], ws["Format"]):
        assert set(json.loads(fmt)) >= {"requestId", "ip", "route", "status", "latency"}
    alarms = resources_of(sam, "AWS::CloudWatch::Alarm")
    # errors and throttles per function, one per dead-letter queue and per queue's age, REST 5xx, generator
    assert len(alarms) == 2 * len(functions) + 2 * len(catalog.QUEUES) + 2
    assert all(a["Properties"]["AlarmActions"] == [{"Ref": template.ALARM_TOPIC}] for a in alarms.values())
    (dashboard,) = resources_of(sam, "AWS::CloudWatch::Dashboard").values()
    assert "JobCompleted" in dashboard["Properties"]["DashboardBody"]["Fn::Sub"]


def test_both_api_stages_are_throttled_as_the_stage_says(sam: dict[str, Any]) -> None:
    from infra import throttling

    limits = throttling.throttling("prod")
    (everything,) = sam["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    assert (everything["ResourcePath"], everything["HttpMethod"]) == ("/*", "*")
    assert (everything["ThrottlingRateLimit"], everything["ThrottlingBurstLimit"]) == limits["rest"]
    route = sam["Resources"]["WebsocketAPIStage"]["Properties"]["DefaultRouteSettings"]
    assert (route["ThrottlingRateLimit"], route["ThrottlingBurstLimit"]) == limits["websocket"]
