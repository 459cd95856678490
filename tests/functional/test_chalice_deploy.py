"""`make deploy`, `chalice deploy` and `make teardown` for real (issues 20 and 17), against a moto
server: `infra.deploy` with Chalice's deployer, as subprocesses in clones of the repository.

`make deploy` creates stage dev in one clone and stores Chalice's record in SSM; a second clone
(no record: `.chalice/deployed/` is not in git) is refused `chalice deploy` with one line (the
plain command points to `python -m infra.chalice_cli`, which says why the stage is not ready),
runs `make deploy`, which converges without creating anything, then `chalice deploy`, which keeps
every SQS mapping's `ReportBatchItemFailures` and every function's WebSocket endpoints. Stage prod's
first deploy fails at Chalice's last step; run again it leaves one of everything. `make teardown`
removes prod with no record anywhere and dev with the stored one. Each step asserts the inventory,
found by names.

The clones are copies of what a commit of this working tree holds (tracked files and new ones
.gitignore lets through), so the test checks the files as they will be committed. The moto
server's shims are in tests/functional/moto_server.py. The clones share Chalice's build cache
with the working tree (as `make package` fills it), so the Lambda package is built at most once.
The module takes about 3 minutes (seven deploys and teardowns, ~20 s each on an idle machine).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
import zipfile
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import catalog, config
from infra import deploy, deploy_state, throttling
from infra.chalice_cli import LAMBDA_RUNTIME
from tests.functional import moto_server

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CHALICE = [sys.executable, "-m", "infra.chalice_cli"]  # `chalice ...`, for the Lambda runtime and guarded
REGION = "us-east-1"
WEBHOOK = "https://generator.example.com/articles"
GIT = ["git", "-c", "user.name=Inkwell tests", "-c", "user.email=tests@example.com", "-c", "init.defaultBranch=main"]


def git(cwd: Path, *args: str) -> str:
    return subprocess.run([*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True).stdout


def as_committed(dest: Path) -> None:
    """A repository holding what `git add -A && git commit` of this working tree would."""
    listed = git(ROOT, "ls-files", "-z", "--cached", "--others", "--exclude-standard").split("\0")
    for name in filter(None, listed):
        source = ROOT / name
        if source.is_file():
            (dest / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, dest / name)
    git(dest, "init", "-q")
    git(dest, "add", "-A")
    git(dest, "commit", "-qm", "the working tree")


def share_builds(source: Path, dest: Path) -> None:
    """Copy Chalice's build cache (`.chalice/deployments/`, gitignored: one zip per requirements,
    app files and runtime), as a CI cache would: the Lambda package is built once, not per clone.
    A zip still being written (tests/package builds in the same tree, maybe on another worker) is
    not a zip yet: the clone builds its own."""
    for built in (source / ".chalice" / "deployments").glob("*.zip"):
        target = dest / ".chalice" / "deployments" / built.name
        if not target.exists() and zipfile.is_zipfile(built):
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(built, target)


def _mappings(stage: Stage) -> list[dict[str, Any]]:
    return stage.client("lambda").list_event_source_mappings()["EventSourceMappings"]


def _queue(mapping: dict[str, Any]) -> str:
    return mapping["EventSourceArn"].rsplit(":", 1)[-1].removeprefix("inkwell-dev-")


def _ours(name: str, stage: str) -> bool:
    return name == f"inkwell-{stage}" or name.startswith(f"inkwell-{stage}-")


def inventory(stage: Stage, name: str) -> dict[str, Any]:
    """What exists of stage `name`, found by names (this test's own reading, not infra's)."""
    functions = [f["FunctionName"] for f in stage.client("lambda").list_functions()["Functions"]]
    mappings = [m for m in _mappings(stage) if _ours(m["FunctionArn"].rsplit(":", 1)[-1], name)]
    rules = stage.client("events").list_rules(NamePrefix=f"inkwell-{name}-")["Rules"]
    apigateway = stage.client("apigateway")
    rest = []
    for api in apigateway.get_rest_apis()["items"]:
        uris = [
            apigateway.get_integration(restApiId=api["id"], resourceId=r["id"], httpMethod=m)["uri"]
            for r in apigateway.get_resources(restApiId=api["id"])["items"]
            for m in r.get("resourceMethods", {})
        ]
        if any(u.endswith(f":function:inkwell-{name}/invocations") for u in uris):
            rest.append(api["id"])
    websocket = [a for a in stage.client("apigatewayv2").get_apis()["Items"] if _ours(a["Name"], name)]
    queues = stage.client("sqs").list_queues(QueueNamePrefix=f"inkwell-{name}-").get("QueueUrls", [])
    scheduler = stage.client("scheduler")
    groups = [g["Name"] for g in scheduler.list_schedule_groups()["ScheduleGroups"] if g["Name"] == f"inkwell-{name}"]
    schedules = [s["Name"] for g in groups for s in scheduler.list_schedules(GroupName=g)["Schedules"]]
    roles = [r["RoleName"] for r in stage.client("iam").list_roles()["Roles"] if _ours(r["RoleName"], name)]
    return {
        "functions": sorted(f for f in functions if _ours(f, name)),
        "roles": sorted(r for r in roles if r != f"inkwell-{name}-scheduler"),
        "scheduler_role": f"inkwell-{name}-scheduler" in roles,
        "schedules": sorted(schedules),
        "mappings": Counter(m["EventSourceArn"].rsplit(":", 1)[-1] for m in mappings),
        "rules": sorted(r["Name"] for r in rules),
        "rest_apis": len(rest),
        "websocket_apis": len(websocket),
        "tables": [t for t in stage.client("dynamodb").list_tables()["TableNames"] if _ours(t, name)],
        "queues": queues,
    }


def assert_whole(found: dict[str, Any], name: str) -> None:
    """One of each: the REST API, the WebSocket API, one mapping per queue, an EventBridge Scheduler
    schedule per catalogue schedule (and no EventBridge rule), Scheduler's role."""
    assert found["rest_apis"] == 1 and found["websocket_apis"] == 1, found
    assert found["mappings"] == Counter(f"inkwell-{name}-{q}" for q in catalog.QUEUES), found["mappings"]
    assert found["schedules"] == sorted(catalog.SCHEDULES) and found["scheduler_role"], found
    assert found["rules"] == [], found["rules"]
    assert len(found["functions"]) == len(found["roles"]) >= 17, found


