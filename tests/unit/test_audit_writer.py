"""The audit writer against fakes: 25 items per TransactWriteItems of Puts, refusals retried with
backoff, the queue when DynamoDB keeps refusing (a refused request whole, its manifest with it),
the log when SQS refuses too."""

from __future__ import annotations

import json

import pytest
from botocore.exceptions import ClientError

from chalicelib.audit import logger

TABLE = "audit"


def error(code):
    return ClientError({"Error": {"Code": code, "Message": code}}, "Op")


class FakeDynamo:
    def __init__(self, refuse_batches=0, refuse_puts=0, raise_code=None):
        self.stored, self.calls = [], 0
        self.refuse_batches, self.refuse_puts, self.raise_code = refuse_batches, refuse_puts, raise_code

    def transact_write_items(self, TransactItems):
        self.calls += 1
        assert len(TransactItems) <= 25
        assert {kind for t in TransactItems for kind in t} == {"Put"}  # never a delete
        assert {t["Put"]["TableName"] for t in TransactItems} == {TABLE}
        if self.calls <= self.refuse_batches:
            if self.raise_code:
                raise error(self.raise_code)
            raise ClientError(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "throttled"},
                    "CancellationReasons": [{"Code": "ThrottlingError"}] * len(TransactItems),
                },
                "TransactWriteItems",
            )
        self.stored += [t["Put"]["Item"] for t in TransactItems]

    def put_item(self, TableName, Item, ConditionExpression):
        self.calls += 1
        if self.calls <= self.refuse_puts:
            raise error(self.raise_code or "ProvisionedThroughputExceededException")
        self.stored.append(Item)


class FakeSqs:
    def __init__(self, refuse=False):
        self.bodies, self.refuse = [], refuse

    def send_message(self, QueueUrl, MessageBody):
        if self.refuse:
            raise error("ServiceUnavailable")
        assert len(MessageBody.encode()) < 256 * 1024
        self.bodies.append(MessageBody)


def items(n):
    return [{"id": f"{i:032x}", "hour": "h#0", "sk": f"s{i}", "n": i} for i in range(n)]


def make(dynamo, sqs=None):
    sleeps = []
    writer = logger.Writer(dynamo, TABLE, sqs or FakeSqs(), lambda: "url", pause=sleeps.append)
    return writer, sleeps


def queued(sqs):
    return [e["id"] for body in sqs.bodies for e in json.loads(body)["events"]]


def test_a_thousand_events_take_forty_requests():
    dynamo = FakeDynamo()
    writer, _ = make(dynamo)
    assert writer.batch(items(1000)) == {"dynamodb": 1000, "queue": 0, "log": 0}
    assert writer.requests == dynamo.calls == 40


def test_refused_transactions_are_retried_with_growing_backoff():
    dynamo = FakeDynamo(refuse_batches=3)
    writer, sleeps = make(dynamo)
    assert writer.batch(items(25))["dynamodb"] == 25
    assert len(sleeps) == 3 and sleeps[0] < logger.BACKOFF_BASE * 2**3
    assert sorted(i["n"] for i in dynamo.stored) == list(range(25))


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", "InternalServerError"])
def test_items_dynamodb_keeps_refusing_go_to_the_queue(code):
    dynamo, sqs = FakeDynamo(refuse_batches=10**6, raise_code=code), FakeSqs()
    writer, sleeps = make(dynamo, sqs)
    outcome = writer.batch(items(30))
    assert outcome == {"dynamodb": 0, "queue": 30, "log": 0}
    assert sorted(queued(sqs)) == sorted(i["id"] for i in items(30))
    assert len(sleeps) == 2 * (logger.MAX_ATTEMPTS - 1)


def test_a_refused_request_goes_to_the_queue_whole_with_its_manifest():
    dynamo, sqs = FakeDynamo(refuse_batches=10**6), FakeSqs()
    writer, sleeps = make(dynamo, sqs)
    evidence = {"hour": "m#h#0", "sk": "t#m", "keys": "listing"}
    outcome = writer.batch(items(24), evidence)
    assert outcome == {"dynamodb": 0, "queue": 24, "log": 0} and dynamo.stored == []
    assert len(sleeps) == logger.MAX_ATTEMPTS - 1
    (body,) = [json.loads(b) for b in sqs.bodies]
    assert len(body["events"]) == 24 and body["manifest"] == evidence


def test_a_validation_error_is_not_retried():
    dynamo, sqs = FakeDynamo(refuse_batches=10**6, raise_code="ValidationException"), FakeSqs()
    writer, sleeps = make(dynamo, sqs)
    assert writer.batch(items(3)) == {"dynamodb": 0, "queue": 3, "log": 0}
    assert dynamo.calls == 1 and sleeps == []


def test_when_sqs_refuses_too_the_events_are_logged_whole(monkeypatch):
    errors = []
    monkeypatch.setattr(logger.log, "error", lambda msg, *args: errors.append(msg % args))
    writer, _ = make(FakeDynamo(refuse_batches=10**6, raise_code="ThrottlingException"), FakeSqs(refuse=True))
    assert writer.batch(items(2)) == {"dynamodb": 0, "queue": 0, "log": 2}
    assert items(2)[1]["id"] in errors[0]


def test_a_throttled_put_is_retried_then_queued():
    writer, sleeps = make(FakeDynamo(refuse_puts=2))
    assert writer.put(items(1)[0]) == "dynamodb" and len(sleeps) == 2
    sqs = FakeSqs()
    writer, _ = make(FakeDynamo(refuse_puts=10**6), sqs)
    assert writer.put(items(1)[0]) == "queue" and queued(sqs) == [items(1)[0]["id"]]


def test_a_put_that_landed_on_an_earlier_attempt_counts_as_written():
    writer, _ = make(FakeDynamo(refuse_puts=1, raise_code="ConditionalCheckFailedException"))
    assert writer.put(items(1)[0]) == "dynamodb"


def test_invalid_items_are_not_retried():
    dynamo = FakeDynamo(refuse_puts=10**6, raise_code="ValidationException")
    writer, sleeps = make(dynamo)
    assert writer.put(items(1)[0]) == "queue" and dynamo.calls == 1 and sleeps == []


def test_large_fallbacks_are_split_under_the_sqs_limit():
    big = [dict(i, blob="x" * 4000) for i in items(120)]
    sqs = FakeSqs()
    writer, _ = make(FakeDynamo(refuse_batches=10**6, raise_code="ThrottlingException"), sqs)
    writer.batch(big)
    assert len(sqs.bodies) > 1 and len(queued(sqs)) == 120


def test_backoff_grows_and_is_capped():
    assert logger.backoff(0, lambda: 1.0) == logger.BACKOFF_BASE
    assert logger.backoff(3, lambda: 1.0) == logger.BACKOFF_BASE * 8
    assert logger.backoff(50, lambda: 1.0) == logger.BACKOFF_CAP
    assert logger.backoff(2, lambda: 0.0) == logger.BACKOFF_BASE * 2
