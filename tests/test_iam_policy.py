"""The deployed policies grant exactly the AWS operations the code calls (see tests/aws_recorder.py):
the stage's declarations (ACCESS) and, per module, the committed `infra/iam_modules.json` that
each function's role is made of (`infra.reach`); the committed `.chalice/policy-<stage>-<function>.json`
files are those roles' policies.

This module runs last in a session. Its first test judges only a session that ran the whole
functional suite (`make test`, `pytest`); a focused run skips it and says why.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from infra import iam
from tests.aws_recorder import RECORDER


def test_policy_grants_every_operation_the_code_calls_and_nothing_else() -> None:
    if not RECORDER.complete:
        pytest.skip(f"not a full run ({RECORDER.why_incomplete}): the policy check needs every functional test")
    # GIVEN every AWS call the suite made through the code
    called = RECORDER.grants()
    assert called, "the recorder saw no AWS call: is the recorder still hooked onto aws.session()?"
    # WHEN compared with the declared policy
    result = iam.compare(called)
    # THEN nothing is missing and nothing is granted for nothing
    if result.pending_unused:
        print(f"\nIAM grants still pending (granted, not called yet): {result.pending_unused}")
    assert not result.missing, (
        f"the code calls {result.missing} but infra/iam.py ACCESS does not grant them: add them there"
    )
    assert not result.unused, (
        f"infra/iam.py ACCESS grants {result.unused} but no test saw the code call them: remove them "
        "(or, if only AWS itself calls them, move them to PLATFORM)"
    )


def test_module_table_is_what_each_module_was_seen_calling() -> None:
    if not RECORDER.complete:
        pytest.skip(f"not a full run ({RECORDER.why_incomplete}): the module table needs every functional test")
    # GIVEN every AWS call the suite made, with the module that made it
    recorded = RECORDER.module_grants()
    assert recorded
    # (no function's closure holds app.py itself: its handlers are followed name by name)
    assert "app" not in {module for module, _, _ in recorded}, "app.py calls AWS itself: move that into chalicelib"
    # WHEN compared with the committed table every function's role is made of
    result = iam.compare_modules(recorded, iam.committed_modules())
    # THEN no module lacks a grant it used, and none keeps one it no longer uses
    hint = "regenerate: `python -m infra.iam --write` after this full run, and commit infra/iam_modules.json"
    assert not result.missing, f"modules call {result.missing} that infra/iam_modules.json does not grant them: {hint}"
    assert not result.unused, f"infra/iam_modules.json grants {result.unused} that no test saw called: {hint}"


def test_every_function_grants_what_its_handler_was_seen_calling() -> None:
    if not RECORDER.complete:
        pytest.skip(f"not a full run ({RECORDER.why_incomplete}): the roles' check needs every functional test")
    # GIVEN the calls made inside handlers invoked as Lambda invokes them (chalice.test.Client, the
    # WebSocket tests' gateway, ...), and the secrets they read (`secret.get`: from the environment
    # in the suite, an `ssm:GetParameter` on AWS)
    observed = RECORDER.function_grants()
    seen = {"api_handler", "jobs_articles", "daily_analytics", "websocket_connect", "websocket_message"}
    assert {function for function, _, _ in observed} >= seen
    assert ("api_handler", "ssm:GetParameter", "secret:JWT_SECRET") in observed
    assert ("jobs_articles", "ssm:GetParameter", "secret:WEBHOOK_SECRET") in observed
    # THEN each function's role grants them: the static derivation (infra.reach) missed no module
    missing = iam.ungranted(observed, iam.committed_modules())
    assert not missing, f"these functions' roles lack what their handlers called: {missing} (see infra/reach.py)"


def test_ungranted_names_a_call_the_functions_modules_do_not_grant() -> None:
    table = iam.committed_modules()
    # the emails worker sends email; the analytics worker may not, nor may an unknown function do anything
    observed = {
        ("jobs_emails", "ses:SendEmail", "email"),
        ("jobs_analytics", "ses:SendEmail", "email"),
        ("jobs_analytics", "sqs:ReceiveMessage", "queue:analytics"),
        ("nobody", "dynamodb:GetItem", "table:users"),
        # a secret read (`secret.get`, recorded per function): the REST API's JWT secret is its own
        ("api_handler", "ssm:GetParameter", "secret:JWT_SECRET"),
        ("websocket_connect", "ssm:GetParameter", "secret:JWT_SECRET"),
    }
    assert iam.ungranted(observed, table) == [
        ("jobs_analytics", "ses:SendEmail", "email"),
        ("nobody", "dynamodb:GetItem", "table:users"),
        ("websocket_connect", "ssm:GetParameter", "secret:JWT_SECRET"),
    ]


def test_compare_modules_flags_a_missing_and_an_unused_module_grant() -> None:
    # GIVEN a committed table, and a run where one module made a new call and another stopped one
    committed = {
        "chalicelib.auth.store": [["dynamodb:Query", "table:users"]],
        "chalicelib.jobs.queues": [["sqs:SendMessage", "queue:*"]],
    }
    for m, a, k in {*iam.PENDING_MODULES, *iam.SECRET_READS}:  # always in the table, recorded or not
        committed.setdefault(m, []).append([a, k])
    recorded = {
        ("chalicelib.auth.store", "dynamodb:PutItem", "table:users"),
        ("chalicelib.jobs.queues", "sqs:SendMessage", "queue:emails"),
    }
    # WHEN compared
    result = iam.compare_modules(recorded, committed)
    # THEN both are named (a queue's call is covered by the widened `queue:*`)
    assert result.missing == [("chalicelib.auth.store", "dynamodb:PutItem", "table:users")]
    assert result.unused == [("chalicelib.auth.store", "dynamodb:Query", "table:users")]


def test_compare_flags_a_missing_and_an_unused_grant() -> None:
    # GIVEN calls that include one ungranted action and omit a granted one
    called = {(action, key) for key, actions in iam.ACCESS.items() for action in actions}
    called.discard(("dynamodb:Query", "table:users"))
    called.add(("dynamodb:Scan", "table:users"))
    # WHEN compared
    result = iam.compare(called)
    # THEN both are named
    assert result.missing == [("dynamodb:Scan", "table:users")]
    assert result.unused == [("dynamodb:Query", "table:users")]


def test_platform_actions_are_neither_missing_nor_unused() -> None:
    called = {("sqs:ReceiveMessage", "queue:articles")}
    result = iam.compare(called)
    assert result.missing == []


# --- the committed policy files of the `chalice deploy` path ----------------------------------


def test_committed_policy_files_are_the_generated_ones() -> None:
    # `chalice deploy --stage <stage>` reads each function's .chalice/policy-<stage>-<function>.json
    assert iam.deployable_stages() == ["dev", "prod"]
    assert iam.policy_file_problems() == [], "run `make policies` (python -m infra.iam --write) and commit"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_committed_policy_names_only_its_stage_and_no_account_or_region(stage: str) -> None:
    for path in sorted(iam.ROOT.joinpath(".chalice").glob(f"policy-{stage}-*.json")):
        text = path.read_text()
        arns = [arn for s in json.loads(text)["Statement"] for arn in s["Resource"] if arn != "*"]
        # S3 bucket ARNs name neither (bucket names are global), IAM role ARNs no region
        unnamed = {"s3": ["", ""], "iam": ["", "*"]}
        assert arns and all(arn.split(":")[3:5] == unnamed.get(arn.split(":")[2], ["*", "*"]) for arn in arns), arns
        other = "prod" if stage == "dev" else "dev"
        assert f"inkwell-{stage}-" in text and f"inkwell-{other}-" not in text
        assert "${" not in text and not re.search(r"\d{12}", text)


def test_policy_files_are_regenerated_and_a_stale_or_stray_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a project whose config has stages dev and test (local), dev's old single file, a stale
    # function's file, one of a function that does not exist, and a stray one
    chalice_dir = tmp_path / ".chalice"
    chalice_dir.mkdir()
    (chalice_dir / "config.json").write_text(json.dumps({"stages": {"dev": {}, "test": {}}}))
    for name in ("policy-dev.json", "policy-dev-jobs_articles.json", "policy-dev-gone.json", "policy-old.json"):
        (chalice_dir / name).write_text("{}\n")
    monkeypatch.setattr(iam, "ROOT", tmp_path)
    # WHEN checked THEN each is named
    assert iam.main([]) == 1
    out = capsys.readouterr().out
    assert ".chalice/policy-dev-jobs_articles.json is missing or out of date: run `make policies`" in out
    assert ".chalice/policy-dev-api_handler.json is missing or out of date" in out
    assert ".chalice/config.json does not give each function of dev its own policy file" in out
    for stray in ("policy-dev.json", "policy-dev-gone.json", "policy-old.json"):
        assert f".chalice/{stray} belongs to no function of a deployable stage" in out
    # WHEN regenerated THEN dev's are the generated ones (none for the local stage), the stray stays named
    assert iam.main(["--write"]) == 1
    texts = iam.policy_texts("dev")
    assert all(path.read_text() == text for path, text in texts.items())
    assert not list(chalice_dir.glob("policy-test*.json"))
    assert not (chalice_dir / "policy-dev.json").exists() and not (chalice_dir / "policy-dev-gone.json").exists()
    (chalice_dir / "policy-old.json").unlink()
    assert iam.main([]) == 0


def test_manage_connections_is_granted_on_no_api_before_the_stage_exists_and_pinned_once_it_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN stage dev before `make deploy` created it: no endpoints in its config
    (tmp_path / ".chalice").mkdir()
    config_path = tmp_path / ".chalice" / "config.json"
    config_path.write_text(json.dumps({"stages": {"dev": {"environment_variables": {}}}}))
    (tmp_path / "infra").mkdir()
    (tmp_path / "infra" / "iam_modules.json").write_text(iam.modules_file().read_text())
    monkeypatch.setattr(iam, "ROOT", tmp_path)

    def manage_connections() -> set[str]:
        found = set()
        for text in iam.policy_texts("dev").values():
            for statement in json.loads(text)["Statement"]:
                if "execute-api:ManageConnections" in statement["Action"]:
                    found.update(statement["Resource"])
        return found

    assert manage_connections() == set()  # no API yet: no grant on any API id
    assert iam.websocket_api_id("dev") == ""
    # WHEN `make deploy` wrote the endpoints of its WebSocket API THEN every grant names that API only
    endpoint = "https://abc123xyz.execute-api.eu-west-1.amazonaws.com/api"
    env = {"INKWELL_WS_MANAGEMENT_ENDPOINT": endpoint}
    config_path.write_text(json.dumps({"stages": {"dev": {"environment_variables": env}}}))
    assert iam.websocket_api_id("dev") == "abc123xyz"
    assert manage_connections() == {"arn:aws:execute-api:*:*:abc123xyz/api/*/@connections/*"}
