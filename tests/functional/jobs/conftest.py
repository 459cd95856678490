"""Fixtures for the job tests on moto: one clock for Inkwell and moto's SQS, a Lambda context,
and a poller that does what Lambda's SQS event source does (receive, invoke, delete the
successes), so backoff, delays, redrive and leases play out without waiting."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from chalicelib import aws, catalog, config, events, timeutil
from chalicelib.jobs import processor, worker

# The contract's fields of a job (GET /api/jobs/{id}); more may be added, none removed.
CONTRACT_FIELDS = {
    "id",
    "queue",
    "type",
    "state",
    "attempts",
    "max_attempts",
    "progress",
    "payload",
    "result",
    "error",
    "created_at",
    "updated_at",
}


class Clock:
    def __init__(self, start: float) -> None:
        self.t = start

    def now(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@pytest.fixture
def clock(aws_mock: None, monkeypatch: pytest.MonkeyPatch) -> Clock:
    import moto.sqs.models as sqs_models

    c = Clock(time.time())
    monkeypatch.setattr(timeutil, "now", c.now)
    monkeypatch.setattr(sqs_models, "unix_time", lambda *a: c.t)
    monkeypatch.setattr(sqs_models, "unix_time_millis", lambda *a: c.t * 1000.0)
    return c


class LambdaContext:
    def __init__(self, clock: Clock, seconds: float) -> None:
        self.clock = clock
        self.deadline = clock.t + seconds
        self.aws_request_id = uuid.uuid4().hex

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - self.clock.t) * 1000)


class Poller:
    """Lambda's SQS event source mapping, by hand, delivering to the deployed workers
    (`app.job_worker`, with their holds and guards) unless a test gives its own `worker_for`."""

    def __init__(self, clock: Clock) -> None:
        from app import job_worker

        self.clock = clock
        self.sqs = aws.client("sqs")
        self.responses: list[dict[str, Any]] = []
        self.worker_for: Callable[[str], worker.Worker] = job_worker

    def url(self, name: str) -> str:
        return aws.queue_url(name)

    def receive(self, queue: str, limit: int = 10) -> list[dict[str, Any]]:
        spec = catalog.queue(queue)
        messages = self.sqs.receive_message(
            QueueUrl=self.url(queue),
            MaxNumberOfMessages=limit,
            AttributeNames=["All"],
            WaitTimeSeconds=0,
            VisibilityTimeout=spec.visibility_timeout,
        ).get("Messages", [])
        return messages

    def event(self, messages: list[dict[str, Any]], queue: str) -> dict[str, Any]:
        arn = f"arn:aws:sqs:us-east-1:123456789012:{config.get().resource_name(queue)}"
        return {
            "Records": [
                {
                    "messageId": m["MessageId"],
                    "receiptHandle": m["ReceiptHandle"],
                    "body": m["Body"],
                    "attributes": m.get("Attributes", {}),
                    "messageAttributes": {},
                    "md5OfBody": m.get("MD5OfBody", ""),
                    "eventSource": "aws:sqs",
                    "eventSourceARN": arn,
                    "awsRegion": "us-east-1",
                }
                for m in messages
            ]
        }

    def deliver(
        self, queue: str, messages: list[dict[str, Any]], context: Any = None, delete: bool = True
    ) -> dict[str, Any]:
        context = context or LambdaContext(self.clock, catalog.queue(queue).function_timeout)
        response = self.worker_for(queue).handle(self.event(messages, queue), context)
        self.responses.append(response)
        if delete:
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            for m in messages:
                if m["MessageId"] not in failed:
                    self.sqs.delete_message(QueueUrl=self.url(queue), ReceiptHandle=m["ReceiptHandle"])
        return response

    def run_once(self, queue: str, context: Any = None, limit: int = 10) -> dict[str, Any] | None:
        messages = self.receive(queue, limit)
        return self.deliver(queue, messages, context) if messages else None

    def drain(self, queue: str, rounds: int = 30, step: float = 1.0) -> int:
        """Deliver until the queue is empty, moving the clock `step` s between empty polls;
        returns the number of deliveries."""
        delivered = 0
        for _ in range(rounds):
            response = self.run_once(queue)
            if response is None:
                if self.visible_and_hidden(queue) == (0, 0):
                    return delivered
                self.clock.advance(step)
            else:
                delivered += 1
        return delivered

    def attributes(self, name: str) -> dict[str, int]:
        attrs = self.sqs.get_queue_attributes(
            QueueUrl=self.url(name),
            AttributeNames=[
                "ApproximateNumberOfMessages",
                "ApproximateNumberOfMessagesNotVisible",
                "ApproximateNumberOfMessagesDelayed",
            ],
        )["Attributes"]
        return {k: int(v) for k, v in attrs.items()}

    def visible_and_hidden(self, name: str) -> tuple[int, int]:
        a = self.attributes(name)
        return a["ApproximateNumberOfMessages"], a["ApproximateNumberOfMessagesNotVisible"] + a[
            "ApproximateNumberOfMessagesDelayed"
        ]

    def dead_letter_bodies(self, queue: str) -> list[dict[str, Any]]:
        messages = self.sqs.receive_message(
            QueueUrl=self.url(f"{queue}-dlq"), MaxNumberOfMessages=10, WaitTimeSeconds=0, VisibilityTimeout=0
        ).get("Messages", [])
        return [_loads(m["Body"]) for m in messages]


def _loads(body: str) -> Any:
    try:
        return json.loads(body)
    except ValueError:
        return body


@pytest.fixture
def poller(clock: Clock) -> Poller:
    return Poller(clock)


@pytest.fixture
def job_events() -> Iterator[list[events.JobEvent]]:
    seen: list[events.JobEvent] = []
    unsubscribe = events.subscribe(events.JobEvent, seen.append)
    yield seen
    unsubscribe()


@pytest.fixture
def register(monkeypatch: pytest.MonkeyPatch) -> Callable[..., Any]:
    """Register a test processor for (queue, type) for this test only."""

    def _register(queue: str, job_type: str, fn: Any, **hooks: Any) -> Any:
        import app

        monkeypatch.setitem(app.processors(), (queue, job_type), processor.Processor(queue, job_type, fn, **hooks))
        return fn

    return _register


@pytest.fixture
def sqs_calls(aws_mock: None) -> Iterator[list[tuple[str, dict[str, Any]]]]:
    """Every SQS request Inkwell's client makes, as (operation, params)."""
    calls: list[tuple[str, dict[str, Any]]] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        calls.append((model.name, params))

    client = aws.client("sqs")
    client.meta.events.register("before-parameter-build.sqs", hook)
    yield calls
    client.meta.events.unregister("before-parameter-build.sqs", hook)


