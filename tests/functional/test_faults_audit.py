"""The audit trail under faults inside AWS (tests/faults.py): writes whose answer was lost are
repeated by the SDK, by the writer and by the fallback queue, and each event is stored once."""

from __future__ import annotations

from collections import Counter

import pytest

from chalicelib import audit, aws
from chalicelib.audit import logger
from tests.faults import OUTLAST
from tests.functional.audit_helpers import all_events


@pytest.fixture
def quiet(faults, monkeypatch):
    monkeypatch.setattr(logger, "sleep", lambda seconds: None)
    return faults


def _counts(api, action: str) -> Counter:
    return Counter(e["id"] for e in all_events(api, action=action))


def test_a_batch_whose_answer_was_lost_stores_each_event_once(api, quiet):
    api.user("admin")
    quiet.lose("TransactWriteItems", match="audit_events")
    ids = [audit.record("article.status_changed", details={"n": n})["id"] for n in range(3)]
    assert audit.flush()["dynamodb"] == 3
    assert quiet.met["TransactWriteItems"] == 1
    assert _counts(api, "article.status_changed") == Counter(ids)


def test_a_critical_event_whose_answer_was_lost_is_stored_once(api, quiet):
    api.user("admin")
    quiet.lose("PutItem", match="audit_events")
    event = audit.record("queue.pause", resource=("queue", "articles"))
    assert quiet.met["PutItem"] == 1
    assert _counts(api, "queue.pause") == Counter([event["id"]])


def test_a_batch_stored_though_every_answer_was_lost_goes_to_the_queue_and_is_not_stored_twice(api, quiet):
    api.user("admin")
    quiet.lose("TransactWriteItems", times=logger.MAX_ATTEMPTS * OUTLAST, match="audit_events")
    ids = [audit.record("article.status_changed", details={"n": n})["id"] for n in range(2)]
    assert audit.flush()["queue"] == 2
    bodies = []
    sqs = aws.client("sqs")
    for message in sqs.receive_message(QueueUrl=aws.queue_url("audit"), MaxNumberOfMessages=10).get("Messages", []):
        bodies.append(message["Body"])
    assert bodies
    for body in bodies:
        assert audit.process_fallback_message(body) == 0  # stored already, under its own key
    assert _counts(api, "article.status_changed") == Counter(ids)


def test_a_fallback_write_whose_answer_was_lost_stores_the_event_once(api, quiet):
    api.user("admin")
    quiet.fail("PutItem", times=logger.MAX_ATTEMPTS * OUTLAST, match="audit_events")
    event = audit.record("queue.pause", resource=("queue", "articles"))
    sqs = aws.client("sqs")
    [message] = sqs.receive_message(QueueUrl=aws.queue_url("audit"), MaxNumberOfMessages=10)["Messages"]
    quiet.lose("TransactWriteItems")
    audit.process_fallback_message(message["Body"])
    audit.process_fallback_message(message["Body"])  # and delivered twice
    assert quiet.met["TransactWriteItems"] == 1
    assert _counts(api, "queue.pause") == Counter([event["id"]])


def test_a_queued_manifest_whose_write_answer_was_lost_is_stored_once_and_not_refused(api, quiet, monkeypatch):
    from boto3.dynamodb.conditions import Key

    from chalicelib import timeutil
    from chalicelib.audit import manifest, model

    now = timeutil.now()
    monkeypatch.setattr(timeutil, "now", lambda: now)  # one hour throughout: no boundary between write and read
    api.user("admin")
    quiet.fail("TransactWriteItems", times=logger.MAX_ATTEMPTS * OUTLAST, match="audit_events")
    audit.record("article.status_changed", details={"n": 1})
    assert audit.flush()["queue"] == 1  # the event and its manifest went to the queue together
    sqs = aws.client("sqs")
    [message] = sqs.receive_message(QueueUrl=aws.queue_url("audit"), MaxNumberOfMessages=10)["Messages"]
    quiet.lose("PutItem", match="audit_events")  # the manifest's conditional put lands, its answer lost
    audit.process_fallback_message(message["Body"])
    audit.process_fallback_message(message["Body"])  # and delivered twice
    assert quiet.met["PutItem"] == 1
    table = aws.table("audit_events")
    hour = model.hour_of(now)
    stored = [
        i for pk in manifest.partitions(hour) for i in table.query(KeyConditionExpression=Key("hour").eq(pk))["Items"]
    ]
    assert len(stored) == 1  # met its own earlier write as done
    assert _counts(api, "security.audit_refused") == Counter()
