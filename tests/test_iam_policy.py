"""The deployed policy grants exactly the AWS operations the code calls (see tests/aws_recorder.py).

This module runs last in a session. It judges only a session that ran the whole functional
suite (`make test`, `pytest`); a focused run skips it and says why.
"""

from __future__ import annotations

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