class FakeGenerator:
    """The article webhook on 127.0.0.1: records each request, answers from `answers` (status,
    body, and optionally response headers) in turn, the last one repeating."""

    def __init__(self) -> None:
        import http.server
        import threading

        self.requests: list[dict[str, Any]] = []
        self.answers: list[tuple[int, Any]] = [(200, None)]
        self.delay = 0.0  # seconds each call takes (to hold a lease while another delivery claims)
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                outer.requests.append({"headers": dict(self.headers), "body": body})
                time.sleep(outer.delay)
                status, answer, *extra = outer.answers[min(len(outer.requests), len(outer.answers)) - 1]
                if answer is None:
                    answer = {"content": f"Generated text #{len(outer.requests)}"}
                raw = answer if isinstance(answer, bytes) else json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                for name, value in (extra[0] if extra else {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(raw)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/generate"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def generator(monkeypatch: pytest.MonkeyPatch, clean_env: None) -> Iterator[FakeGenerator]:
    fake = FakeGenerator()
    monkeypatch.setenv("ARTICLE_WEBHOOK_URL", fake.url)
    config.reset()
    yield fake
    fake.close()


@pytest.fixture
def published() -> Iterator[list[Any]]:
    """Every ArticleStatusChanged, Alert and ReportStored published during the test."""
    seen: list[Any] = []
    stops = [
        events.subscribe(kind, seen.append) for kind in (events.ArticleStatusChanged, events.Alert, events.ReportStored)
    ]
    yield seen
    for stop in stops:
        stop()
