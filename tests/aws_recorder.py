"""A pytest plugin that records every AWS operation Inkwell's own code calls during the suite.

It registers a botocore hook on the session every client of `chalicelib.aws` is built from
(`aws.session().events`), anew for each test (a test's `aws.reset()` starts a new session). A call
counts when `app.py` or a `chalicelib` module is on the stack: fixtures, test assertions and
`infra.provision` calling boto3 directly are not the deployed code, so they are left out. Each
call is mapped to the IAM (action, resource) pairs it needs (`infra.iam.grants_for_call`),
written to `dist/iam/operations.json` at the end, and compared with the policy by
`tests/test_iam_policy.py`, which this plugin moves to the very end of the run and which only
judges a run that included the whole functional suite.

Under pytest-xdist (`pytest -n 2`) each worker sees only the tests it ran: a worker sends its
recording to the controller when it finishes and does not run the policy module; the controller
adds the recordings up, writes them to `dist/iam/operations.json`, and then runs the policy
module in a pytest of its own on that merged recording (`--iam-recording`); its verdict is the
run's.
"""

from __future__ import annotations

import json
import os
import subprocess
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
_PASS_THROUGH = (str(ROOT / "chalicelib" / "aws.py"), str(ROOT / "chalicelib" / "secret.py"))
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

    def document(self) -> dict[str, Any]:
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
        return {
            "complete": self.complete,
            "why_incomplete": self.why_incomplete,
            "operations": rows,
            "modules": modules,
            "functions": functions,
        }

    def add(self, document: dict[str, Any]) -> None:
        """Count in another recording (a worker's, or one written to a file)."""
        for row in document["operations"]:
            self.calls[(row["service"], row["operation"], row["action"], row["resource"])] += row["calls"]
        for row in document["modules"]:
            self.by_module[(row["module"], row["action"], row["resource"])] += row["calls"]
        for row in document["functions"]:
            self.by_function[(row["function"], row["action"], row["resource"])] += row["calls"]

    def write(self, path: Path = OUTPUT) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.document(), indent=1) + "\n")


def _calling_module() -> str | None:
    """The innermost module of the code that made the call (`chalicelib.jobs.store`, `app`), or
    None when none is on the stack. `chalicelib/aws.py` only builds clients and looks up queue
    URLs for others: its calls count for its caller."""
    frame = sys._getframe(2)
    while frame is not None:
        filename = frame.f_code.co_filename
        if filename.startswith(_CODE) and filename not in _PASS_THROUGH:
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
    for fn in app.pure_lambda_functions:  # the schedules' functions (EventBridge Scheduler invokes them)
        if getattr(app_module, fn.handler_string.split(".", 1)[1], None) is found:
            return str(fn.name)
    return None


RECORDER = Recorder()
_WORKER_OUTPUT = "inkwell_iam"  # the key of a worker's recording in what it sends the controller
_DEFERRED: list[str] = []  # on a worker: the policy checks it left to the controller
_PARTS: list[dict[str, Any]] = []  # on the controller: the workers' recordings
_LOST: list[str] = []  # on the controller: workers that went down without sending theirs


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--iam-recording",
        metavar="PATH",
        default=None,
        help="judge this recording (the merged dist/iam/operations.json of a parallel run) instead of the session's calls",
    )


def _recording(config: pytest.Config) -> Path | None:
    value = config.getoption("iam_recording", None)
    return Path(value) if value else None


def _is_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def _is_controller(config: pytest.Config) -> bool:
    return config.pluginmanager.hasplugin("dsession")


