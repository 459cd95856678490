"""The local stack's pure parts: the fake generator, scheduled events, WebSocket request
contexts, handler discovery and the stack's configuration from the environment."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from chalice import Chalice, Rate

from local import sources
from local.generator import TOLERANCE, FakeGenerator, content_for, signed
from local.scheduler import Scheduler, UnknownSchedule, scheduled_event
from local.stack import StackConfig
from local.websocket import Connection, new_connection_id, request_context

BODY = json.dumps({"article_id": "a1", "title": "Tea", "topic": "green tea", "keywords": ["sencha"]}).encode()


def generator() -> FakeGenerator:
    return FakeGenerator("secret", delay=1.5, sleep=lambda s: None)


def test_the_generator_answers_deterministic_content_to_a_signed_request() -> None:
    gen = generator()
    first = gen.handle(signed(BODY, "secret"), BODY)
    assert first == gen.handle(signed(BODY, "secret"), BODY)
    assert first[0] == 200 and "green tea" in first[1]["content"] and "sencha" in first[1]["content"]
    assert content_for({"title": "A"}) != content_for({"title": "B"})


def _without(name: str) -> dict:
    return {k: v for k, v in signed(BODY, "secret").items() if k != name}


# headers are signed when the test runs, not when it is collected: a signature's timestamp is
# refused once it is 5 minutes old, and a long run reaches a test later than that
@pytest.mark.parametrize(
    ("headers", "body", "status"),
    [
        (dict, BODY, 401),
        (lambda: signed(BODY, "other"), BODY, 401),
        (
            lambda: {
                **signed(BODY, "secret"),
                "x-inkwell-signature-v2": signed(BODY, "secret")["x-inkwell-signature-v2"][:-1],
            },
            BODY,
            401,
        ),
        (lambda: _without("x-inkwell-signature-v2"), BODY, 401),
        (lambda: _without("x-inkwell-timestamp"), BODY, 401),
        (lambda: signed(b"nope", "secret"), b"nope", 400),
        (lambda: signed(b"[]", "secret"), b"[]", 400),
        (lambda: signed(b'{"title":"x"}', "secret"), b'{"title":"x"}', 400),
    ],
)
def test_the_generator_refuses_unsigned_or_malformed_requests(headers: Any, body: bytes, status: int) -> None:
    assert generator().handle(headers(), body)[0] == status


def test_the_generator_refuses_stale_and_replayed_calls() -> None:
    now = [10_000.0]
    gen = FakeGenerator("secret", delay=0.0, sleep=lambda s: None, clock=lambda: now[0])
    captured = signed(BODY, "secret", now[0])
    assert gen.handle(captured, BODY)[0] == 200
    assert gen.handle(captured, BODY) == (401, {"message": "replayed X-Inkwell-Delivery"})
    now[0] += TOLERANCE + 1
    fresh_id = {**signed(BODY, "secret", now[0] - TOLERANCE - 1), "x-inkwell-delivery": "another"}
    assert gen.handle(fresh_id, BODY)[0] == 401  # the id is not signed that way: forged
    stale = signed(BODY, "secret", now[0] - TOLERANCE - 1, "another")
    assert "stale" in gen.handle(stale, BODY)[1]["message"]
    assert gen.handle(signed(BODY, "secret", now[0]), BODY)[0] == 200


def test_generator_faults_fail_n_calls_then_pass_and_can_target_one_article() -> None:
    gen = generator()
    gen.add_fault(500, times=2)
    gen.add_fault(429, times=1, article_id="other")
    assert [gen.handle(signed(BODY, "secret"), BODY)[0] for _ in range(3)] == [500, 500, 200]
    assert gen.handle({**signed(BODY, "secret"), "x-fake-status": "503"}, BODY)[0] == 503
    with pytest.raises(ValueError):
        gen.add_fault(42)


def test_a_slow_fault_delays_the_answer_of_that_article_only() -> None:
    slept: list[float] = []
    gen = FakeGenerator("secret", delay=0.2, sleep=slept.append)
    gen.add_fault(200, article_id=json.loads(BODY)["article_id"], delay=3.0)
    gen.add_fault(503, article_id="other", delay=0.5)
    assert [gen.handle(signed(BODY, "secret"), BODY)[0] for _ in range(2)] == [200, 200]
    assert slept == [3.0, 0.2]
    with pytest.raises(ValueError):
        gen.add_fault(200, delay=-1)


def test_a_scheduled_event_is_shaped_as_eventbridge_sends_it() -> None:
    event = scheduled_event(
        "arn:aws:events:us-east-1:123456789012:rule/r", datetime(2026, 11, 28, 2, tzinfo=UTC), "eu-west-1"
    )
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["time"] == "2026-11-28T02:00:00Z" and event["resources"] == [
        "arn:aws:events:us-east-1:123456789012:rule/r"
    ]
    assert event["region"] == "eu-west-1" and event["detail"] == {} and event["id"]


def schedule(name: str, handler: Any, expression: str = "cron(0 2 * * ? *)") -> sources.ScheduleSource:
    return sources.ScheduleSource(name, handler, f"inkwell-local-{name}", expression, rule_arn=f"arn:rule/{name}")


class FakeEvents:
    def __init__(self, state: str = "ENABLED") -> None:
        self.state = state

    def describe_rule(self, Name: str) -> dict[str, str]:  # noqa: N803
        return {"State": self.state}


def test_firing_on_demand_finds_a_schedule_by_any_of_its_names_and_reports_errors() -> None:
    calls: list[Any] = []

    def boom(event: Any, ctx: Any) -> None:
        raise RuntimeError("broken")

    sched = Scheduler(
        [schedule("daily_report", lambda e, c: calls.append(e)), schedule("bad", boom)],
        FakeEvents(),
        "us-east-1",
        threading.Event(),
    )
    for name in ("daily_report", "daily-report", "inkwell-local-daily_report"):
        assert sched.fire(name)["status"] == "ok"
    assert [e["resources"] for e in calls] == [["arn:rule/daily_report"]] * 3
    failed = sched.fire("bad")
    assert (failed["status"], failed["error"]) == ("error", "RuntimeError: broken")
    with pytest.raises(UnknownSchedule):
        sched.fire("nope")


def test_the_scheduler_fires_at_the_expression_times_and_skips_disabled_rules() -> None:
    now = [datetime(2026, 11, 28, 1, 59, 59, tzinfo=UTC).timestamp()]
    fired: list[str] = []
    stop = threading.Event()
    events = FakeEvents()
    sched = Scheduler(
        [schedule("nightly", lambda e, c: fired.append(e["time"]))], events, "us-east-1", stop, clock=lambda: now[0]
    )
    waits: list[float] = []

    def wait(timeout: float) -> bool:  # the scheduler's sleep: advance the fake clock instead
        waits.append(timeout)
        now[0] += timeout
        if len(waits) == 2:
            events.state = "DISABLED"
        if len(waits) >= 3:
            stop.set()
        return stop.is_set()

    stop.wait = wait  # type: ignore[method-assign]
    sched.run()
    sched._pool.shutdown(wait=True)
    assert fired == ["2026-11-28T02:00:00Z"]  # the next night's firing found the rule disabled
    assert waits[0] == pytest.approx(1.0)


def test_request_contexts_carry_what_api_gateway_sends() -> None:
    conn = Connection(new_connection_id(), "10.0.0.7", "agent")
    ctx = request_context(conn, "$connect", "CONNECT", domain="127.0.0.1:8001", stage="local", api_id="local")
    assert ctx["connectionId"] == conn.id and len(conn.id) == 16
    assert ctx["identity"] == {"sourceIp": "10.0.0.7", "userAgent": "agent"}
    assert (ctx["routeKey"], ctx["eventType"], ctx["domainName"], ctx["stage"], ctx["apiId"]) == (
        "$connect",
        "CONNECT",
        "127.0.0.1:8001",
        "local",
        "local",
    )
    assert ctx["requestId"] and ctx["connectedAt"] <= ctx["requestTimeEpoch"]


def test_handlers_are_discovered_from_the_chalice_app_with_deploy_names() -> None:
    app = Chalice(app_name="inkwell")

    @app.on_sqs_message(queue="inkwell-test-articles", batch_size=5)
    def articles_worker(event: Any) -> None: ...

    @app.schedule(Rate(5, unit=Rate.MINUTES))
    def every_five(event: Any) -> None: ...

    @app.schedule("cron(0 2 * * ? *)", name="nightly")
    def nightly_job(event: Any) -> None: ...

    (queue,) = sources.sqs_sources(app)
    assert (queue.name, queue.function_name, queue.queue_name, queue.batch_size) == (
        "articles_worker",
        "inkwell-test-articles_worker",
        "inkwell-test-articles",
        5,
    )
    assert queue.timeout == 120  # the catalogue's articles function timeout
    assert [(s.name, s.function_name, s.expression) for s in sources.schedule_sources(app)] == [
        ("every_five", "inkwell-test-every_five", "rate(5 minutes)"),
        ("nightly", "inkwell-test-nightly", "cron(0 2 * * ? *)"),
    ]


def test_the_local_stack_s_mappings_give_each_priority_queue_its_own_concurrency() -> None:
    import app
    from chalicelib import catalog

    # by catalogue name: `app` binds `inkwell-<stage>-<name>` under the stage of its first import
    most = {q.queue_name.split("-", 2)[2]: q.concurrency for q in sources.sqs_sources(app.app)}
    for name in catalog.job_queues():
        assert most[f"{name}-high"] == catalog.queue(name).high_concurrency
        assert most[name] == catalog.queue(name).concurrency
    assert most["articles-high"] != most["articles"]


def test_the_stack_reads_its_ports_and_admin_from_the_environment() -> None:
    cfg = StackConfig.from_env(
        {"INKWELL_HTTP_PORT": "9000", "INKWELL_ADMIN_PASSWORD": "pw-123456", "INKWELL_WS_MAX_AGE": "2.5"}
    )
    assert (cfg.http_port, cfg.ws_port, cfg.aws_port, cfg.admin_email) == (9000, 8001, 5000, "admin@example.com")
    assert (cfg.admin_password, cfg.ws_max_age) == ("pw-123456", 2.5)
    generated = StackConfig.from_env({})
    assert len(generated.admin_password) >= 12 and generated.admin_password != StackConfig.from_env({}).admin_password


def test_a_slot_that_passes_between_construction_and_the_first_run_still_fires() -> None:
    now = [datetime(2026, 11, 28, 1, 59, 59, tzinfo=UTC).timestamp()]
    fired: list[str] = []
    stop = threading.Event()
    sched = Scheduler(
        [schedule("nightly", lambda e, c: fired.append(e["time"]))],
        FakeEvents(),
        "us-east-1",
        stop,
        clock=lambda: now[0],
    )
    now[0] += 90  # a slow start-up on a fast clock

    def wait(timeout: float) -> bool:
        stop.set()
        return True

    stop.wait = wait  # type: ignore[method-assign]
    sched.run()
    sched._pool.shutdown(wait=True)
    assert fired == ["2026-11-28T02:00:00Z"]


def test_under_load_the_generator_fails_a_share_at_random_and_answers_429_above_its_rate() -> None:
    now = [100.25]
    gen = FakeGenerator("secret", delay=0.0, sleep=lambda s: None, clock=lambda: now[0])
    gen.set_load(0.3, rate_limit=1000, seed=7)
    statuses = []
    for i in range(1000):
        now[0] = 100.25 + i / 1000
        statuses.append(gen.call(signed(BODY, "secret", now[0]), BODY)[0])
    assert 250 <= statuses.count(500) <= 350 and statuses.count(500) + statuses.count(200) == 1000

    gen.set_load(0.0, rate_limit=3)
    now[0] = 200.75
    answers = [gen.call(signed(BODY, "secret", now[0]), BODY) for _ in range(5)]
    assert [a[0] for a in answers] == [200, 200, 200, 429, 429]
    assert answers[3][2] == {"Retry-After": "1"}
    now[0] = 201.0  # a new second
    assert gen.call(signed(BODY, "secret", now[0]), BODY)[0] == 200
    assert [c["status"] for c in gen.log] == [200, 200, 200, 429, 429, 200]
    assert gen.log[0] == {"at": 200.75, "article_id": json.loads(BODY)["article_id"], "status": 200}
    with pytest.raises(ValueError):
        gen.set_load(1.5, None)


def test_the_banner_prints_a_generated_admin_password_but_never_a_supplied_one():
    from local.stack import Stack

    def banner(env):
        cfg = StackConfig.from_env(env)
        fake = type("FakeStack", (), {"cfg": cfg, "startup_seconds": 1.0})()
        fake.endpoints = lambda: {
            "stage": "local",
            "http_url": "http://127.0.0.1:8000",
            "ws_url": "ws://127.0.0.1:8001",
            "management_endpoint": "http://127.0.0.1:8002",
            "aws_endpoint": "http://127.0.0.1:5000",
            "region": "us-east-1",
            "generator_url": "http://127.0.0.1:8002/generator",
            "control_url": "http://127.0.0.1:8002",
            "admin_email": cfg.admin_email,
            "admin_password": cfg.admin_password,
            "queue_handlers": {},
        }
        return cfg, Stack.banner(fake)

    generated, printed = banner({})
    assert f"password: {generated.admin_password}" in printed
    supplied, printed = banner({"INKWELL_ADMIN_PASSWORD": "operator-chosen-secret"})
    assert supplied.admin_password == "operator-chosen-secret"
    assert "operator-chosen-secret" not in printed
    assert "password: (from INKWELL_ADMIN_PASSWORD)" in printed


class FakeScheduler:
    """moto's EventBridge Scheduler as the emulator reads it: one recurring schedule."""

    def __init__(self, expression: str, zone: str) -> None:
        self.found = {
            "Arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/inkwell-local/daily",
            "ScheduleExpression": expression,
            "ScheduleExpressionTimezone": zone,
            "State": "ENABLED",
            "Target": {
                "Input": '{"schedule":"daily","time":"<aws.scheduler.scheduled-time>","source":"aws.scheduler"}'
            },
        }

    def get_schedule(self, Name: str, GroupName: str) -> dict[str, Any]:  # noqa: N803
        return self.found

    def list_schedules(self, **_: Any) -> dict[str, Any]:
        return {"Schedules": []}


