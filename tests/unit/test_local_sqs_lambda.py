"""local.sqs_lambda: Lambda's SQS event shape and its batch item failure rules, with a fake queue."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from local.sources import SqsSource
from local.sqs_lambda import BatchFailed, SqsPoller, failed_ids, lambda_event

ARN = "arn:aws:sqs:us-east-1:123456789012:inkwell-local-articles"


def message(n: int, count: int = 1) -> dict[str, Any]:
    return {
        "MessageId": f"m{n}",
        "ReceiptHandle": f"r{n}",
        "Body": f'{{"n": {n}}}',
        "MD5OfBody": "x",
        "Attributes": {"ApproximateReceiveCount": str(count), "SentTimestamp": "1", "Internal": "dropped"},
        "MessageAttributes": {"kind": {"StringValue": "job", "DataType": "String"}},
    }


def test_lambda_event_carries_ids_receipt_handles_and_receive_counts() -> None:
    (record,) = lambda_event([message(1, count=3)], ARN, "us-east-1")["Records"]
    assert record["messageId"] == "m1" and record["receiptHandle"] == "r1" and record["body"] == '{"n": 1}'
    assert record["attributes"] == {"ApproximateReceiveCount": "3", "SentTimestamp": "1"}
    assert record["messageAttributes"]["kind"]["stringValue"] == "job"
    assert (record["eventSource"], record["eventSourceARN"], record["awsRegion"]) == ("aws:sqs", ARN, "us-east-1")


@pytest.mark.parametrize(
    ("answer", "failed"),
    [
        (None, set()),
        ({}, set()),
        ({"batchItemFailures": []}, set()),
        ({"batchItemFailures": None}, set()),
        ({"batchItemFailures": [{"itemIdentifier": "m2"}]}, {"m2"}),
        ({"batchItemFailures": [{"itemIdentifier": "m1"}, {"itemIdentifier": "m2"}]}, {"m1", "m2"}),
    ],
)
def test_failed_ids_follow_report_batch_item_failures(answer: Any, failed: set[str]) -> None:
    assert failed_ids(answer, {"m1", "m2"}) == failed


@pytest.mark.parametrize(
    "answer",
    [
        "done",
        ["m1"],
        {"batchItemFailures": "m1"},
        {"batchItemFailures": [{"itemIdentifier": ""}]},
        {"batchItemFailures": [{"itemIdentifier": None}]},
        {"batchItemFailures": [{"id": "m1"}]},
        {"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]},
        {"batchItemFailures": ["m1"]},
    ],
)
def test_a_malformed_answer_fails_the_whole_batch(answer: Any) -> None:
    with pytest.raises(BatchFailed):
        failed_ids(answer, {"m1", "m2"})


class FakeSqs:
    def __init__(self, batches: list[list[dict[str, Any]]]) -> None:
        self.batches = batches
        self.deleted: list[str] = []
        self.receives: list[dict[str, Any]] = []

    def receive_message(self, **kwargs: Any) -> dict[str, Any]:
        self.receives.append(kwargs)
        return {"Messages": self.batches.pop(0) if self.batches else []}

    def delete_message_batch(self, QueueUrl: str, Entries: list[dict[str, str]]) -> None:  # noqa: N803
        self.deleted += [e["ReceiptHandle"] for e in Entries]


class FakeLambda:
    def __init__(self, state: str = "Enabled", reports: bool = True) -> None:
        self.state, self.reports, self.reads = state, reports, 0

    def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:  # noqa: N803
        self.reads += 1
        return {"State": self.state, "FunctionResponseTypes": ["ReportBatchItemFailures"] if self.reports else []}


def poller(handler: Any, batches: list[list[dict[str, Any]]], lam: FakeLambda | None = None, **kw: Any) -> Any:
    source = SqsSource("worker", handler, "inkwell-local-worker", "q", batch_size=5, batching_window=0, timeout=60)
    source.queue_url, source.queue_arn, source.mapping_uuid = "url", ARN, "uuid"
    sqs = FakeSqs(batches)
    return SqsPoller(source, sqs, lam or FakeLambda(), "us-east-1", threading.Event(), **kw), sqs


def test_successes_are_deleted_and_reported_failures_stay() -> None:
    p, sqs = poller(lambda event, ctx: {"batchItemFailures": [{"itemIdentifier": "m2"}]}, [[message(1), message(2)]])
    summary = p.poll_once(wait_seconds=0)
    assert sqs.deleted == ["r1"] and summary["failed"] == ["m2"]
    assert sqs.receives[0]["MaxNumberOfMessages"] == 5


def test_an_exception_leaves_every_message_of_the_batch() -> None:
    def boom(event: Any, ctx: Any) -> None:
        raise RuntimeError("crash")

    p, sqs = poller(boom, [[message(1), message(2)]])
    summary = p.poll_once(wait_seconds=0)
    assert sqs.deleted == [] and summary["failed"] == ["m1", "m2"]


def test_without_report_batch_item_failures_a_success_deletes_the_whole_batch() -> None:
    p, sqs = poller(
        lambda event, ctx: {"batchItemFailures": [{"itemIdentifier": "m1"}]},
        [[message(1), message(2)]],
        FakeLambda(reports=False),
    )
    p.poll_once(wait_seconds=0)
    assert sqs.deleted == ["r1", "r2"]


def test_the_handler_gets_a_lambda_event_and_context() -> None:
    seen: list[Any] = []
    p, _ = poller(lambda event, ctx: seen.append((event, ctx.function_name, ctx.aws_request_id)), [[message(7)]])
    p.poll_once(wait_seconds=0)
    event, function, request_id = seen[0]
    assert event["Records"][0]["messageId"] == "m7" and function == "inkwell-local-worker" and request_id


def test_an_empty_receive_invokes_nothing() -> None:
    p, sqs = poller(lambda event, ctx: pytest.fail("invoked"), [])
    assert p.poll_once(wait_seconds=0) is None and sqs.deleted == []


def test_the_mapping_state_is_read_at_most_once_a_second() -> None:
    now = [100.0]
    lam = FakeLambda(state="Disabled")
    p, _ = poller(lambda e, c: None, [], lam, clock=lambda: now[0])
    assert p.mapping_state() == (False, True)
    lam.state = "Enabled"
    now[0] += 0.5
    assert p.mapping_state()[0] is False and lam.reads == 1
    now[0] += 0.6
    assert p.mapping_state()[0] is True and lam.reads == 2


def test_a_batching_window_keeps_receiving_until_the_batch_is_full() -> None:
    now = [0.0]
    p, sqs = poller(lambda e, c: None, [[message(1)], [message(2), message(3)], [message(4)]], clock=lambda: now[0])
    p.source.batch_size, p.source.batching_window = 3, 5
    assert [m["MessageId"] for m in p.receive(wait_seconds=0)] == ["m1", "m2", "m3"]
    assert [r["MaxNumberOfMessages"] for r in sqs.receives] == [3, 2]


def test_a_handler_running_past_its_function_timeout_fails_the_batch(monkeypatch: pytest.MonkeyPatch) -> None:
    import local.sqs_lambda as module

    ticks = iter([0.0, 61.0, 61.0, 61.0])
    monkeypatch.setattr(module.time, "perf_counter", lambda: next(ticks))
    p, sqs = poller(lambda event, ctx: None, [[message(1)]])
    summary = p.poll_once(wait_seconds=0)
    assert sqs.deleted == [] and summary["failed"] == ["m1"] and "timed out" in summary["outcome"]


def test_the_batch_size_follows_the_mapping() -> None:
    class Resized(FakeLambda):
        def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:  # noqa: N803
            return {**super().get_event_source_mapping(UUID), "BatchSize": 2}

    p, sqs = poller(lambda e, c: None, [[message(1), message(2)]], Resized())
    p.mapping_state()
    p.poll_once(wait_seconds=0)
    assert sqs.receives[0]["MaxNumberOfMessages"] == 2


class Scaled(FakeLambda):
    def __init__(self, most: int) -> None:
        super().__init__()
        self.most = most

    def get_event_source_mapping(self, UUID: str) -> dict[str, Any]:  # noqa: N803
        return {**super().get_event_source_mapping(UUID), "ScalingConfig": {"MaximumConcurrency": self.most}}


def test_a_mapping_runs_up_to_its_maximum_concurrency_of_invocations_at_once() -> None:
    # GIVEN a mapping with a maximum concurrency of 3, and 8 batches whose handler blocks
    lock, release = threading.Lock(), threading.Event()
    running: list[int] = [0]
    peak: list[int] = [0]
    threads: set[str] = set()

    def handler(event: Any, ctx: Any) -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            threads.add(threading.current_thread().name + str(threading.get_ident()))
        release.wait(5)
        with lock:
            running[0] -= 1

    p, sqs = poller(handler, [[message(n)] for n in range(8)], Scaled(3))
    p.thread.start()
    # WHEN the poller runs: THEN exactly 3 invocations run at once, each in its own thread
    deadline = threading.Event()
    for _ in range(100):
        if running[0] == 3 and len(sqs.receives) == 3:
            break
        deadline.wait(0.02)
    deadline.wait(0.3)  # time enough to start a 4th, were it allowed
    assert running[0] == 3 and p.running == 3 and len(threads) == 3
    # AND once released, every batch runs, never more than 3 at once
    release.set()
    for _ in range(200):
        if len(sqs.deleted) == 8:
            break
        deadline.wait(0.02)
    p._stop.set()
    p.thread.join(5)
    assert sorted(sqs.deleted) == sorted(f"r{n}" for n in range(8)) and peak[0] == 3


def test_the_maximum_concurrency_follows_the_mapping() -> None:
    lam = Scaled(7)
    p, _ = poller(lambda e, c: None, [], lam)
    p.mapping_state()
    assert p.concurrency == 7