def assert_gone(found: dict[str, Any]) -> None:
    assert found == {
        "functions": [],
        "roles": [],
        "scheduler_role": False,
        "schedules": [],
        "mappings": Counter(),
        "rules": [],
        "rest_apis": 0,
        "websocket_apis": 0,
        "tables": [],
        "queues": [],
    }


def stored_record(stage: Stage, name: str) -> dict[str, Any] | None:
    ssm = stage.client("ssm")
    try:
        value = ssm.get_parameter(Name=deploy_state.parameter(name))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return None
    return deploy_state.decode(value)


class Stage:
    def __init__(self, url: str, first: Path, second: Path) -> None:
        self.url, self.first, self.second = url, first, second
        self.env = {
            "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}",
            "HOME": os.environ.get("HOME", str(first)),
            "AWS_ENDPOINT_URL": url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": REGION,
            "ARTICLE_WEBHOOK_URL": WEBHOOK,
            # no __pycache__ in the clones: Chalice's build cache is keyed on every file under
            # chalicelib/, so the clones' builds match (and the zip carries no stray .pyc)
            "PYTHONDONTWRITEBYTECODE": "1",
        }

    def run(self, command: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
        return subprocess.run(command, cwd=cwd, env=self.env, capture_output=True, text=True, timeout=600)

    def client(self, service: str) -> Any:
        import boto3

        return boto3.client(
            service,
            endpoint_url=self.url,
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def record(self) -> dict[str, Any]:
        return json.loads(self.record_text("dev"))

    def record_text(self, name: str) -> str:
        return (self.second / ".chalice" / "deployed" / f"{name}.json").read_text()


@pytest.fixture(scope="module")
def stage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stage]:
    if shutil.which("git") is None or not (ROOT / ".git").exists():
        pytest.skip("needs git and a git checkout (the test clones the repository)")
    first, second = tmp_path_factory.mktemp("first-clone"), tmp_path_factory.mktemp("second-clone")
    with pytest.MonkeyPatch.context() as monkeypatch, moto_server.moto_server(monkeypatch) as url:
        reset = urllib.request.Request(f"{url}/moto-api/reset", method="POST")
        urllib.request.urlopen(reset).close()  # moto's state is this process's: start empty, leave empty
        yield Stage(url, first, second)
        urllib.request.urlopen(reset).close()


def test_make_deploy_creates_the_stage_and_stores_its_record(stage: Stage) -> None:
    # GIVEN a clone of the repository WHEN `make deploy` creates stage dev
    as_committed(stage.first)
    share_builds(ROOT, stage.first)
    made = stage.run([sys.executable, "-m", "infra.deploy", "dev"], stage.first)
    assert made.returncode == 0, made.stdout + made.stderr
    share_builds(stage.first, ROOT)  # for tests/package and the next run
    assert deploy_state.parameter("dev") in made.stdout
    # THEN it holds one of everything, verified (the run printed no problem)
    assert_whole(inventory(stage, "dev"), "dev")
    assert '"problems": []' in made.stdout
    # AND Chalice's record is stored in SSM, the same as the local one, which git does not track
    assert stored_record(stage, "dev") == json.loads((stage.first / ".chalice" / "deployed" / "dev.json").read_text())
    # (with what an operator watches: alarms, the dashboard, log retention, access logs, tracing)
    functions = stage.client("lambda").list_functions()["Functions"]
    pages = stage.client("cloudwatch").get_paginator("describe_alarms").paginate(AlarmNamePrefix="inkwell-dev-")
    alarms = {a["AlarmName"] for page in pages for a in page["MetricAlarms"]}
    assert len(alarms) == 2 * len(functions) + 2 * len(catalog.QUEUES) + 2
    assert {f"inkwell-dev-{q}-oldest-message-age" for q in catalog.QUEUES} <= alarms
    assert stage.client("cloudwatch").get_dashboard(DashboardName="inkwell-dev")["DashboardBody"]
    groups = {g["logGroupName"]: g for g in stage.client("logs").describe_log_groups()["logGroups"]}
    for fn in functions:
        assert groups[f"/aws/lambda/{fn['FunctionName']}"]["retentionInDays"] == 30
        assert fn["TracingConfig"] == {"Mode": "Active"}, fn["FunctionName"]
    assert "/aws/apigateway/inkwell-dev-websocket-access" in groups
    (rest,) = stage.client("apigateway").get_rest_apis()["items"]
    rest_stage = stage.client("apigateway").get_stage(restApiId=rest["id"], stageName="api")
    assert rest_stage["accessLogSettings"]["destinationArn"].endswith(
        ":log-group:/aws/apigateway/inkwell-dev-rest-access"
    )
    # AND both API stages are throttled as the stage's `throttling` says (Chalice sets none)
    limits = throttling.throttling("dev", stage.first / ".chalice" / "config.json")
    every = rest_stage["methodSettings"]["*/*"]
    assert (every["throttlingRateLimit"], every["throttlingBurstLimit"]) == limits["rest"]
    (ws_api,) = stage.client("apigatewayv2").get_apis()["Items"]
    route = stage.client("apigatewayv2").get_stage(ApiId=ws_api["ApiId"], StageName="api")["DefaultRouteSettings"]
    assert (route["ThrottlingRateLimit"], route["ThrottlingBurstLimit"]) == limits["websocket"]
    changed = sorted(line[3:] for line in git(stage.first, "status", "--porcelain", "-uall").splitlines())
    # (the endpoints, and the policies pinned to the WebSocket API, change; the record is not tracked)
    chalice_dir = stage.first / ".chalice"
    policies = {p.name: json.loads(p.read_text()) for p in sorted(chalice_dir.glob("policy-dev-*.json"))}
    posting = sorted(n for n, doc in policies.items() if "execute-api:ManageConnections" in json.dumps(doc))
    # (every function may post: the middleware's audit flush sends `activity` to the admin room)
    assert posting, policies
    assert changed == [".chalice/config.json", *(f".chalice/{n}" for n in posting)], changed
    # AND each function's role carries its own policy: ManageConnections on the stage's WebSocket API only
    (websocket,) = stage.client("apigatewayv2").get_apis()["Items"]
    pinned = f"arn:aws:execute-api:*:*:{websocket['ApiId']}/api/*/@connections/*"
    for name in posting:
        statements = policies[name]["Statement"]
        assert [s["Resource"] for s in statements if "execute-api:ManageConnections" in s["Action"]] == [[pinned]]
    iam_client = stage.client("iam")
    roles = inventory(stage, "dev")["roles"]
    assert len(roles) == len(policies)
    for role in roles:
        document = iam_client.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        assert document == policies[f"policy-dev-{role.removeprefix('inkwell-dev-')}.json"], role
    assert len({json.dumps(doc) for doc in policies.values()}) > 2, "the roles' policies should differ"
    # AND every SQS trigger has its queue's maximum concurrency from the catalogue
    most = {m["EventSourceArn"].rsplit(":", 1)[-1]: m.get("ScalingConfig") for m in _mappings(stage)}
    assert most == {f"inkwell-dev-{q.name}": {"MaximumConcurrency": q.concurrency} for q in catalog.QUEUES.values()}
    git(stage.first, "add", "-A")
    git(stage.first, "commit", "-qm", "stage dev created")


def test_chalice_deploy_of_a_stage_never_created_here_stops_with_one_line(stage: Stage) -> None:
    # GIVEN a second clone, without any record, and the local stage test
    git(stage.second, "clone", "-q", str(stage.first), ".")
    share_builds(stage.first, stage.second)
    # WHEN a Chalice user deploys with the plain command (refused whatever the stage: app.py sees
    # the `chalice` command, not the stage, so one stage shows it)
    plain = stage.run([str(BIN / "chalice"), "deploy", "--stage", "dev"], stage.second)
    # THEN one line says what to do
    assert plain.returncode != 0 and plain.stdout == ""
    (line,) = plain.stderr.splitlines()
    assert line.startswith("chalice deploy: run it as `python -m infra.chalice_cli deploy")
    for name in ("dev", "prod", "test"):
        # WHEN they deploy a stage through the deploy tooling
        result = stage.run([*CHALICE, "deploy", "--stage", name], stage.second)
        # THEN one line says what to do, and nothing of it was created
        assert result.returncode != 0
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"chalice deploy: stage '{name}' ")
        assert "is local" in line if name == "test" else f"make deploy STAGE={name}" in line
    functions = stage.client("lambda").list_functions()["Functions"]
    assert not [f for f in functions if f["FunctionName"].startswith(("inkwell-prod", "inkwell-test"))]
    assert not [r for r in stage.client("iam").list_roles()["Roles"] if r["RoleName"].startswith("inkwell-prod")]
    assert_whole(inventory(stage, "dev"), "dev")