@pytest.fixture(autouse=True)
def record_aws_calls(clean_env: None, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """After the test's environment (and AWS session) is fresh, hook the recorder onto it, and
    count the secrets each function's handler reads (`secret.get`): the suite reads them from the
    environment, so no SSM call shows them, yet on AWS each is an `ssm:GetParameter` its role must grant."""
    if _recording(request.config) is not None:
        return  # the session judges a recording made by another
    import moto  # noqa: F401  (before any session exists: moto's stub joins botocore's handlers on import)

    from chalicelib import aws, config, secret

    RECORDER.attach(aws.session())
    read = secret.get

    def get(name: str) -> str:
        function = _calling_function()
        if function is not None and name in config.SECRETS:
            RECORDER.by_function[(function, "ssm:GetParameter", f"secret:{name}")] += 1
        return read(name)

    monkeypatch.setattr(secret, "get", get)


@pytest.hookimpl(trylast=True)
def pytest_collection_modifyitems(session: pytest.Session, config: pytest.Config, items: list[pytest.Item]) -> None:
    # The policy check runs last, after every test that can make an AWS call: on a worker, after
    # every worker is done (the controller runs it, see `_judge_merged`).
    checks = [item for item in items if item.path.name == CHECK_MODULE]
    for item in checks:
        items.remove(item)
    recording = _recording(config)
    if _is_worker(config) and recording is None:
        _DEFERRED[:] = [item.nodeid for item in checks]
    else:
        items.extend(checks)
    if recording is not None:
        document = json.loads(recording.read_text())
        RECORDER.add(document)
        RECORDER.complete, RECORDER.why_incomplete = document["complete"], document.get("why_incomplete", "")
        return
    collected = {item.path for item in items} | {item.path for item in checks}
    wanted = set(FUNCTIONAL.rglob("test_*.py"))
    if config.option.keyword or config.option.markexpr or getattr(config.option, "lf", False):
        RECORDER.why_incomplete = "tests were selected with -k/-m/--lf"
    elif not wanted <= collected:
        RECORDER.why_incomplete = f"{len(wanted - collected)} functional test module(s) not collected"
    else:
        RECORDER.complete = True


def pytest_deselected(items: list[pytest.Item]) -> None:
    if any(FUNCTIONAL in item.path.parents for item in items):
        RECORDER.complete = False
        RECORDER.why_incomplete = "functional tests were deselected"


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: object) -> None:
    """On the controller: keep what a finished worker recorded."""
    part = getattr(node, "workeroutput", {}).get(_WORKER_OUTPUT)
    if part is None:
        _LOST.append(f"worker {node.gateway.id} went down without its recording ({error})")
    else:
        _PARTS.append(part)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    config = session.config
    if _recording(config) is not None:
        return
    if _is_worker(config):
        config.workeroutput[_WORKER_OUTPUT] = {**RECORDER.document(), "checks": _DEFERRED}  # type: ignore[attr-defined]
    elif _is_controller(config):
        _judge_merged(session)
    elif RECORDER.calls:
        RECORDER.write()


def _judge_merged(session: pytest.Session) -> None:
    """The workers' recordings added up and written, then the policy checks they left run on it
    in a pytest of their own; a failure there fails the run."""
    merged = Recorder()
    for part in _PARTS:
        merged.add(part)
    stopped = session.shouldfail or session.shouldstop
    why = [part["why_incomplete"] for part in _PARTS if not part["complete"]] + _LOST
    if stopped:
        why.append("the run stopped early")
    merged.complete = bool(_PARTS) and not why
    merged.why_incomplete = why[0] if why else ""
    checks = sorted({nodeid for part in _PARTS for nodeid in part["checks"]})
    if merged.calls or checks:
        merged.write()
    if not checks or stopped:
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    command = [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-rfEs", f"--iam-recording={OUTPUT}"]
    result = subprocess.run([*command, *checks], cwd=session.config.rootpath, capture_output=True, text=True)
    if reporter is not None:
        reporter.write_sep("=", f"{CHECK_MODULE} on the workers' merged recording ({OUTPUT.relative_to(ROOT)})")
        reporter.write(result.stdout + result.stderr)
    if result.returncode != 0 and session.exitstatus == 0:
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
