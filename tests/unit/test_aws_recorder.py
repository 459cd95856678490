"""The IAM recorder under pytest-xdist (tests/aws_recorder.py): the workers' recordings add up,
and the policy module judges the merged recording as it judges a serial run's: it fails on a call
the policy does not grant and skips, with the reason, when the recording is not a full run's."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from infra import iam
from tests.aws_recorder import ROOT, Recorder

POLICY_CHECK = "tests/test_iam_policy.py::test_policy_grants_every_operation_the_code_calls_and_nothing_else"


def recording(grants: set[tuple[str, str]], complete: bool = True, why: str = "") -> Recorder:
    recorder = Recorder()
    for action, key in grants:
        recorder.calls[("svc", "Op", action, key)] += 1
        recorder.by_module[("chalicelib.x", action, key)] += 1
    recorder.complete, recorder.why_incomplete = complete, why
    return recorder


def judge(recorder: Recorder, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    path = tmp_path / "operations.json"
    recorder.write(path)
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rs", f"--iam-recording={path}", POLICY_CHECK]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def test_two_workers_recordings_add_up() -> None:
    first = recording({("dynamodb:GetItem", "table:users")})
    second = recording({("dynamodb:GetItem", "table:users"), ("sqs:SendMessage", "queue:emails")})
    second.by_function[("api_handler", "sqs:SendMessage", "queue:emails")] += 2
    merged = Recorder()
    merged.add(json.loads(json.dumps(first.document())))
    merged.add(json.loads(json.dumps(second.document())))
    assert merged.calls[("svc", "Op", "dynamodb:GetItem", "table:users")] == 2
    assert merged.grants() == {("dynamodb:GetItem", "table:users"), ("sqs:SendMessage", "queue:emails")}
    assert merged.function_grants() == {("api_handler", "sqs:SendMessage", "queue:emails")}
    assert merged.by_function[("api_handler", "sqs:SendMessage", "queue:emails")] == 2


def test_a_merged_recording_with_a_call_the_policy_does_not_grant_fails_the_check(tmp_path: Path) -> None:
    granted = {(action, key) for key, actions in iam.ACCESS.items() for action in actions}
    done = judge(recording(granted | {("dynamodb:Scan", "table:users")}), tmp_path)
    assert done.returncode == 1, done.stdout + done.stderr
    assert (
        "the code calls [('dynamodb:Scan', 'table:users')] but infra/iam.py ACCESS does not grant them" in done.stdout
    )


def test_a_merged_recording_of_a_focused_run_skips_the_check_with_its_reason(tmp_path: Path) -> None:
    done = judge(recording(set(), complete=False, why="tests were selected with -k/-m/--lf"), tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "not a full run (tests were selected with -k/-m/--lf)" in done.stdout
