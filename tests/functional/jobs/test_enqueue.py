"""enqueue, idempotency, delays, retry and redrive on moto."""

from __future__ import annotations

import json

import pytest

from chalicelib import aws
from chalicelib.jobs import EnqueueError, PermanentError, RetryRefused, enqueue, service
from chalicelib.jobs.queues import JobQueues
from tests.functional.jobs.conftest import CONTRACT_FIELDS


def test_enqueue_writes_the_record_and_sends_one_message(poller, clock):
    job = enqueue("emails", "send", {"to": ["a@example.com"], "n": 1.5}, user_id="u1")
    assert set(job) >= CONTRACT_FIELDS
    assert job["state"] == "waiting"
    assert (job["attempts"], job["max_attempts"], job["progress"]) == (0, 3, 0)
    assert job["payload"] == {"to": ["a@example.com"], "n": 1.5}
    assert job["user_id"] == "u1"
    assert service.get(job["id"]) == job
    messages = poller.receive("emails")
    assert [json.loads(m["Body"]) for m in messages] == [
        {"job_id": job["id"], "run": 1, "queue": "emails", "type": "send"}
    ]


def test_job_ids_are_unique(clock):
    ids = {enqueue("emails", "send", {})["id"] for _ in range(20)}
    assert len(ids) == 20


def test_an_idempotency_key_returns_the_first_job(poller, clock):
    first = enqueue("analytics", "daily_report", {"date": "2026-11-27"}, idempotency_key="daily:2026-11-27")
    again = enqueue("analytics", "daily_report", {"date": "other"}, idempotency_key="daily:2026-11-27")
    assert again["id"] == first["id"]
    assert again["payload"] == {"date": "2026-11-27"}
    assert len(poller.receive("analytics")) == 1
    # the same key on another queue is another job
    other = enqueue("cleanup", "sessions", {}, idempotency_key="daily:2026-11-27")
    assert other["id"] != first["id"]


def test_an_idempotency_key_of_a_removed_job_is_free_again(clock):
    first = enqueue("cleanup", "sessions", {}, idempotency_key="k")
    service.remove(first["id"])
    second = enqueue("cleanup", "sessions", {}, idempotency_key="k")
    assert second["id"] != first["id"]
    assert enqueue("cleanup", "sessions", {}, idempotency_key="k")["id"] == second["id"]


def test_a_delay_makes_the_job_delayed_until_its_message_shows(poller, register, clock):
    register("emails", "send", lambda job, ctx: {})
    job = enqueue("emails", "send", {}, delay_seconds=120)
    assert job["state"] == "delayed"
    assert poller.receive("emails") == []
    clock.advance(121)
    poller.drain("emails")
    assert service.get(job["id"])["state"] == "completed"


@pytest.mark.parametrize(
    ("args", "kwargs", "message"),
    [
        (("nope", "send", {}), {}, "unknown queue"),
        (("emails", "generate", {}), {}, "no job type"),
        (("emails", "send", []), {}, "JSON object"),
        (("emails", "send", {"x": "y" * 70000}), {}, "at most"),
        (("emails", "send", {"x": float("inf")}), {}, "finite"),
        (("emails", "send", {}), {"delay_seconds": 365 * 86400 + 1}, "delay"),
        (("emails", "send", {}), {"delay_seconds": -1}, "delay"),
        (("emails", "send", {}), {"idempotency_key": ""}, "idempotency"),
    ],
)
def test_enqueue_refuses_bad_requests(clock, args, kwargs, message):
    with pytest.raises(ValueError, match=message):
        enqueue(*args, **kwargs)


def test_a_failed_send_removes_the_record_and_its_key(clock):
    class Broken(JobQueues):
        def send(self, *a, **k):
            raise ConnectionError("SQS unreachable")

    broken = Broken(aws.client("sqs"), aws.queue_url)
    with pytest.raises(EnqueueError):
        enqueue("emails", "send", {}, idempotency_key="once", sqs=broken)
    assert service.counts("emails")["waiting"] == 0
    # the key was released with it
    job = enqueue("emails", "send", {}, idempotency_key="once")
    assert job["state"] == "waiting"


def _fail_permanently(job, ctx):
    raise PermanentError("nope")


def test_retry_runs_a_failed_job_again_and_tidies_its_dead_letter(poller, register, clock):
    outcomes = iter([_fail_permanently, lambda job, ctx: {"second": True}])
    register("emails", "send", lambda job, ctx: next(outcomes)(job, ctx))
    job = enqueue("emails", "send", {})
    poller.drain("emails")
    assert service.get(job["id"])["state"] == "failed"
    assert poller.attributes("emails-dlq")["ApproximateNumberOfMessages"] == 1
    retried = service.retry(job["id"])
    assert (retried["state"], retried["attempts"], retried["error"]) == ("waiting", 0, None)
    clock.advance(6)  # the tidy look hides other dead letters for 5 s
    assert poller.visible_and_hidden("emails-dlq") == (0, 0)
    poller.drain("emails")
    done = service.get(job["id"])
    assert (done["state"], done["result"], done["attempts"]) == ("completed", {"second": True}, 1)


def test_retry_refuses_a_job_that_is_not_failed(clock):
    job = enqueue("emails", "send", {})
    with pytest.raises(RetryRefused):
        service.retry(job["id"])
    with pytest.raises(LookupError):
        service.retry("0" * 32)


def test_a_stale_dead_letter_redriven_after_a_retry_is_not_rerun(poller, register, clock):
    ran = []
    outcomes = iter([_fail_permanently, lambda job, ctx: ran.append(1) or {}])
    register("emails", "send", lambda job, ctx: next(outcomes)(job, ctx))
    job = enqueue("emails", "send", {})
    poller.drain("emails")
    service.retry(job["id"], tidy=False)  # the old run's message stays in the dead-letter queue
    poller.drain("emails")
    assert service.redrive_dead_letters("emails") == 0  # stale: dropped, not requeued
    assert poller.drain("emails") == 0
    assert ran == [1]
    assert poller.visible_and_hidden("emails-dlq") == (0, 0)


def test_redrive_requeues_the_dead_letters_of_failed_jobs(poller, register, clock):
    attempts = []

    def flaky(job, ctx):
        attempts.append(job["id"])
        if len(attempts) <= 2:
            raise PermanentError("down")
        return {}

    register("emails", "send", flaky)
    jobs = [enqueue("emails", "send", {"n": i})["id"] for i in range(2)]
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("emails-dlq"), MessageBody="garbage")
    poller.drain("emails")
    assert service.redrive_dead_letters("emails") == 3
    poller.drain("emails")
    assert [service.get(j)["state"] for j in jobs] == ["completed", "completed"]
    assert poller.dead_letter_bodies("emails") == ["garbage"]  # it failed its 3 attempts again
