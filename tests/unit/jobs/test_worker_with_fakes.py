"""The worker's state machine over in-memory fakes: which outcome leads where."""

from __future__ import annotations

import pytest

from chalicelib import catalog, timeutil
from chalicelib.jobs import PermanentError, processors
from chalicelib.jobs.processors import registry
from chalicelib.jobs.worker import Worker
from tests.unit.jobs.fakes import FakeClock, FakeContext, FakeQueues, FakeStore, sqs_record


@pytest.fixture
def clock(monkeypatch):
    c = FakeClock()
    monkeypatch.setattr(timeutil, "now", c)
    return c


@pytest.fixture
def setup(clock, monkeypatch):
    store, queues = FakeStore(clock), FakeQueues()
    worker = Worker(catalog.queue("emails"), store, queues, rng=lambda: 0.5)

    def use(fn, **hooks):
        processors.get("emails", "send")  # the real processors are loaded first, not over this one later
        monkeypatch.setitem(registry._registry, ("emails", "send"), registry.Processor("emails", "send", fn, **hooks))

    return store, queues, worker, use


def run(worker, *recs, seconds=60):
    return worker.handle({"Records": list(recs)}, FakeContext(worker.jobs.clock, seconds))


def test_success_completes_and_trims(setup):
    store, queues, worker, use = setup
    use(lambda job, ctx: {"ok": 1})
    job = store.add("emails", "send")
    assert run(worker, sqs_record(job)) == {"batchItemFailures": []}
    assert store.items[job["id"]]["state"] == "completed"
    assert store.trimmed == [("emails", "completed", 100)]


def test_retriable_failure_hides_the_message_for_the_backoff(setup):
    store, queues, worker, use = setup
    use(lambda job, ctx: 1 / 0)
    job = store.add("emails", "send")
    assert run(worker, sqs_record(job, receive_count=2)) == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert queues.hidden == [("emails", "rh-1", 4)]
    assert store.items[job["id"]]["state"] == "delayed"


def test_the_last_attempt_fails_the_job_and_dead_letters_it(setup):
    store, queues, worker, use = setup
    failures = []
    use(lambda job, ctx: 1 / 0, on_final_failure=lambda job, err: failures.append(err["kind"]))
    job = store.add("emails", "send", attempts=2)
    assert run(worker, sqs_record(job, receive_count=3)) == {"batchItemFailures": []}
    assert store.items[job["id"]]["state"] == "failed"
    assert queues.dead == [("emails", sqs_record(job)["body"])]
    assert failures == ["error"]
    assert ("emails", "failed", 50) in store.trimmed


def test_a_dead_letter_queue_outage_leaves_the_record_to_sqs_redrive(setup):
    store, queues, worker, use = setup
    queues.fail_dead_letter = True
    use(lambda job, ctx: (_ for _ in ()).throw(PermanentError("no")))
    job = store.add("emails", "send")
    assert run(worker, sqs_record(job)) == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    # the job is failed; its message comes back and is dead-lettered then, without running again
    queues.fail_dead_letter = False
    assert run(worker, sqs_record(job, receive_count=2)) == {"batchItemFailures": []}
    assert len(queues.dead) == 1


@pytest.mark.parametrize(
    ("fields", "run_no", "acked"),
    [({"state": "completed"}, 1, True), ({"state": "waiting", "run": 2}, 1, True)],
)
def test_done_and_stale_messages_are_acknowledged_without_running(setup, fields, run_no, acked):
    store, queues, worker, use = setup
    ran = []
    use(lambda job, ctx: ran.append(1))
    job = store.add("emails", "send", **fields)
    record = sqs_record(dict(job, run=run_no))
    assert run(worker, record) == {"batchItemFailures": []}
    assert ran == []


def test_a_message_for_a_missing_job_is_acknowledged(setup):
    store, queues, worker, use = setup
    record = sqs_record({"id": "f" * 32, "queue": "emails", "type": "send"})
    assert run(worker, record) == {"batchItemFailures": []}


def test_a_live_lease_defers_the_record_until_it_ends(setup, clock):
    store, queues, worker, use = setup
    job = store.add("emails", "send", state="active", lease_until=clock() + 30, lease_owner="other")
    assert run(worker, sqs_record(job)) == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert queues.hidden == [("emails", "rh-1", 31)]


def test_an_expired_lease_is_taken_over(setup, clock):
    store, queues, worker, use = setup
    use(lambda job, ctx: {"took": "over"})
    job = store.add("emails", "send", state="active", attempts=1, lease_until=clock() - 1, lease_owner="dead")
    assert run(worker, sqs_record(job, receive_count=2)) == {"batchItemFailures": []}
    assert store.items[job["id"]]["attempts"] == 2
    assert store.items[job["id"]]["result"] == {"took": "over"}


def test_a_malformed_message_is_retried_then_dead_lettered(setup):
    store, queues, worker, use = setup
    assert run(worker, sqs_record(None, body="nope")) == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert queues.hidden == [("emails", "rh-1", 2)]
    assert run(worker, sqs_record(None, body="nope", receive_count=3)) == {"batchItemFailures": []}
    assert queues.dead == [("emails", "nope")]


def test_no_record_starts_inside_the_deadline_margin(setup):
    store, queues, worker, use = setup
    use(lambda job, ctx: {})
    job = store.add("emails", "send")
    assert run(worker, sqs_record(job), seconds=4) == {"batchItemFailures": [{"itemIdentifier": "msg-1"}]}
    assert store.items[job["id"]]["state"] == "waiting"


def test_the_final_failure_hook_runs_before_the_job_is_recorded_failed(setup):
    store, queues, worker, use = setup
    seen = []
    use(
        lambda job, ctx: (_ for _ in ()).throw(PermanentError("no")),
        on_final_failure=lambda job, err: seen.append(store.items[job["id"]]["state"]),
    )
    job = store.add("emails", "send")
    assert run(worker, sqs_record(job)) == {"batchItemFailures": []}
    assert seen == ["active"]
    assert store.items[job["id"]]["state"] == "failed"
    assert "failing" not in store.items[job["id"]]


def test_a_failing_hook_still_fails_the_job(setup):
    store, queues, worker, use = setup
    use(
        lambda job, ctx: (_ for _ in ()).throw(PermanentError("no")),
        on_final_failure=lambda job, err: 1 / 0,
    )
    job = store.add("emails", "send")
    assert run(worker, sqs_record(job)) == {"batchItemFailures": []}
    assert store.items[job["id"]]["state"] == "failed"
    assert len(queues.dead) == 1


def test_a_failure_interrupted_after_its_hook_is_finished_by_the_next_delivery(setup, clock):
    # GIVEN a job whose worker died after the final-failure hook, before recording the failure
    store, queues, worker, use = setup
    ran, hooked = [], []
    use(lambda job, ctx: ran.append(1), on_final_failure=lambda job, err: hooked.append(err))
    error = {"message": "bad address", "kind": "invalid_payload"}
    job = store.add(
        "emails",
        "send",
        state="active",
        attempts=3,
        lease_owner="dead",
        lease_until=clock() - 1,
        failing={"error": error, "attempts": 3},
    )
    # WHEN its message comes again
    assert run(worker, sqs_record(job, receive_count=1)) == {"batchItemFailures": []}
    # THEN the failure is finished (the hook again: hooks are idempotent) without running the job
    assert ran == []
    assert hooked == [error]
    item = store.items[job["id"]]
    assert (item["state"], item["error"], item["attempts"]) == ("failed", error, 3)
    assert "failing" not in item
    assert len(queues.dead) == 1
