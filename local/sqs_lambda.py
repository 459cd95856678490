"""SQS -> Lambda: a poller per `@app.on_sqs_message` handler, behaving as Lambda's does.

It long-polls the queue with the handler's batch size, builds the Lambda SQS event (real
`messageId`, `receiptHandle`, attributes with `ApproximateReceiveCount`), invokes the handler and
deletes what succeeded. With `ReportBatchItemFailures` on the mapping, the `batchItemFailures`
answer keeps the failed messages, which come back after their visibility timeout and reach the
dead-letter queue through the redrive policy; an exception fails the whole batch. Before each
receive it obeys the event source mapping's state (read at most once a second), so
`lambda.update_event_source_mapping(UUID=..., Enabled=False)` pauses delivery as on AWS.

Like Lambda, a mapping runs up to its maximum concurrency (`ScalingConfig.MaximumConcurrency`,
read with the state; `DEFAULT_CONCURRENCY` without one) of invocations at once, each batch in
its own thread: the poller receives the next batch while earlier ones run, and waits for a free
slot when all are busy.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

from chalice.local import LambdaContext

from local import logs
from local.faults import FaultInjector, Killed
from local.sources import SqsSource
from local.threads import Workers

STATE_TTL = 1.0  # seconds a mapping's state is cached
WAIT_SECONDS = 1  # long-poll wait: short enough to stop promptly
DEFAULT_CONCURRENCY = 5  # a mapping without a maximum concurrency (Lambda starts with 5 pollers)


def lambda_event(messages: list[dict[str, Any]], queue_arn: str, region: str) -> dict[str, Any]:
    """The event Lambda passes for a batch of ReceiveMessage results."""
    return {"Records": [_record(m, queue_arn, region) for m in messages]}


def _record(message: dict[str, Any], queue_arn: str, region: str) -> dict[str, Any]:
    attributes = {
        k: v
        for k, v in (message.get("Attributes") or {}).items()
        if k
        in (
            "ApproximateReceiveCount",
            "SentTimestamp",
            "SenderId",
            "ApproximateFirstReceiveTimestamp",
            "MessageGroupId",
            "MessageDeduplicationId",
            "SequenceNumber",
            "AWSTraceHeader",
            "DeadLetterQueueSourceArn",
        )
    }
    message_attributes = {
        name: {
            "stringValue": value.get("StringValue"),
            "binaryValue": value.get("BinaryValue"),
            "stringListValues": value.get("StringListValues", []),
            "binaryListValues": value.get("BinaryListValues", []),
            "dataType": value.get("DataType"),
        }
        for name, value in (message.get("MessageAttributes") or {}).items()
    }
    return {
        "messageId": message["MessageId"],
        "receiptHandle": message["ReceiptHandle"],
        "body": message.get("Body", ""),
        "attributes": attributes,
        "messageAttributes": message_attributes,
        "md5OfBody": message.get("MD5OfBody", ""),
        "eventSource": "aws:sqs",
        "eventSourceARN": queue_arn,
        "awsRegion": region,
    }


class BatchFailed(Exception):
    """The answer fails the whole batch (as Lambda treats a malformed batchItemFailures)."""


def failed_ids(result: Any, message_ids: set[str]) -> set[str]:
    """Message ids a handler's answer reports as failed (Lambda's ReportBatchItemFailures rules).

    None, a dict without failures, or an empty list: all succeeded. An item without an
    identifier, or with one not in the batch, or an answer that is not an object: BatchFailed.
    """
    if result is None:
        return set()
    if not isinstance(result, dict):
        raise BatchFailed(f"the answer is a {type(result).__name__}, not an object")
    failures = result.get("batchItemFailures") or []
    if not isinstance(failures, list):
        raise BatchFailed("batchItemFailures is not a list")
    failed = set()
    for item in failures:
        identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not identifier or identifier not in message_ids:
            raise BatchFailed(f"bad itemIdentifier {identifier!r}")
        failed.add(identifier)
    return failed


class SqsPoller:
    def __init__(
        self,
        source: SqsSource,
        sqs: Any,
        lam: Any,
        region: str,
        stop: threading.Event,
        clock: Callable[[], float] = time.monotonic,
        faults: FaultInjector | None = None,
    ) -> None:
        self.source = source
        self.faults = faults  # the local stack's injector: duplicate deliveries, lost deletes, kills
        self._sqs, self._lam, self._region, self._stop, self._clock = sqs, lam, region, stop, clock
        self._state: tuple[float, bool, bool] | None = None  # (read at, enabled, report failures)
        self.concurrency = DEFAULT_CONCURRENCY
        self._running = 0
        self._slots = threading.Condition()
        self._workers = Workers(f"lambda-{source.name}")  # warm containers: threads and clients reused
        self.thread = threading.Thread(target=self.run, name=f"sqs-{source.name}", daemon=True)

    def mapping_state(self) -> tuple[bool, bool]:
        """(enabled, reports batch item failures), from the mapping, cached STATE_TTL seconds (its
        batch size, which `update_event_source_mapping` may change too, is taken on the way)."""
        now = self._clock()
        if self._state is None or now - self._state[0] >= STATE_TTL:
            mapping = self._lam.get_event_source_mapping(UUID=self.source.mapping_uuid)
            enabled = mapping.get("State") in ("Enabled", "Enabling", "Updating")
            reports = "ReportBatchItemFailures" in (mapping.get("FunctionResponseTypes") or [])
            self._state = (now, enabled, reports)
            self.source.batch_size = int(mapping.get("BatchSize") or self.source.batch_size)
            most = (mapping.get("ScalingConfig") or {}).get("MaximumConcurrency")
            self.concurrency = int(most or DEFAULT_CONCURRENCY)
        return self._state[1], self._state[2]

    def run(self) -> None:
        while not self._stop.is_set():
            try:
                enabled, _ = self.mapping_state()
                if not enabled or not self._free_slot(0.25):
                    self._stop.wait(0.05 if enabled else 0.25)
                    continue
                messages = self.receive()
                if messages:
                    self.start(messages)
                    if duplicates := self._duplicates(messages):
                        self.start(duplicates)
            except Exception as exc:  # the emulator must outlive a bad moment (shutdown, moto hiccup)
                if not self._stop.is_set():
                    logs.line("SQS", f"{self.source.queue_name} poller error: {exc!r}")
                    self._stop.wait(1)
        with self._slots:
            self._slots.wait_for(lambda: self._running == 0)

    @property
    def running(self) -> int:
        """Invocations running now."""
        with self._slots:
            return self._running

    def _free_slot(self, timeout: float) -> bool:
        """Wait up to `timeout` s until fewer than the mapping's maximum concurrency run."""
        with self._slots:
            return self._slots.wait_for(lambda: self._running < self.concurrency, timeout)

    def start(self, messages: list[dict[str, Any]]) -> None:
        """Invoke the handler with this batch in a thread of its own while it runs (one Lambda
        invocation; the thread, like a warm container, runs later invocations too)."""

        def invocation() -> None:
            try:
                self.invoke(messages)
            except Exception as exc:
                logs.line("SQS", f"{self.source.queue_name} invocation error: {exc!r}")
            finally:
                with self._slots:
                    self._running -= 1
                    self._slots.notify_all()

        with self._slots:
            self._running += 1
        self._workers.submit(invocation)

    def _duplicates(self, messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The messages a `duplicate_delivery` fault also hands to a second invocation at once (SQS
        delivers at least once: two pollers may receive the same message)."""
        if self.faults is None:
            return []
        found = [m for m in messages if self.faults.pick(("duplicate_delivery",), queue=self.source.queue_name)]
        if found:
            logs.line("FAULT", f"duplicate_delivery {self.source.queue_name}: {len(found)} message(s) delivered twice")
        return [dict(m) for m in found]

    def receive(self, wait_seconds: int = WAIT_SECONDS) -> list[dict[str, Any]]:
        """Up to batch size messages; keeps receiving within the batching window."""
        wanted = self.source.batch_size
        deadline = self._clock() + self.source.batching_window
        messages: list[dict[str, Any]] = []
        while True:
            messages += self._sqs.receive_message(
                QueueUrl=self.source.queue_url,
                MaxNumberOfMessages=min(10, wanted - len(messages)),
                WaitTimeSeconds=wait_seconds,
                MessageSystemAttributeNames=["All"],
                MessageAttributeNames=["All"],
            ).get("Messages", [])
            if not messages or len(messages) >= wanted or self._clock() >= deadline:
                break
        return messages

    @contextlib.contextmanager
    def _fault_scope(self) -> Iterator[float]:
        """The invocation's function timeout, under the injector's kill or overrun if one fires."""
        if self.faults is None:
            yield float(self.source.timeout)
            return
        with self.faults.invocation(self.source.queue_name, self.source.timeout) as current:
            yield current.stall if current is not None and current.stall else float(self.source.timeout)

    def poll_once(self, wait_seconds: int = WAIT_SECONDS) -> dict[str, Any] | None:
        """Receive one batch, invoke, delete what succeeded; a summary, or None if none came."""
        messages = self.receive(wait_seconds)
        return self.invoke(messages) if messages else None

    def invoke(self, messages: list[dict[str, Any]]) -> dict[str, Any]:
        """Invoke the handler with one received batch and delete what succeeded; a summary."""
        started = time.perf_counter()
        event = lambda_event(messages, self.source.queue_arn, self._region)
        ids = {m["MessageId"] for m in messages}
        failed: set[str] = set()
        outcome, request_id = "ok", "-"
        try:
            with self._fault_scope() as timeout:
                context = LambdaContext(self.source.function_name, 512, int(timeout * 1000))
                request_id = context.aws_request_id
                result = self.source.handler(event, context)
                if self.faults is not None:
                    self.faults.finish()
            elapsed = time.perf_counter() - started
            if elapsed > timeout:
                # Lambda would have stopped it at its timeout: the batch failed (its side effects here
                # ran to the end; on AWS they stop part-way, which idempotent jobs must tolerate).
                raise BatchFailed(f"Task timed out after {timeout} s ({elapsed:.1f} s)")
            _, reports = self.mapping_state()
            if reports:
                failed = failed_ids(result, ids)
                if failed:
                    outcome = "batchItemFailures"
        except Killed as exc:  # its work abandoned where it stood; the batch comes back after the visibility timeout
            failed, outcome = ids, f"stopped: {exc}"
        except BatchFailed as exc:
            failed, outcome = ids, f"whole batch failed: {exc}"
        except Exception as exc:
            failed, outcome = ids, f"whole batch failed: {type(exc).__name__}: {exc}"
        done = [m for m in messages if m["MessageId"] not in failed]
        if self.faults is not None:
            lost = [m for m in done if self.faults.pick(("lost_delete",), queue=self.source.queue_name)]
            if lost:
                logs.line("FAULT", f"lost_delete {self.source.queue_name}: {len(lost)} message(s) not deleted")
                done = [m for m in done if m not in lost]
        if done:
            self._sqs.delete_message_batch(
                QueueUrl=self.source.queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(done)],
            )
        counts = ",".join(sorted({(m.get("Attributes") or {}).get("ApproximateReceiveCount", "?") for m in messages}))
        logs.line(
            "SQS",
            f"{self.source.queue_name} -> {self.source.name}: {len(messages)} message(s), {len(done)} ok, "
            f"{len(failed)} failed ({outcome}) receive#{counts} {logs.ms(started)} id={request_id}",
        )
        return {"received": len(messages), "ok": len(done), "failed": sorted(failed), "outcome": outcome}