def test_make_deploy_from_a_second_clone_converges_then_plain_chalice_deploy_works(stage: Stage) -> None:
    # GIVEN the second clone, without .chalice/deployed/ (not in git)
    assert not (stage.second / ".chalice" / "deployed").exists()
    # WHEN `make deploy` runs there
    again = stage.run([sys.executable, "-m", "infra.deploy", "dev"], stage.second)
    # THEN it fetched the record and created nothing
    assert again.returncode == 0, again.stdout + again.stderr
    assert [line for line in again.stdout.splitlines() if line.startswith("Creating")] == [
        "Creating deployment package."
    ]
    assert_whole(inventory(stage, "dev"), "dev")
    assert stage.record() == stored_record(stage, "dev")

    # WHEN a Chalice user updates it from there, with Chalice's deploy (through the deploy tooling)
    moto_server.MAPPING_UPDATES.clear()
    updated = stage.run([*CHALICE, "deploy", "--stage", "dev"], stage.second)

    # THEN it succeeds, and created nothing twice
    assert updated.returncode == 0, updated.stdout + updated.stderr
    lines = (updated.stdout + updated.stderr).splitlines()
    assert [line for line in lines if line.startswith(("Creating", "Subscribing"))] == ["Creating deployment package."]
    assert_whole(inventory(stage, "dev"), "dev")
    # AND every catalogue queue has exactly one mapping, which still reports batch item failures:
    # Chalice's update sent only its own settings, and AWS keeps what an update omits
    mappings = _mappings(stage)
    assert all(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in mappings), mappings
    assert len(moto_server.MAPPING_UPDATES) == len(catalog.QUEUES)
    sent = {"BatchSize", "MaximumBatchingWindowInSeconds", "ScalingConfig"}
    assert all(set(u) == sent for u in moto_server.MAPPING_UPDATES), moto_server.MAPPING_UPDATES
    assert all(m["ScalingConfig"] == {"MaximumConcurrency": catalog.queue(_queue(m)).concurrency} for m in mappings)
    # AND every function kept the WebSocket endpoints (now in .chalice/config.json) and the runtime
    record = stage.record()
    endpoints = deploy.websocket_environment(record, REGION)
    assert set(endpoints) == {config.WS_MANAGEMENT_ENDPOINT, config.WS_URL}
    names = {r["lambda_arn"].rsplit(":", 1)[-1] for r in record["resources"] if r["resource_type"] == "lambda_function"}
    functions = {f["FunctionName"]: f for f in stage.client("lambda").list_functions()["Functions"]}
    assert set(functions) == names and len(names) >= 17
    for name in names:
        variables = functions[name]["Environment"]["Variables"]
        assert {k: variables.get(k) for k in endpoints} == endpoints, name
        assert variables[config.STAGE] == "dev"
        assert variables[config.ARTICLE_WEBHOOK_URL] == WEBHOOK
        assert functions[name]["Runtime"] == LAMBDA_RUNTIME, name


