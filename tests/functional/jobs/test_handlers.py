"""The SQS handlers in app.py: one per queue (a job queue's priority queue too), each running the
shared worker."""

from __future__ import annotations

import json

import pytest

from chalicelib import catalog, config
from chalicelib.jobs import enqueue, service

SOURCES = sorted(q for name in catalog.job_queues() for q in (name, catalog.priority_queue(name, "high")))


def handler(queue):
    return "jobs_" + queue.replace("-", "_")


def test_one_handler_per_queue_on_the_stage_s_queue(app):
    sources = {s.name: s for s in app.event_sources if type(s).__name__ == "SQSEventConfig"}
    assert set(sources) == {handler(q) for q in SOURCES} | {"audit_fallback", "realtime_fanout"}
    assert {q for q in catalog.QUEUES if q not in ("audit", "fanout.fifo")} == set(SOURCES)
    for queue in SOURCES:
        spec, source = catalog.queue(queue), sources[handler(queue)]
        assert source.queue == config.get().resource_name(queue) == f"inkwell-test-{queue}"
        assert source.batch_size == spec.batch_size


@pytest.fixture
def long_lambda(monkeypatch):
    """chalice.test gives a Lambda 3 s, inside the worker's stop margin: give it a minute."""
    import functools

    import chalice.test

    monkeypatch.setattr(
        chalice.test, "LambdaContext", functools.partial(chalice.test.LambdaContext, max_runtime_ms=60000)
    )


@pytest.mark.parametrize("source", SOURCES)
def test_a_handler_answers_batch_item_failures(client, source, poller, register, long_lambda):
    queue = catalog.job_queue_of(source)
    job_type = catalog.queue(queue).job_types[0]
    register(queue, job_type, lambda job, ctx: {"ran": queue})
    job = enqueue(queue, job_type, {}, priority="high" if source != queue else "normal")
    messages = poller.receive(source)
    event = poller.event(messages + [dict(messages[0], MessageId="m-bad", Body="[]")], source)
    response = client.lambda_.invoke(handler(source), event)
    assert response.payload == {"batchItemFailures": [{"itemIdentifier": "m-bad"}]}
    assert service.get(job["id"])["result"] == {"ran": queue}
    assert json.loads(messages[0]["Body"])["job_id"] == job["id"]


def test_a_handler_with_too_little_time_starts_nothing(client, poller, register):
    ran = []
    register("emails", "send", lambda job, ctx: ran.append(1) or {})
    job = enqueue("emails", "send", {})
    messages = poller.receive("emails")
    response = client.lambda_.invoke("jobs_emails", poller.event(messages, "emails"))  # 3 s left
    assert response.payload == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    assert ran == []
    assert service.get(job["id"])["state"] == "waiting"
