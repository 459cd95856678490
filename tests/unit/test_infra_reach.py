"""Each Lambda function's role is made of what it can run (`infra.reach`) and what those modules
were seen calling (`infra/iam_modules.json`): these pin the derivation on the real app."""

from __future__ import annotations

import ast
import textwrap
from pathlib import Path
from typing import Any

import pytest

from infra import iam, reach


@pytest.fixture
def functions() -> dict[str, reach.Function]:
    import app

    return reach.functions(app)


@pytest.fixture
def actions(functions: dict[str, reach.Function]) -> dict[str, set[tuple[str, str]]]:
    """Function -> the (action, resource key) pairs its role grants."""
    table = iam.committed_modules()
    return {
        name: {(a, key) for key, acts in iam.function_grants(fn.modules, fn.queue, table).items() for a in acts}
        for name, fn in functions.items()
    }


def granted(actions: set[tuple[str, str]], action: str) -> set[str]:
    return {key for a, key in actions if a == action}


def test_imports_follow_functions_and_named_packages_but_not_type_checking(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # GIVEN a package whose module imports one module at module level, one inside a function,
    # one only for type checking, and a package by name
    pkg = tmp_path / "chalicelib"
    for path, text in {
        "__init__.py": "",
        "a.py": """
            from typing import TYPE_CHECKING
            from chalicelib import b, sub
            if TYPE_CHECKING:
                from chalicelib import c
            def f():
                from chalicelib.sub import d
                import chalicelib.e
            """,
        "b.py": "",
        "c.py": "",
        "e.py": "",
        "sub/__init__.py": "",
        "sub/d.py": "from chalicelib.sub import helper_name\n",
    }.items():
        (pkg / path).parent.mkdir(parents=True, exist_ok=True)
        (pkg / path).write_text(textwrap.dedent(text))
    monkeypatch.setattr(reach, "ROOT", tmp_path)
    reach.imports.cache_clear()
    try:
        # WHEN its closure is taken THEN type-only imports are left out; `from pkg import name` is the package
        assert reach.closure(["chalicelib.a"]) == {
            "chalicelib.a",
            "chalicelib.b",
            "chalicelib.sub",
            "chalicelib.sub.d",
            "chalicelib.e",
        }
    finally:
        reach.imports.cache_clear()


def test_every_function_of_the_app_is_derived(functions: dict[str, reach.Function]) -> None:
    import app

    expected = {reach.REST_FUNCTION, *reach.WEBSOCKET_FUNCTIONS.values(), *(s.name for s in app.app.event_sources)}
    expected |= {fn.name for fn in app.app.pure_lambda_functions}  # the schedules' (Scheduler invokes them)
    assert set(functions) == expected
    # every function runs the middleware and its hooks
    assert all({"chalicelib.runtime", "chalicelib.audit.logger"} <= fn.modules for fn in functions.values())


def test_a_job_worker_runs_its_own_queues_processors_only(functions: dict[str, reach.Function]) -> None:
    analytics, emails = functions["jobs_analytics"], functions["jobs_emails"]
    assert "chalicelib.content.report_jobs" in analytics.modules
    assert "chalicelib.mail.jobs" not in analytics.modules
    assert "chalicelib.mail.jobs" in emails.modules
    assert "chalicelib.content.report_jobs" not in emails.modules
    # a priority queue's consumer runs its job queue's processors
    assert functions["jobs_emails_high"].modules == emails.modules
    assert (analytics.queue, functions["jobs_emails_high"].queue) == ("analytics", "emails-high")


def test_listeners_are_reached_through_the_events_a_function_constructs(
    functions: dict[str, reach.Function],
) -> None:
    # a worker publishes JobEvents: their listeners (the failure alert's email, the rooms) run in it
    assert {"chalicelib.mail.alerts", "chalicelib.realtime.emitters"} <= functions["jobs_articles"].modules
    # the WebSocket handlers publish no JobEvent
    assert "chalicelib.mail.alerts" not in functions["websocket_message"].modules


def test_the_job_operations_run_every_processors_hooks_a_worker_only_its_own(
    functions: dict[str, reach.Function],
) -> None:
    # the REST API retries and cancels jobs: the generation's hooks (roll back, back to PROCESSING) run there
    assert "chalicelib.content.generation" in functions[reach.REST_FUNCTION].modules
    assert "chalicelib.content.report_jobs" not in functions[reach.REST_FUNCTION].modules
    assert "chalicelib.content.generation" not in functions["jobs_emails"].modules
    # a processor's run is its queue's consumers' alone: the generation's (the generator's webhook
    # calls, its secret) is not the REST API's, which only starts generations and runs their hooks
    running = {name for name, fn in functions.items() if "chalicelib.content.generation_job" in fn.modules}
    assert running == {"jobs_articles", "jobs_articles_high"}


def test_the_websocket_functions_check_sessions_without_the_token_service(
    functions: dict[str, reach.Function],
) -> None:
    # $connect redeems a ticket and reads the session it names, $default reads the connection's
    # session: auth's store, never auth.service (logins, tokens: the JWT secret)
    for name in ("websocket_connect", "websocket_message"):
        assert "chalicelib.auth.store" in functions[name].modules, name
        assert "chalicelib.auth.service" not in functions[name].modules, name
    assert "chalicelib.auth.service" in functions[reach.REST_FUNCTION].modules


def _called_inside(fn: ast.FunctionDef) -> set[str]:
    """The chalicelib modules a function of app.py imports in its body, and the app.py functions it calls."""
    found = set()
    for node in ast.walk(fn):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("chalicelib"):
            found |= {
                f"{node.module}.{a.name}" if reach.module_file(f"{node.module}.{a.name}") else node.module
                for a in node.names
            }
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            found.add(node.func.id)
    return found


def test_app_py_declares_what_each_of_its_own_handlers_runs() -> None:
    """`RUNS` (what infra.reach reads) names every chalicelib module an app.py handler imports
    when called, also through the app.py functions it calls (the job handlers' `job_worker`)."""
    import app

    tree = ast.parse((reach.ROOT / "app.py").read_text())
    defined = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    handlers = {
        *(source.handler_string.split(".", 1)[1] for source in app.app.event_sources),
        *(ws.handler_string.split(".", 1)[1] for ws in app.app.websocket_handlers.values()),
        *(
            e.view_function.__name__
            for m in app.app.routes.values()
            for e in m.values()
            if e.view_function.__module__ == "app"
        ),
    }
    for name in handlers & defined.keys():
        todo, used = [name], set()
        while todo:
            for called in _called_inside(defined[todo.pop()]):
                if called in defined and called not in used:
                    todo.append(called)
                used.add(called)
        imported = {m for m in used if m.startswith("chalicelib.")}
        assert imported <= set(app.RUNS[name]), name
    assert all(reach.module_file(m) for modules in app.RUNS.values() for m in modules)


def test_users_are_written_only_where_auth_runs(actions: dict[str, set[tuple[str, str]]]) -> None:
    # the REST API, and the WebSocket handlers that check tickets and sessions with auth's store
    # (one module); $disconnect checks nothing
    users = {name for name, acts in actions.items() if ("dynamodb:PutItem", "table:users") in acts}
    assert users == {reach.REST_FUNCTION, "websocket_connect", "websocket_message"}


def test_the_analytics_worker_sends_no_email(actions: dict[str, set[tuple[str, str]]]) -> None:
    assert not granted(actions["jobs_analytics"], "ses:SendEmail")
    assert granted(actions["jobs_emails"], "ses:SendEmail") == {"email"}


def test_manage_connections_only_where_realtime_can_run(
    functions: dict[str, reach.Function], actions: dict[str, set[tuple[str, str]]]
) -> None:
    posting = {name for name, acts in actions.items() if granted(acts, "execute-api:ManageConnections")}
    assert posting == {name for name, fn in functions.items() if "chalicelib.realtime.sender" in fn.modules}
    assert "websocket_message" in posting


def test_the_sqs_poller_may_read_only_the_functions_own_queue(
    functions: dict[str, reach.Function], actions: dict[str, set[tuple[str, str]]]
) -> None:
    for name, fn in functions.items():
        polled = granted(actions[name], "sqs:ReceiveMessage") - {"dlq:*"}
        assert polled == ({f"queue:{fn.queue}"} if fn.queue else set()), name
    # logs for every function
    assert all(("logs:PutLogEvents", "logs") in acts for acts in actions.values())


def test_a_schedule_handler_only_enqueues(actions: dict[str, set[tuple[str, str]]]) -> None:
    schedule = actions["daily_analytics"]
    assert ("sqs:SendMessage", "queue:*") in schedule
    assert not granted(schedule, "ses:SendEmail")
    assert not {key for _, key in schedule} & {"table:users", "table:sessions", "table:login_attempts"}


def test_function_grants_are_the_union_of_their_modules_and_the_platform() -> None:
    table: dict[str, Any] = {"m.a": [["dynamodb:GetItem", "table:users"]], "m.b": [["ses:SendEmail", "email"]]}
    grants = iam.function_grants({"m.a"}, "articles", table)
    assert grants["table:users"] == ["dynamodb:GetItem"]
    assert "email" not in grants
    assert grants["queue:articles"] == ["sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ReceiveMessage"]
    assert "queue:articles" not in iam.function_grants({"m.a"}, None, table)


def test_the_seal_jobs_go_to_and_run_on_the_cleanup_queues_own_consumer_only(functions) -> None:
    from chalicelib import catalog
    from chalicelib.jobs import worker

    cleanup = catalog.QUEUES["cleanup"]
    assert set(cleanup.normal_only) == {"audit_digest", "audit_tally", "audit_export", "activity_logs"}
    for job_type in cleanup.normal_only:  # a high priority (enqueue, promote) still sends them here
        assert catalog.priority_queue("cleanup", "high", job_type) == "cleanup"
    assert catalog.priority_queue("cleanup", "high", "sessions") == "cleanup-high"
    found = lambda queue, job_type: (queue, job_type)  # noqa: E731
    high = worker.Worker(cleanup, None, None, find=found, source="cleanup-high")  # type: ignore[arg-type]
    own = worker.Worker(cleanup, None, None, find=found, source="cleanup")  # type: ignore[arg-type]
    assert high._find("audit_digest") is None and high._find("sessions") == ("cleanup", "sessions")
    assert own._find("audit_digest") == ("cleanup", "audit_digest")
    sealing = {
        "chalicelib.audit.sealer",
        "chalicelib.audit.tally",
        "chalicelib.audit.seal_jobs",
        "chalicelib.audit.jobs",
    }
    reached = {name: fn.modules & sealing for name, fn in functions.items()}
    assert {name for name, found in reached.items() if found} == {"jobs_cleanup"}
    assert reached["jobs_cleanup"] == sealing