def test_the_scheduler_fires_a_scheduler_schedule_in_its_zone_and_follows_a_change() -> None:
    # GIVEN 09:00 Europe/Paris, on a clock at 06:59:59Z on a summer day
    now = [datetime(2026, 7, 1, 6, 59, 59, tzinfo=UTC).timestamp()]
    fired: list[dict[str, Any]] = []
    stop = threading.Event()
    remote = FakeScheduler("cron(0 9 * * ? *)", "Europe/Paris")
    source = sources.ScheduleSource("daily", lambda e, c: fired.append(e), "inkwell-local-daily", "cron(0 2 * * ? *)")
    source.schedule = "daily"
    sched = Scheduler([source], FakeEvents(), "us-east-1", stop, clock=lambda: now[0], scheduler=remote, group="g")
    sched.REFRESH = 0.0  # read the schedule back at every step
    steps: list[float] = []

    def wait(timeout: float) -> bool:
        steps.append(timeout)
        now[0] += max(timeout, 1.0)
        if len(steps) == 2:  # WHEN an admin moves it to 10:00 UTC (after the first firing)
            remote.found.update(ScheduleExpression="cron(0 10 * * ? *)", ScheduleExpressionTimezone="UTC")
        if now[0] >= datetime(2026, 7, 1, 10, 0, 30, tzinfo=UTC).timestamp():
            stop.set()
        return stop.is_set()

    stop.wait = wait  # type: ignore[method-assign]
    sched.run()
    sched._pool.shutdown(wait=True)
    # THEN it fired at 07:00Z with Scheduler's input (its scheduled time), then at 10:00Z
    assert [e["time"] for e in fired] == ["2026-07-01T07:00:00Z", "2026-07-01T10:00:00Z"]
    assert fired[0]["source"] == "aws.scheduler"
    assert sched.describe()[0]["timezone"] == "UTC"
