"""The worker on moto: partial batch failures, backoff, dead letters, leases, deadlines, retention."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest

from chalicelib import aws, catalog
from chalicelib.jobs import PermanentError, enqueue, errors, records, service, worker
from tests.functional.jobs.conftest import LambdaContext


class Crash(BaseException):
    """The Lambda dies mid-job (nothing after it runs)."""


def _state(job_id):
    return service.get(job_id)


def test_a_batch_with_one_poison_message_completes_the_others(poller, register, clock):
    # GIVEN three good jobs and one malformed message in one batch
    ran = []
    register("emails", "send", lambda job, ctx: ran.append(job["id"]) or {"ok": True})
    good = [enqueue("emails", "send", {"n": i})["id"] for i in range(3)]
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("emails"), MessageBody="{not json")
    # WHEN the batch is delivered
    messages = poller.receive("emails")
    assert len(messages) == 4
    response = poller.deliver("emails", messages)
    # THEN only the poison message is reported as failed, and the good jobs completed
    poison_id = next(m["MessageId"] for m in messages if m["Body"] == "{not json")
    assert response == {"batchItemFailures": [{"itemIdentifier": poison_id}]}
    assert sorted(ran) == sorted(good)
    assert all(_state(j)["state"] == "completed" for j in good)
    # AND the poison message reaches the dead-letter queue after 3 attempts
    deliveries = poller.drain("emails", step=1.0)
    assert deliveries == 2
    assert poller.dead_letter_bodies("emails") == ["{not json"]
    assert poller.visible_and_hidden("emails") == (0, 0)


def test_a_failing_job_backs_off_2_then_4_seconds_then_fails_into_the_dead_letter_queue(
    poller, register, clock, sqs_calls, job_events, monkeypatch
):
    monkeypatch.setattr("random.random", lambda: 0.5)  # no jitter
    hooked = []
    register(
        "emails",
        "send",
        lambda job, ctx: (_ for _ in ()).throw(RuntimeError("SES is down")),
        on_final_failure=lambda job, error: hooked.append(error["kind"]),
    )
    job = enqueue("emails", "send", {"to": "x"})
    times = []
    for _ in range(3):
        for _ in range(10):
            if poller.run_once("emails"):
                times.append(clock.t)
                break
            clock.advance(0.5)
    hides = [p["VisibilityTimeout"] for op, p in sqs_calls if op == "ChangeMessageVisibility"]
    assert hides == [2, 4]
    assert times[1] - times[0] == pytest.approx(2, abs=0.5)
    assert times[2] - times[1] == pytest.approx(4, abs=0.5)
    final = _state(job["id"])
    assert final["state"] == "failed"
    assert final["attempts"] == 3
    assert final["error"] == {"message": "RuntimeError: SES is down", "kind": "error"}
    assert [b["job_id"] for b in poller.dead_letter_bodies("emails")] == [job["id"]]
    kinds = [e.kind for e in job_events if e.job["id"] == job["id"]]
    assert kinds == ["active", "retrying", "active", "retrying", "active", "failed"]
    assert hooked == ["error"]  # once, after the last attempt


def test_backoff_sets_the_job_delayed_between_attempts(poller, register, clock):
    register("emails", "send", lambda job, ctx: (_ for _ in ()).throw(TimeoutError("slow")))
    job = enqueue("emails", "send", {})
    poller.run_once("emails")
    assert _state(job["id"])["state"] == "delayed"
    assert _state(job["id"])["error"]["message"] == "TimeoutError: slow"


def test_a_permanent_error_fails_at_once_and_runs_the_failure_hook_once(poller, register, clock):
    hooked = []
    register(
        "emails",
        "send",
        lambda job, ctx: (_ for _ in ()).throw(PermanentError("bad address", kind="invalid_payload")),
        on_final_failure=lambda job, error: hooked.append((job["id"], error)),
    )
    job = enqueue("emails", "send", {})
    response = poller.run_once("emails")
    assert response == {"batchItemFailures": []}  # acknowledged: its copy is in the dead-letter queue
    assert _state(job["id"])["state"] == "failed"
    assert _state(job["id"])["attempts"] == 1
    assert hooked == [(job["id"], {"message": "bad address", "kind": "invalid_payload"})]
    assert [b["job_id"] for b in poller.dead_letter_bodies("emails")] == [job["id"]]


def test_a_dead_letter_queue_outage_leaves_the_message_to_come_back_and_be_dead_lettered(
    poller, register, clock, monkeypatch
):
    from chalicelib.jobs.queues import JobQueues

    ran = []
    register("emails", "send", lambda job, ctx: ran.append(1) or (_ for _ in ()).throw(PermanentError("no")))
    job = enqueue("emails", "send", {})
    real = JobQueues.dead_letter

    def down(self, queue, body):
        raise ConnectionError("SQS down")

    monkeypatch.setattr(JobQueues, "dead_letter", down)
    response = poller.run_once("emails")
    assert len(response["batchItemFailures"]) == 1  # not acknowledged: the message comes back
    assert _state(job["id"])["state"] == "failed"
    monkeypatch.setattr(JobQueues, "dead_letter", real)
    poller.drain("emails")
    assert ran == [1]  # dead-lettered then, without running again
    assert [b["job_id"] for b in poller.dead_letter_bodies("emails")] == [job["id"]]
    assert poller.visible_and_hidden("emails") == (0, 0)


def test_a_message_of_an_earlier_run_is_acknowledged_without_running(poller, register, clock):
    ran = []

    def first_fails(job, ctx):
        ran.append(job["id"])
        if len(ran) == 1:
            raise PermanentError("no")
        return {}

    register("emails", "send", first_fails)
    job = enqueue("emails", "send", {})
    poller.drain("emails")
    (old_run,) = poller.dead_letter_bodies("emails")
    service.retry(job["id"], tidy=False)  # run 2
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("emails"), MessageBody=json.dumps(old_run))
    poller.drain("emails")
    assert ran == [job["id"]] * 2  # the first run and the retry, not the old run's message
    assert (_state(job["id"])["state"], _state(job["id"])["attempts"]) == ("completed", 1)
    assert poller.visible_and_hidden("emails") == (0, 0)


def test_an_unknown_job_type_fails_permanently(poller, clock, monkeypatch):
    import app

    monkeypatch.delitem(app.processors(), ("cleanup", "activity_logs"), raising=False)
    job = enqueue("cleanup", "activity_logs", {})
    poller.run_once("cleanup")
    assert _state(job["id"])["error"]["kind"] == "unknown_type"
    assert _state(job["id"])["state"] == "failed"


def test_a_duplicate_delivery_runs_the_job_once(poller, register, clock):
    ran = []
    register("emails", "send", lambda job, ctx: ran.append(1) or {})
    enqueue("emails", "send", {})
    messages = poller.receive("emails")
    # the same message delivered twice, in two invocations (SQS is at least once)
    poller.deliver("emails", messages, delete=False)
    second = poller.deliver("emails", messages)
    assert second == {"batchItemFailures": []}
    assert ran == [1]


def test_a_concurrent_delivery_waits_for_the_lease(poller, register, clock, sqs_calls):
    # GIVEN a job running under a live lease in another invocation
    job = enqueue("emails", "send", {})
    messages = poller.receive("emails")
    inner = {}

    def run(job_view, ctx):
        # WHEN the same message arrives meanwhile in a second invocation
        inner["response"] = poller.deliver("emails", messages, delete=False)
        return {}

    register("emails", "send", run)
    poller.deliver("emails", messages)
    # THEN the second is retried later (not run): a copy sent delayed until the lease ends, the
    # delivery acknowledged (waiting uses no receive before the dead-letter queue)
    assert inner["response"] == {"batchItemFailures": []}
    assert [op for op, _ in sqs_calls if op == "ChangeMessageVisibility"] == []
    copies = [p for op, p in sqs_calls if op == "SendMessage" and p.get("DelaySeconds")]
    assert len(copies) == 1 and copies[0]["DelaySeconds"] > 60
    assert copies[0]["MessageBody"] == messages[0]["Body"]
    assert _state(job["id"])["state"] == "completed"
    assert _state(job["id"])["attempts"] == 1


def test_a_crash_mid_job_is_taken_over_after_the_lease_expires(poller, register, clock):
    calls = []

    def crash_once(job, ctx):
        calls.append(ctx.attempt)
        ctx.progress(40)
        if len(calls) == 1:
            raise Crash()
        return {"done": True}

    register("emails", "send", crash_once)
    job = enqueue("emails", "send", {})
    with pytest.raises(Crash):
        poller.run_once("emails")
    assert _state(job["id"])["state"] == "active"
    assert _state(job["id"])["progress"] == 40
    # the message comes back after its visibility timeout, when the lease has expired too
    clock.advance(catalog.queue("emails").visibility_timeout + 1)
    assert poller.run_once("emails") == {"batchItemFailures": []}
    final = _state(job["id"])
    assert final["state"] == "completed"
    assert final["attempts"] == 2
    assert final["result"] == {"done": True}
    assert calls == [1, 2]


def test_a_completed_job_redelivered_after_a_crash_before_the_ack_is_not_rerun(poller, register, clock):
    ran = []
    register("emails", "send", lambda job, ctx: ran.append(1) or {})
    enqueue("emails", "send", {})
    messages = poller.receive("emails")
    poller.deliver("emails", messages, delete=False)  # the ack is lost
    clock.advance(catalog.queue("emails").visibility_timeout + 1)
    assert poller.drain("emails") == 1
    assert ran == [1]


def test_the_worker_stops_before_the_lambda_deadline(poller, register, clock, sqs_calls):
    ran = []

    def slow(job, ctx):
        ran.append(job["id"])
        clock.advance(8)  # each job takes 8 s
        return {}

    register("emails", "send", slow)
    ids = [enqueue("emails", "send", {"n": i})["id"] for i in range(3)]
    messages = poller.receive("emails")
    response = poller.deliver("emails", messages, LambdaContext(clock, 20))
    # 20 s: the first two run (20 -> 12 -> 4 s left); 4 s is inside the 5 s margin
    assert len(ran) == 2
    failed = [f["itemIdentifier"] for f in response["batchItemFailures"]]
    assert len(failed) == 1
    late = next(i for i in ids if i not in ran)
    assert _state(late)["state"] == "waiting"
    assert _state(late)["attempts"] == 0
    assert any(op == "ChangeMessageVisibility" for op, _ in sqs_calls)


def test_a_processor_out_of_time_is_retried(poller, register, clock):
    def needs_time(job, ctx):
        ctx.check_deadline(needed=30)
        return {}

    register("emails", "send", needs_time)
    job = enqueue("emails", "send", {})
    poller.deliver("emails", poller.receive("emails"), LambdaContext(clock, 20))
    assert _state(job["id"])["state"] == "delayed"
    assert _state(job["id"])["error"]["kind"] == "deadline"


def test_retention_keeps_the_newest_completed_and_failed(poller, register, clock, monkeypatch):
    spec = dataclasses.replace(catalog.queue("emails"), keep_completed=3, keep_failed=2)
    monkeypatch.setitem(catalog.QUEUES, "emails", spec)
    monkeypatch.setattr(worker, "TRIM_EVERY", 1)  # trimmed at every final transition

    def outcome(job, ctx):
        if job["payload"]["fail"]:
            raise PermanentError("no")
        return {}

    register("emails", "send", outcome)
    done, failed = [], []
    for i in range(6):
        done.append(enqueue("emails", "send", {"fail": False, "i": i})["id"])
        failed.append(enqueue("emails", "send", {"fail": True, "i": i})["id"])
        poller.drain("emails")
        clock.advance(1)
    assert [j for j in done if _state(j)] == done[-3:]
    assert [j for j in failed if _state(j)] == failed[-2:]
    assert service.counts("emails") == {
        "waiting": 0,
        "delayed": 0,
        "active": 0,
        "completed": 3,
        "failed": 2,
        "cancelled": 0,
    }


def test_retention_is_trimmed_at_every_few_completions_of_a_container(poller, register, clock, monkeypatch):
    from collections import Counter

    spec = dataclasses.replace(catalog.queue("emails"), keep_completed=3)
    monkeypatch.setitem(catalog.QUEUES, "emails", spec)
    monkeypatch.setattr(worker, "TRIM_EVERY", 4)
    monkeypatch.setattr(worker, "_finished", Counter())  # a fresh container
    reads: list[str] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        if model.name == "Query" and params.get("IndexName") == "by_queue_state":
            reads.append(params["KeyConditionExpression"])

    client = aws.table("jobs").meta.client
    client.meta.events.register("before-parameter-build.dynamodb", hook)
    register("emails", "send", lambda job, ctx: {})
    done = []
    try:
        for i in range(9):
            done.append(enqueue("emails", "send", {"i": i})["id"])
            poller.drain("emails")
            clock.advance(1)
            if i == 7:  # trimmed at the 1st and 5th completion: 3 kept then, 3 more since
                assert [j for j in done if _state(j)] == done[-6:]
    finally:
        client.meta.events.unregister("before-parameter-build.dynamodb", hook)
    assert len(reads) == 3  # the 1st, 5th and 9th completion
    assert [j for j in done if _state(j)] == done[-3:]


def test_final_records_carry_a_ttl(poller, register, clock):
    register("emails", "send", lambda job, ctx: {})
    job = enqueue("emails", "send", {})
    poller.drain("emails")
    item = service.store().get(job["id"])
    assert int(item["ttl"]) == pytest.approx(clock.t + records.TTL_SECONDS["completed"], abs=2)
    assert item["expiry_day"]


def test_progress_is_recorded_and_announced(poller, register, clock, job_events):
    def steps(job, ctx):
        ctx.progress(30)
        ctx.progress(30)  # unchanged: not written again
        ctx.progress(70)
        return {"n": 1}

    register("emails", "send", steps)
    job = enqueue("emails", "send", {})
    poller.drain("emails")
    seen = [(e.kind, e.job["progress"]) for e in job_events if e.job["id"] == job["id"]]
    assert seen == [("active", 0), ("progress", 30), ("progress", 70), ("completed", 100)]


def test_a_removed_job_s_message_is_acknowledged_without_running(poller, register, clock):
    ran = []
    register("emails", "send", lambda job, ctx: ran.append(1) or {})
    job = enqueue("emails", "send", {})
    assert service.remove(job["id"])["id"] == job["id"]
    assert poller.run_once("emails") == {"batchItemFailures": []}
    assert ran == []
    assert service.remove(job["id"]) is None


def test_a_hold_puts_messages_back_without_using_attempts(poller, register, clock):
    from chalicelib import catalog
    from chalicelib.jobs import worker

    paused = {"emails": True}
    poller.worker_for = lambda queue: worker.Worker(
        catalog.queue(queue), service.store(), service.queues(), holds=[lambda queue: paused.get(queue, False)]
    )
    ran = []
    register("emails", "send", lambda job, ctx: ran.append(1) or {})
    job = enqueue("emails", "send", {})
    for _ in range(4):
        poller.run_once("emails")
        clock.advance(worker.HOLD_DELAY_SECONDS + 1)
    assert ran == []
    assert _state(job["id"])["state"] == "waiting"
    paused["emails"] = False
    poller.drain("emails")
    assert ran == [1]
    assert _state(job["id"])["attempts"] == 1


def test_throttling_while_claiming_fails_that_record_alone(poller, register, clock, monkeypatch):
    from chalicelib.jobs.records import JobStore

    register("emails", "send", lambda job, ctx: {})
    first = enqueue("emails", "send", {"n": 1})
    second = enqueue("emails", "send", {"n": 2})
    real_claim = JobStore.claim

    def flaky(self, queue, job_id, *args):
        if job_id == first["id"]:
            raise RuntimeError("ProvisionedThroughputExceededException")
        return real_claim(self, queue, job_id, *args)

    monkeypatch.setattr(JobStore, "claim", flaky)
    messages = poller.receive("emails")
    response = poller.deliver("emails", messages)
    assert len(response["batchItemFailures"]) == 1
    assert _state(second["id"])["state"] == "completed"
    assert _state(first["id"])["state"] == "waiting"


def test_describe_never_leaks_a_traceback():
    try:
        raise ValueError("x" * 2000)
    except ValueError as exc:
        error = errors.describe(exc)
    assert error["kind"] == "error"
    assert len(error["message"]) == errors.MAX_MESSAGE
    assert "Traceback" not in error["message"]


def test_an_active_record_without_a_lease_is_taken_over_not_dropped(poller, register):
    """Defect: a claim refused on an inconsistent record (active, no lease_until) was answered as
    'acknowledged', and the job never ran."""
    ran = []
    register("emails", "send", lambda job, ctx: ran.append(job["id"]) or {"ok": True})
    job = enqueue("emails", "send", {})
    aws.table("jobs").update_item(
        Key={"id": job["id"]},
        UpdateExpression="SET #st = :active REMOVE lease_until",
        ExpressionAttributeNames={"#st": "state"},
        ExpressionAttributeValues={":active": "active"},
    )
    assert poller.run_once("emails") == {"batchItemFailures": []}
    assert ran == [job["id"]] and _state(job["id"])["state"] == "completed"


def test_a_claim_refused_yet_claimable_as_read_is_retried_not_acknowledged(poller, register, monkeypatch):
    """A race lost between the claim's read and write (or any record the claim does not expect)
    never drops the message: it comes back after a backoff."""
    register("emails", "send", lambda job, ctx: {"ok": True})
    job = enqueue("emails", "send", {})
    real_claim, raced = records.JobStore.claim, [True]

    def claim(self, *args):
        return records.Claim(records.RACED, None) if raced.pop() else real_claim(self, *args)

    monkeypatch.setattr(records.JobStore, "claim", claim)
    [message] = poller.receive("emails")
    assert poller.deliver("emails", [message]) == {"batchItemFailures": [{"itemIdentifier": message["MessageId"]}]}
    raced.append(False)
    poller.drain("emails")
    assert _state(job["id"])["state"] == "completed"


def test_started_at_is_when_the_latest_attempt_started(poller, register, clock, monkeypatch):
    # BullMQ's processedOn: set each time the job becomes active, kept when it completes or fails
    from chalicelib import timeutil

    monkeypatch.setattr("random.random", lambda: 0.5)  # no jitter
    starts: list[str] = []

    def twice_then_ok(job, ctx):
        starts.append(timeutil.iso_ms(clock.t))
        if len(starts) < 3:
            raise RuntimeError("not yet")
        return {}

    register("emails", "send", twice_then_ok)
    job = enqueue("emails", "send", {})
    assert _state(job["id"])["started_at"] is None  # not started yet
    clock.advance(5)
    poller.run_once("emails")
    retrying = _state(job["id"])
    assert (retrying["state"], retrying["started_at"]) == ("delayed", starts[0])
    poller.drain("emails", step=0.5)
    done = _state(job["id"])
    assert done["state"] == "completed" and len(starts) == 3
    assert done["started_at"] == starts[2] != starts[0]
    assert done["started_at"] <= done["finished_at"]


def test_a_failed_job_keeps_started_at_and_a_retry_starts_it_again(poller, register, clock):
    from chalicelib import timeutil

    outcome = {"fail": True}
    starts: list[str] = []

    def run(job, ctx):
        starts.append(timeutil.iso_ms(clock.t))
        if outcome["fail"]:
            raise PermanentError("no")
        return {}

    register("emails", "send", run)
    job = enqueue("emails", "send", {})
    poller.run_once("emails")
    failed = _state(job["id"])
    assert (failed["state"], failed["started_at"]) == ("failed", starts[0])
    # an admin's retry is a new run: not started until it runs again, like finished_at
    clock.advance(10)
    assert service.retry(job["id"])["started_at"] is None
    outcome["fail"] = False
    poller.drain("emails")
    done = _state(job["id"])
    assert (done["state"], done["started_at"]) == ("completed", starts[1])
    assert starts[1] > starts[0]
