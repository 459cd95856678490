"""local.faults without I/O: rules, seeded draws, and the emulator faults on an SQS poller with a
fake queue (duplicate delivery, lost DeleteMessage, a killed invocation, one past its timeout)."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from local.faults import FaultInjector, Killed
from local.sources import SqsSource
from local.sqs_lambda import SqsPoller

QUEUE = "inkwell-test-articles"


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.now += seconds


def test_rates_draw_the_same_faults_for_the_same_seed() -> None:
    def draws(seed: int) -> list[bool]:
        injector = FaultInjector(seed=seed)
        injector.configure({"kind": "error", "service": "sqs", "rate": 0.3})
        return [injector.pick(("error",), "sqs", "SendMessage") is not None for _ in range(200)]

    first = draws(5)
    assert first == draws(5) != draws(6)
    assert 30 < sum(first) < 90  # about 30 %


def test_a_count_fires_that_many_times_then_the_rule_is_gone() -> None:
    injector = FaultInjector()
    injector.configure({"kind": "error", "service": "dynamodb", "operation": "PutItem", "count": 2})
    assert injector.pick(("error",), "dynamodb", "GetItem") is None  # another operation
    assert injector.pick(("latency",), "dynamodb", "PutItem") is None  # another kind
    assert [injector.pick(("error",), "dynamodb", "PutItem") is not None for _ in range(3)] == [True, True, False]
    assert injector.rules == [] and injector.injected == {"error": 2}


def test_an_outage_holds_for_its_seconds() -> None:
    fake = FakeTime()
    injector = FaultInjector(clock=fake.clock)
    injector.configure({"kind": "outage", "service": "dynamodb", "seconds": 2})
    assert all(injector.pick(("outage",), "dynamodb", op) for op in ("PutItem", "Query", "GetItem"))
    fake.now = 2.0
    assert injector.pick(("outage",), "dynamodb", "PutItem") is None and injector.rules == []


def test_a_killed_invocation_stops_at_a_random_aws_call_and_stays_stopped() -> None:
    injector = FaultInjector(seed=2)
    injector.configure({"kind": "kill_invocation", "within": 5})
    with injector.invocation(QUEUE, 60) as current:
        assert current is not None and 0 <= current.at_call <= 5
        for _ in range(current.at_call):
            injector.checkpoint()  # the calls before the kill point go through
        with pytest.raises(Killed):
            injector.checkpoint()
        with pytest.raises(Killed):  # whatever the code tries next (a finally, a handler)
            injector.checkpoint()
    injector.checkpoint()  # outside the invocation: nothing


def test_an_invocation_that_never_reaches_its_kill_point_is_killed_at_its_end() -> None:
    injector = FaultInjector(seed=2)
    injector.configure({"kind": "kill_invocation", "within": 1000})
    with injector.invocation(QUEUE, 60) as current, pytest.raises(Killed):
        assert current is not None
        injector.finish()


# --- on the poller -----------------------------------------------------------------------------


def message(n: int) -> dict[str, Any]:
    return {"MessageId": f"m{n}", "ReceiptHandle": f"r{n}", "Body": str(n), "Attributes": {}}


class FakeSqs:
    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.batches = batches
        self.deleted: list[str] = []

    def receive_message(self, **_: Any) -> dict[str, Any]:
        return {"Messages": self.batches.pop(0) if self.batches else []}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:  # noqa: N803
        self.deleted += [e["ReceiptHandle"] for e in Entries]


class FakeLambda:
    def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:  # noqa: N803
        return {"State": "Enabled", "FunctionResponseTypes": ["ReportBatchItemFailures"], "BatchSize": 10}


def poller(injector: FaultInjector, handler: Any, batches: list[list[dict[str, Any]]]) -> tuple[SqsPoller, FakeSqs]:
    source = SqsSource("jobs_articles", handler, "fn", QUEUE, 10, 0, 60, queue_url="url", queue_arn="arn")
    sqs = FakeSqs(batches)
    return SqsPoller(source, sqs, FakeLambda(), "us-east-1", threading.Event(), faults=injector), sqs


def test_a_lost_delete_leaves_the_finished_message_on_the_queue() -> None:
    injector = FaultInjector()
    injector.configure({"kind": "lost_delete", "queue": "articles", "count": 1})
    p, sqs = poller(injector, lambda event, context: None, [[message(1), message(2)]])
    summary = p.poll_once(0)
    assert summary is not None and summary["failed"] == [] and sqs.deleted == ["r2"]


def test_a_duplicate_delivery_hands_the_message_to_a_second_invocation() -> None:
    injector = FaultInjector()
    injector.configure({"kind": "duplicate_delivery", "queue": QUEUE, "count": 1})
    seen: list[str] = []
    done = threading.Semaphore(0)

    def handler(event: dict[str, Any], context: Any) -> None:
        seen.extend(r["messageId"] for r in event["Records"])
        done.release()

    stop = threading.Event()
    p, sqs = poller(injector, handler, [[message(1), message(2)]])
    p._stop = stop  # noqa: SLF001
    p.thread.start()
    try:
        assert done.acquire(timeout=5) and done.acquire(timeout=5)
    finally:
        stop.set()
        p.thread.join(5)
    assert sorted(seen) == ["m1", "m1", "m2"]


def test_a_killed_invocation_abandons_its_work_and_deletes_nothing() -> None:
    injector = FaultInjector(seed=1)
    injector.configure({"kind": "kill_invocation", "within": 0})  # at its first AWS call
    work: list[str] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        for record in event["Records"]:
            try:
                injector.checkpoint()  # what the before-send hook does for each AWS call
                work.append(record["messageId"])
            except Exception:  # the app's handlers cannot catch a kill
                work.append("handled")

    p, sqs = poller(injector, handler, [[message(1), message(2)]])
    summary = p.poll_once(0)
    assert summary is not None and summary["outcome"].startswith("stopped")
    assert work == [] and sqs.deleted == []  # both messages come back after the visibility timeout
    assert p.poll_once(0) is None  # the poller goes on


def test_an_invocation_past_its_timeout_is_stopped_and_its_context_says_so() -> None:
    fake = FakeTime()
    injector = FaultInjector(seed=1, clock=fake.clock, sleep=fake.sleep)
    injector.configure({"kind": "overrun_timeout", "seconds": 3, "within": 0})
    remaining: list[int] = []

    def handler(event: dict[str, Any], context: Any) -> None:
        remaining.append(context.get_remaining_time_in_millis())
        injector.checkpoint()  # the slow call: it stalls 3 s, past the function's timeout
        remaining.append(-1)

    p, sqs = poller(injector, handler, [[message(1)]])
    summary = p.poll_once(0)
    assert summary is not None and "timed out" in summary["outcome"] and sqs.deleted == []
    assert len(remaining) == 1 and 0 < remaining[0] <= 3000 and fake.now == 3.0
