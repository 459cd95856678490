"""`chalice deploy` as Chalice users type it (issue 20), for real against a moto server.

`make deploy` (the code it runs, `python -m infra.deploy dev`) creates the stage in one clone of
the repository, whose changes are committed as the run asks; then, in a second clone, the plain
`chalice` command: `chalice deploy --stage dev` updates the stage and leaves every SQS mapping
with `ReportBatchItemFailures` and every function with the WebSocket endpoints; `chalice deploy`
of a stage never created stops with one line; `chalice delete` and `make teardown` remove it.

The clones are copies of what a commit of this working tree holds (tracked files and new ones
.gitignore lets through), so the test checks the files as they will be committed. The moto
server's shims are in tests/functional/moto_server.py. The clones share Chalice's build cache
with the working tree (as `make package` fills it), so the Lambda package is built at most once:
about 25 s, up to a minute when it downloads the Lambda wheels from PyPI.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import urllib.request
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from chalicelib import catalog, config
from infra import deploy
from infra.chalice_cli import LAMBDA_RUNTIME
from tests.functional import moto_server

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
REGION = "us-east-1"
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
    app files and runtime), as a CI cache would: the Lambda package is built once, not per clone."""
    for built in (source / ".chalice" / "deployments").glob("*.zip"):
        target = dest / ".chalice" / "deployments" / built.name
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(built, target)


def _mappings(stage: Stage) -> list[dict[str, Any]]:
    return stage.client("lambda").list_event_source_mappings()["EventSourceMappings"]


def _queue(mapping: dict[str, Any]) -> str:
    return mapping["EventSourceArn"].rsplit(":", 1)[-1].removeprefix("inkwell-dev-")


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
            "ARTICLE_WEBHOOK_URL": "https://generator.example.com/articles",
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
        return json.loads((self.second / ".chalice" / "deployed" / "dev.json").read_text())


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


def test_make_deploy_then_plain_chalice_deploy_from_a_second_clone(stage: Stage) -> None:
    # GIVEN a stage created once by `make deploy` in one clone, which commits what the run wrote
    as_committed(stage.first)
    share_builds(ROOT, stage.first)
    made = stage.run([sys.executable, "-m", "infra.deploy", "dev"], stage.first)
    assert made.returncode == 0, made.stdout + made.stderr
    share_builds(stage.first, ROOT)  # for tests/package and the next run
    assert "Commit .chalice/" in made.stdout
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
    changed = sorted(line[3:] for line in git(stage.first, "status", "--porcelain", "-uall").splitlines())
    # (the committed policy file is the one the deploy uses: it did not change)
    assert changed == [".chalice/config.json", ".chalice/deployed/dev.json"], changed
    # AND every SQS trigger has its queue's maximum concurrency from the catalogue
    most = {m["EventSourceArn"].rsplit(":", 1)[-1]: m.get("ScalingConfig") for m in _mappings(stage)}
    assert most == {f"inkwell-dev-{q.name}": {"MaximumConcurrency": q.concurrency} for q in catalog.QUEUES.values()}
    git(stage.first, "add", "-A")
    git(stage.first, "commit", "-qm", "stage dev created")
    git(stage.second, "clone", "-q", str(stage.first), ".")
    share_builds(stage.first, stage.second)

    # WHEN a Chalice user updates it from the second clone, as Chalice users type it
    moto_server.MAPPING_UPDATES.clear()
    updated = stage.run([str(BIN / "chalice"), "deploy", "--stage", "dev"], stage.second)

    # THEN it succeeds, and created nothing twice
    assert updated.returncode == 0, updated.stdout + updated.stderr
    lines = (updated.stdout + updated.stderr).splitlines()
    assert [line for line in lines if line.startswith(("Creating", "Subscribing"))] == ["Creating deployment package."]
    assert len(stage.client("apigateway").get_rest_apis()["items"]) == 1
    assert len(stage.client("apigatewayv2").get_apis()["Items"]) == 1
    # AND every catalogue queue has exactly one mapping, which still reports batch item failures:
    # Chalice's update sent only its own settings, and AWS keeps what an update omits
    mappings = _mappings(stage)
    queues = Counter(m["EventSourceArn"].rsplit(":", 1)[-1] for m in mappings)
    assert queues == Counter(f"inkwell-dev-{q}" for q in catalog.QUEUES)
    assert all(m.get("FunctionResponseTypes") == ["ReportBatchItemFailures"] for m in mappings), mappings
    assert len(moto_server.MAPPING_UPDATES) == len(catalog.QUEUES)
    sent = {"BatchSize", "MaximumBatchingWindowInSeconds", "ScalingConfig"}
    assert all(set(u) == sent for u in moto_server.MAPPING_UPDATES), moto_server.MAPPING_UPDATES
    assert sorted(u["ScalingConfig"]["MaximumConcurrency"] for u in moto_server.MAPPING_UPDATES) == sorted(
        q.concurrency for q in catalog.QUEUES.values()
    )
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
        assert functions[name]["Runtime"] == LAMBDA_RUNTIME, name


def test_plain_chalice_deploy_of_a_stage_never_created_stops_with_one_line(stage: Stage) -> None:
    # GIVEN the second clone, where stage prod was never created, and the local stage test
    for name in ("prod", "test"):
        # WHEN a Chalice user deploys it
        result = stage.run([str(BIN / "chalice"), "deploy", "--stage", name], stage.second)
        # THEN one line says what to do, and nothing of it was created
        assert result.returncode != 0
        assert result.stdout == ""
        (line,) = result.stderr.splitlines()
        assert line.startswith(f"chalice deploy: stage '{name}' ")
        assert f"make deploy STAGE={name}" in line if name == "prod" else "is local" in line
    functions = stage.client("lambda").list_functions()["Functions"]
    assert not [f for f in functions if f["FunctionName"].startswith(("inkwell-prod", "inkwell-test"))]
    assert not [r for r in stage.client("iam").list_roles()["Roles"] if r["RoleName"].startswith("inkwell-prod")]


def test_plain_chalice_delete_then_make_teardown_from_the_second_clone(stage: Stage) -> None:
    # WHEN a Chalice user deletes the stage from the second clone
    deleted = stage.run([str(BIN / "chalice"), "delete", "--stage", "dev"], stage.second)
    # THEN what Chalice made is gone
    assert deleted.returncode == 0, deleted.stdout + deleted.stderr
    assert stage.client("lambda").list_functions()["Functions"] == []
    assert stage.client("lambda").list_event_source_mappings()["EventSourceMappings"] == []
    assert stage.client("apigateway").get_rest_apis()["items"] == []
    assert stage.client("apigatewayv2").get_apis()["Items"] == []
    # (but API Gateway's account-wide role for access logs, which every stage of the account shares)
    roles = [r["RoleName"] for r in stage.client("iam").list_roles()["Roles"]]
    assert roles == [deploy.APIGATEWAY_LOGS_ROLE]
    assert stage.record()["resources"] == []
    # AND `make teardown` removes the rest, and the endpoints from .chalice/config.json
    removed = stage.run([sys.executable, "-m", "infra.deploy", "dev", "--teardown"], stage.second)
    assert removed.returncode == 0, removed.stdout + removed.stderr
    assert stage.client("dynamodb").list_tables()["TableNames"] == []
    assert stage.client("sqs").list_queues().get("QueueUrls", []) == []
    dev = json.loads((stage.second / ".chalice" / "config.json").read_text())["stages"]["dev"]
    assert config.WS_URL not in dev["environment_variables"]
    assert git(stage.second, "diff", "--stat", "HEAD~1", "--", ".chalice/config.json") == ""
