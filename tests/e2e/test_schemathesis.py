"""Schemathesis, an outside fuzzer, against the local stack: every operation of the OpenAPI
document (`GET /api/openapi.json`), as each role, with its examples, coverage, fuzzing and stateful
phases (the links the document declares: an article created, then read, generated, ...).
Nothing may answer 5xx, every answer must be one the document allows (its status, content
type, headers and schema), a request the document forbids is refused, credentials are never
ignored, and a resource created can be read and one deleted cannot.

The stack is this module's own (the fuzzer pauses queues, changes settings and limits, which
other e2e tests must not see). Schemathesis runs from its own venv, `.venv-schemathesis`
(`make test` installs it; requirements-schemathesis.txt), as a command, with a fixed seed and a
bounded number of examples per operation so the run fits in the suite.
`POST /api/auth/logout` revokes the token it is called with, so it is fuzzed last, on its own.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.conftest import ROOT, LocalStack, start_stack, stop_stack

ST = ROOT / ".venv-schemathesis" / "bin" / "st"
SEED = 20261129
# per operation; editors and viewers are refused most operations (403), so fewer do as well
MAX_EXAMPLES = {"admin": 5, "editor": 3, "viewer": 2}
CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "negative_data_rejection",  # what breaks the document is refused (4xx)
        "ignored_auth",  # an operation needing credentials refuses a request without them
        "missing_required_header",
        "unsupported_method",
        "use_after_free",  # a deleted job is gone
        "ensure_resource_availability",  # a created article can be read at once
    ]
)
PASSWORD = "fuzzed but long enough"
LOGOUT = "/api/auth/logout"


@pytest.fixture(scope="module")
def fuzzed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, dict[str, str]]]:
    if not ST.exists():
        pytest.fail(f"{ST.relative_to(ROOT)} is missing: `make schemathesis` installs it")
    process, stack = start_stack(tmp_path_factory.mktemp("fuzzed-stack"))
    try:
        admin = stack.login()
        tokens = {"admin": admin}
        for role in ("editor", "viewer"):
            email = f"fuzz-{role}@example.com"
            status, body, _ = stack.request(
                "POST", "/api/users", {"email": email, "password": PASSWORD, "role": role}, token=admin
            )
            assert status == 201, body
            tokens[role] = stack.login(email, PASSWORD)
        yield stack, tokens
    finally:
        stop_stack(process)


def schemathesis(
    stack: LocalStack, role: str, token: str, workdir: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    command = [
        str(ST),
        "run",
        f"{stack.http_url}/api/openapi.json",
        "--header",
        f"Authorization: Bearer {token}",
        "--checks",
        CHECKS,
        "--max-examples",
        str(MAX_EXAMPLES[role]),
        "--seed",
        str(SEED),
        "--workers",
        "1",  # hypothesis's lambda introspection is not thread-safe (runtime errors with 2)
        "--request-timeout",
        "30",
        "--no-color",
        *args,
    ]
    return subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=600)


@pytest.mark.parametrize("role", ["admin", "editor", "viewer"])
def test_every_operation_answers_as_documented_and_never_5xx(fuzzed, role, tmp_path):
    stack, tokens = fuzzed
    result = schemathesis(stack, role, tokens[role], tmp_path, "--exclude-path", LOGOUT)
    assert result.returncode == 0, result.stdout[-12000:] + result.stderr[-2000:]
    counts = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert counts and counts[1] == counts[2] and int(counts[1]) > 200, result.stdout[-3000:]


def test_logout_answers_as_documented_for_every_role(fuzzed, tmp_path):
    stack, tokens = fuzzed
    for role in ("viewer", "editor", "admin"):
        result = schemathesis(
            stack, role, tokens[role], tmp_path, "--include-path", LOGOUT, "--phases", "examples,coverage,fuzzing"
        )  # no stateful phase: no link leads to it
        assert result.returncode == 0, result.stdout[-8000:] + result.stderr[-2000:]