def test_a_failed_deploy_run_again_leaves_one_of_everything(stage: Stage) -> None:
    # GIVEN a first deploy of stage prod that fails at Chalice's last step (the WebSocket API's
    # deployment), when everything else was made, and before Chalice writes its record
    moto_server.FAILING_WEBSOCKET_DEPLOYMENTS[0] = 1
    failed = stage.run([sys.executable, "-m", "infra.deploy", "prod"], stage.second)
    assert failed.returncode != 0
    assert "run `make deploy STAGE=prod` again" in failed.stderr, failed.stderr[-2000:]
    assert moto_server.FAILING_WEBSOCKET_DEPLOYMENTS[0] == 0
    assert stored_record(stage, "prod") is not None  # stored after the failed run too
    # WHEN it is run again
    again = stage.run([sys.executable, "-m", "infra.deploy", "prod"], stage.second)
    # THEN it succeeds, verified, with exactly one REST API, one WebSocket API, one mapping per queue
    assert again.returncode == 0, again.stdout + again.stderr
    assert '"problems": []' in again.stdout
    assert_whole(inventory(stage, "prod"), "prod")
    assert not [line for line in again.stdout.splitlines() if line.startswith("Creating Rest API")]
    # (the WebSocket API the failed run left had no stage, which Chalice's update never creates:
    # it was deleted and made anew)
    assert "without its stage" in again.stdout
    assert all(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in _mappings(stage))
    record = stored_record(stage, "prod")
    assert record is not None and len(record["resources"]) == len(json.loads(stage.record_text("prod"))["resources"])


