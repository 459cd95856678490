"""A pytest plugin that records every AWS operation Inkwell's own code calls during the suite.

It registers a botocore hook on the session every client of `chalicelib.aws` is built from
(`aws.session().events`), anew for each test (a test's `aws.reset()` starts a new session). A call
counts when `app.py` or a `chalicelib` module is on the stack: fixtures, test assertions and
`infra.provision` calling boto3 directly are not the deployed code, so they are left out. Each
call is mapped to the IAM (action, resource) pairs it needs (`infra.iam.grants_for_call`),
written to `dist/iam/operations.json` at the end, and compared with the policy by
`tests/test_iam_policy.py`, which this plugin moves to the very end of the run and which only
judges a run that included the whole functional suite.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import chalice.app as chalice_app
import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = ROOT / "dist" / "iam" / "operations.json"
CHECK_MODULE = "test_iam_policy.py"
FUNCTIONAL = ROOT / "tests" / "functional"
_CODE = (str(ROOT / "chalicelib") + os.sep, str(ROOT / "app.py"))
_PASS_THROUGH = str(ROOT / "chalicelib" / "aws.py")
_CHALICE_APP = str(Path(chalice_app.__file__))


class Recorder:
    def __init__(self) -> None:
        self.calls: Counter[tuple[str, str, str, str]] = Counter()  # (service, operation, action, key)
        self.by_module: Counter[tuple[str, str, str]] = Counter()  # (module, action, key)
        # (Lambda function, action, key) for calls made inside a handler invoked as Lambda would
        # (through Chalice's handler objects: chalice.test.Client, `app.jobs_articles(event, ctx)`)
        self.by_function: Counter[tuple[str, str, str]] = Counter()
        self.complete = False  # the session ran the whole functional suite
        self.why_incomplete = ""

    def attach(self, session: Any) -> None:
        # before-parameter-build sees the caller's parameters (TableName, QueueUrl, ...);
        # before-call only sees the serialised request.
        session.events.register("before-parameter-build", self._on_call, unique_id="inkwell-iam-recorder")

    def _on_call(self, params: dict[str, Any], model: Any, **_: Any) -> None:
        module = _calling_module()
        if module is None:
            return
        from chalicelib import config
        from infra import iam

        service = model.service_model.service_name
        function = _calling_function()
        for action, key in iam.grants_for_call(service, model.name, params, config.get().stage):
            self.calls[(service, model.name, action, key)] += 1
            self.by_module[(module, action, key)] += 1
            if function is not None:
                self.by_function[(function, action, key)] += 1

    def grants(self) -> set[tuple[str, str]]:
        return {(action, key) for (_, _, action, key) in self.calls}

    def module_grants(self) -> set[tuple[str, str, str]]:
        return set(self.by_module)

    def function_grants(self) -> set[tuple[str, str, str]]:
        return set(self.by_function)

    def write(self) -> None:
        OUTPUT.parent.mkdir(parents=True, exist_ok=True)
        rows = [
            {"service": s, "operation": o, "action": a, "resource": k, "calls": n}
            for (s, o, a, k), n in sorted(self.calls.items())
        ]
        modules = [
            {"module": m, "action": a, "resource": k, "calls": n} for (m, a, k), n in sorted(self.by_module.items())
        ]
        functions = [
            {"function": f, "action": a, "resource": k, "calls": n} for (f, a, k), n in sorted(self.by_function.items())
        ]
        document = {"complete": self.complete, "operations": rows, "modules": modules, "functions": functions}
        OUTPUT.write_text(json.dumps(document, indent=1) + "\n")


def _calling_module() -> str | None:
    """The innermost module of the code that made the call (`chalicelib.jobs.store`, `app`), or
    None when none is on the stack. `chalicelib/aws.py` only builds clients and looks up queue
    URLs for others: its calls count for its caller."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_CODE) and filename != _PASS_THROUGH:
            return ".".join(Path(filename).relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        frame = frame.f_back  # type: ignore[assignment]
    return None


def _calling_function() -> str | None:
    """The Lambda function (Chalice's resource name) whose handler is running, when it was invoked
    through Chalice's handler objects: the outermost `__call__` of chalice/app.py on the stack."""
    app_module = sys.modules.get("app")
    if app_module is None:
        return None
    found = None
    frame = sys._getframe(2)
    while frame is not None:
        if frame.f_code.co_name == "__call__" and frame.f_code.co_filename == _CHALICE_APP:
            found = frame.f_locals.get("self", found)
        frame = frame.f_back  # type: ignore[assignment]
    if found is None:
        return None
    from infra import reach

    app = app_module.app
    if found is app:
        return reach.REST_FUNCTION
    for source in app.event_sources:
        if getattr(app_module, source.handler_string.split(".", 1)[1], None) is found:
            return str(source.name)
    for route, ws in app.websocket_handlers.items():
        if getattr(app_module, ws.handler_string.split(".", 1)[1], None) is found:
            return reach.WEBSOCKET_FUNCTIONS[route]
    return None


RECORDER = Recorder()


@pytest.fixture(autouse=True)
def record_aws_calls(clean_env: None) -> None:
    """After the test's environment (and AWS session) is fresh, hook the recorder onto it."""
    import moto  # noqa: F401  (before any session exists: moto's stub joins botocore's handlers on import)

    from chalicelib import aws

    RECORDER.attach(aws.session())


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # The policy check runs last, after every test that can make an AWS call.
    checks = [item for item in items if item.path.name == CHECK_MODULE]
    for item in checks:
        items.remove(item)
    items.extend(checks)
    collected = {item.path for item in items}
    wanted = set(FUNCTIONAL.rglob("test_*.py"))
    if config.option.keyword or config.option.markexpr or config.option.lf:
        RECORDER.why_incomplete = "tests were selected with -k/-m/--lf"
    elif not wanted <= collected:
        RECORDER.why_incomplete = f"{len(wanted - collected)} functional test module(s) not collected"
    else:
        RECORDER.complete = True


def pytest_deselected(items: list[pytest.Item]) -> None:
    if any(FUNCTIONAL in item.path.parents for item in items):
        RECORDER.complete = False
        RECORDER.why_incomplete = "functional tests were deselected"


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if RECORDER.calls:
        RECORDER.write()
