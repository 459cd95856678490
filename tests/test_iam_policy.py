"""The deployed policy grants exactly the AWS operations the code calls (see tests/aws_recorder.py),
and the committed `.chalice/policy-<stage>.json` files are that policy.

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
    # `chalice deploy --stage <stage>` reads .chalice/policy-<stage>.json from the clone it runs in
    assert iam.deployable_stages() == ["dev", "prod"]
    assert iam.policy_file_problems() == [], "run `make policies` (python -m infra.iam --write) and commit"


@pytest.mark.parametrize("stage", ["dev", "prod"])
def test_a_committed_policy_names_only_its_stage_and_no_account_or_region(stage: str) -> None:
    text = iam.policy_file(stage).read_text()
    arns = [arn for s in json.loads(text)["Statement"] for arn in s["Resource"] if arn != "*"]
    assert arns and all(arn.split(":")[3:5] == ["*", "*"] for arn in arns), arns
    other = "prod" if stage == "dev" else "dev"
    assert f"inkwell-{stage}-" in text and f"inkwell-{other}-" not in text
    assert "${" not in text and not re.search(r"\d{12}", text)


def test_policy_files_are_regenerated_and_a_stale_or_stray_one_is_named(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    # GIVEN a project whose config has stages dev and test (local), a stale dev file and a stray one
    (tmp_path / ".chalice").mkdir()
    (tmp_path / ".chalice" / "config.json").write_text(json.dumps({"stages": {"dev": {}, "test": {}}}))
    (tmp_path / ".chalice" / "policy-dev.json").write_text("{}\n")
    (tmp_path / ".chalice" / "policy-old.json").write_text("{}\n")
    monkeypatch.setattr(iam, "ROOT", tmp_path)
    # WHEN checked THEN both are named
    assert iam.main([]) == 1
    out = capsys.readouterr().out
    assert ".chalice/policy-dev.json is missing or out of date: run `make policies`" in out
    assert ".chalice/policy-old.json belongs to no deployable stage" in out
    # WHEN regenerated THEN dev's is the generated one (no file for the local stage), the stray stays named
    assert iam.main(["--write"]) == 1
    assert (tmp_path / ".chalice" / "policy-dev.json").read_text() == iam.policy_text("dev")
    assert not (tmp_path / ".chalice" / "policy-test.json").exists()
    (tmp_path / ".chalice" / "policy-old.json").unlink()
    assert iam.main([]) == 0


def test_manage_connections_is_pinned_to_the_stages_websocket_api_once_it_exists(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN stage dev before `make deploy` created it: no endpoints in its config
    (tmp_path / ".chalice").mkdir()
    config_path = tmp_path / ".chalice" / "config.json"
    config_path.write_text(json.dumps({"stages": {"dev": {"environment_variables": {}}}}))
    monkeypatch.setattr(iam, "ROOT", tmp_path)

    def manage_connections() -> list[str]:
        statements = json.loads(iam.policy_text("dev"))["Statement"]
        (statement,) = [s for s in statements if "execute-api:ManageConnections" in s["Action"]]
        return list(statement["Resource"])

    assert manage_connections() == ["arn:aws:execute-api:*:*:*/api/*/@connections/*"]
    # WHEN `make deploy` wrote the endpoints of its WebSocket API THEN the grant names that API only
    endpoint = "https://abc123xyz.execute-api.eu-west-1.amazonaws.com/api"
    env = {"INKWELL_WS_MANAGEMENT_ENDPOINT": endpoint}
    config_path.write_text(json.dumps({"stages": {"dev": {"environment_variables": env}}}))
    assert iam.websocket_api_id("dev") == "abc123xyz"
    assert manage_connections() == ["arn:aws:execute-api:*:*:abc123xyz/api/*/@connections/*"]