def test_make_teardown_without_any_record_removes_everything(stage: Stage) -> None:
    # GIVEN stage prod, whose record is lost everywhere (no SSM parameter, no local file)
    stage.client("ssm").delete_parameter(Name=deploy_state.parameter("prod"))
    (stage.second / ".chalice" / "deployed" / "prod.json").unlink()
    # WHEN it is torn down
    removed = stage.run([sys.executable, "-m", "infra.deploy", "prod", "--teardown", "--yes"], stage.second)
    # THEN everything of it is gone, found by name, and stage dev is untouched
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert_gone(inventory(stage, "prod"))
    assert_whole(inventory(stage, "dev"), "dev")


def test_make_teardown_with_the_stored_record_from_another_clone(stage: Stage) -> None:
    # GIVEN stage dev, whose record is stored, torn down from the first clone (whose record is stale)
    removed = stage.run([sys.executable, "-m", "infra.deploy", "dev", "--teardown"], stage.first)
    # THEN everything of it is gone, and so is the stored record
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert_gone(inventory(stage, "dev"))
    assert stored_record(stage, "dev") is None
    assert stage.client("apigateway").get_rest_apis()["items"] == []
    # (but API Gateway's account-wide role for access logs, which every stage of the account shares)
    assert [r["RoleName"] for r in stage.client("iam").list_roles()["Roles"]] == [deploy.APIGATEWAY_LOGS_ROLE]
    dev = json.loads((stage.first / ".chalice" / "config.json").read_text())["stages"]["dev"]
    assert config.WS_URL not in dev["environment_variables"]
    # no WebSocket API any more: ManageConnections is granted on none (never on any API id)
    assert "execute-api" not in (stage.first / ".chalice" / "policy-dev-websocket_message.json").read_text()
