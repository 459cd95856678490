"""The SQS handlers in app.py: one per queue, each running the shared worker."""

from __future__ import annotations

import json

import pytest

from chalicelib import catalog, config
from chalicelib.jobs import enqueue, service


def test_one_handler_per_queue_on_the_stage_s_queue(app):
    sources = {s.name: s for s in app.event_sources if type(s).__name__ == "SQSEventConfig"}
    assert set(sources) == {f"jobs_{q}" for q in catalog.job_queues()} | {"audit_fallback"}
    for queue in catalog.job_queues():
        spec, source = catalog.queue(queue), sources[f"jobs_{queue}"]
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


@pytest.mark.parametrize("queue", sorted(catalog.job_queues()))
def test_a_handler_answers_batch_item_failures(client, queue, poller, register, long_lambda):
    job_type = catalog.queue(queue).job_types[0]
    register(queue, job_type, lambda job, ctx: {"ran": queue})
    job = enqueue(queue, job_type, {})
    messages = poller.receive(queue)
    event = poller.event(messages + [dict(messages[0], MessageId="m-bad", Body="[]")], queue)
    response = client.lambda_.invoke(f"jobs_{queue}", event)
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
