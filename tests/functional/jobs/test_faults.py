"""Jobs under faults inside AWS (tests/faults.py): a write applied whose answer was lost is
repeated by the SDK and meets itself; DynamoDB throttling past the SDK's retries."""

from __future__ import annotations

import pytest

from chalicelib import config
from chalicelib.jobs import service
from chalicelib.jobs.records import JobStore
from tests.conftest import body
from tests.faults import INTERNAL, OUTLAST


def _jobs() -> str:
    return f'"{config.get().resource_name("jobs")}"'


@pytest.fixture
def noop(register):
    ran: list[str] = []
    register("emails", "send", lambda job, ctx: ran.append(job["id"]) or {"ok": True})
    return ran


def test_a_job_created_with_its_answer_lost_is_created_and_queued_once(faults, poller, noop):
    faults.lose("PutItem", match=_jobs())
    job = service.enqueue("emails", "send", {"to": "a"})
    assert faults.met["PutItem"] == 1
    assert service.get(job["id"])["state"] == "waiting"
    poller.drain("emails")
    assert noop == [job["id"]]
    assert service.get(job["id"])["state"] == "completed"


def test_an_idempotent_job_created_with_its_answer_lost_is_queued(faults, poller, noop):
    faults.lose("TransactWriteItems")
    job = service.enqueue("emails", "send", {"to": "a"}, idempotency_key="k1")
    assert faults.met["TransactWriteItems"] == 1
    poller.drain("emails")
    assert noop == [job["id"]]
    again = service.enqueue("emails", "send", {"to": "a"}, idempotency_key="k1")
    assert again["id"] == job["id"]
    poller.drain("emails")
    assert noop == [job["id"]]  # the key still finds the first job, queued once


def test_a_job_id_taken_by_another_job_is_still_refused(aws_mock):
    jobs = JobStore(__import__("chalicelib.aws", fromlist=["table"]).table("jobs"))
    first = jobs.new_record("emails", "send", {}, max_attempts=3, job_id="a" * 32)
    jobs.create(first)
    second = jobs.new_record("emails", "send", {}, max_attempts=3, job_id="a" * 32)
    with pytest.raises(Exception, match="ConditionalCheckFailed"):
        jobs.create(second)


def test_generate_whose_job_write_lost_its_answer_publishes(api, faults, poller, generator):
    api.token("editor")
    article = body(api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor"))
    faults.lose("PutItem", match=_jobs())
    response = api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    assert response.status_code == 202, response.body
    poller.drain("articles")
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "PUBLISHED"
    assert len(generator.requests) == 1


def test_a_claim_whose_answer_was_lost_runs_the_job_with_one_attempt(faults, poller, noop, job_events):
    job = service.enqueue("emails", "send", {})
    faults.lose("UpdateItem", match='"active"')  # the claim
    poller.drain("emails")
    assert faults.met["UpdateItem"] == 1
    done = service.get(job["id"])
    assert (done["state"], done["attempts"]) == ("completed", 1)
    assert noop == [job["id"]]
    assert [e.kind for e in job_events] == ["active", "completed"]


def test_a_completion_whose_answer_was_lost_is_announced_once(faults, poller, noop, job_events):
    job = service.enqueue("emails", "send", {})
    faults.lose("UpdateItem", match='"completed"')
    poller.drain("emails")
    assert faults.met["UpdateItem"] == 1
    assert service.get(job["id"])["state"] == "completed"
    assert noop == [job["id"]]
    assert [e.kind for e in job_events] == ["active", "completed"]


def test_a_retry_later_whose_answer_was_lost_keeps_the_job_going(faults, poller, register, job_events):
    runs: list[int] = []

    def flaky(job, ctx):
        runs.append(ctx.attempt)
        if len(runs) == 1:
            raise RuntimeError("once")
        return {}

    register("emails", "send", flaky)
    job = service.enqueue("emails", "send", {})
    faults.lose("UpdateItem", match='"delayed"')
    poller.drain("emails")
    assert faults.met["UpdateItem"] == 1
    done = service.get(job["id"])
    assert (done["state"], done["attempts"]) == ("completed", 2)
    assert [e.kind for e in job_events] == ["active", "retrying", "active", "completed"]


def test_an_admin_retry_whose_answer_was_lost_is_done(faults, poller, register):
    calls: list[int] = []
    register("emails", "send", lambda job, ctx: calls.append(1) or (_ for _ in ()).throw(RuntimeError("no")))
    job = service.enqueue("emails", "send", {})
    poller.drain("emails")
    assert service.get(job["id"])["state"] == "failed"
    register("emails", "send", lambda job, ctx: {})
    faults.lose("UpdateItem", match='"waiting"')
    retried = service.retry(job["id"])
    assert faults.met["UpdateItem"] == 1
    assert retried["state"] == "waiting"
    poller.drain("emails")
    assert service.get(job["id"])["state"] == "completed"


@pytest.mark.parametrize("code", ["ProvisionedThroughputExceededException", INTERNAL])
def test_dynamodb_failing_a_job_s_attempt_gives_the_attempt_back(faults, poller, register, code):
    from chalicelib import aws

    def reads(job, ctx):
        aws.table("settings").get_item(Key={"scope": "probe", "key": "fault-probe"})
        return {}

    register("emails", "send", reads)
    job = service.enqueue("emails", "send", {})
    faults.fail("GetItem", times=2 * OUTLAST, code=code, match="fault-probe")
    poller.drain("emails", rounds=60)
    done = service.get(job["id"])
    assert faults.met["GetItem"] == 2 * OUTLAST  # two attempts' worth of the SDK's tries
    assert (done["state"], done["attempts"]) == ("completed", 1)


# --- articles --------------------------------------------------------------------------------------


def _articles() -> str:
    return f'"{config.get().resource_name("articles")}"'


def test_an_article_created_with_its_answer_lost_is_created_once(api, faults):
    api.token("editor")
    faults.lose("PutItem", match=_articles())
    response = api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor")
    assert response.status_code == 201, response.body
    assert faults.met["PutItem"] == 1
    assert len(body(api.get("/api/articles", as_="editor"))["items"]) == 1


def test_a_generate_whose_article_transition_lost_its_answer_is_accepted(api, faults, poller, generator, published):
    from chalicelib import events

    api.token("editor")
    article = body(api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor"))
    faults.lose("UpdateItem", match='"PROCESSING"')
    response = api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    assert response.status_code == 202, response.body
    assert faults.met["UpdateItem"] == 1
    faults.lose("UpdateItem", match='"PUBLISHED"')  # the article's completion, answer lost too
    poller.drain("articles")
    assert faults.met["UpdateItem"] == 2
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "PUBLISHED"
    statuses = [e.status for e in published if isinstance(e, events.ArticleStatusChanged)]
    assert statuses == ["PROCESSING", "PUBLISHED"]  # each announced once


def test_a_generate_whose_job_write_aws_keeps_refusing_answers_503_and_leaves_the_article_as_it_was(
    api, faults, poller, generator
):
    api.token("editor")
    article = body(api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor"))
    faults.fail("PutItem", times=OUTLAST, match=_jobs())
    response = api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    assert response.status_code == 503, response.body
    assert "Retry-After" in response.headers
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "DRAFT"
    assert api.post(f"/api/articles/{article['id']}/generate", as_="editor").status_code == 202  # tried again
    poller.drain("articles")
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "PUBLISHED"


def test_a_one_time_schedule_whose_answer_was_lost_holds_the_job_once(faults, poller, noop, clock):
    from chalicelib import aws
    from chalicelib.jobs import later

    faults.lose("CreateSchedule")
    job = service.enqueue("emails", "send", {"to": "a"}, delay_seconds=7200)
    assert faults.met["CreateSchedule"] == 1
    assert service.get(job["id"])["state"] == "delayed"  # the SDK's repeat met the schedule: done
    group = config.physical_name(config.get().stage)
    schedules = aws.client("scheduler").list_schedules(GroupName=group, NamePrefix="job-")["Schedules"]
    assert [s["Name"] for s in schedules] == [later.schedule_name(job["id"], 1)]


def test_a_failed_job_s_message_redelivered_after_a_lost_delete_is_dead_lettered_once(faults, poller, register):
    from chalicelib.jobs import PermanentError

    register("emails", "send", lambda job, ctx: (_ for _ in ()).throw(PermanentError("bad address")))
    job = service.enqueue("emails", "send", {"to": "a"})
    messages = poller.receive("emails")
    poller.deliver("emails", messages, delete=False)  # failed and copied; the DeleteMessage lost
    assert service.get(job["id"])["state"] == "failed"
    poller.deliver("emails", messages)  # the message comes back: acknowledged, not copied again
    assert [m["job_id"] for m in poller.dead_letter_bodies("emails")] == [job["id"]]


def test_a_dead_letter_note_whose_answer_was_lost_still_keeps_one_copy(faults, poller, register):
    from chalicelib.jobs import PermanentError

    register("emails", "send", lambda job, ctx: (_ for _ in ()).throw(PermanentError("bad address")))
    job = service.enqueue("emails", "send", {"to": "a"})
    messages = poller.receive("emails")
    faults.lose("UpdateItem", match="dead_letter")
    poller.deliver("emails", messages, delete=False)
    assert faults.met["UpdateItem"] == 1
    poller.deliver("emails", messages)
    assert [m["job_id"] for m in poller.dead_letter_bodies("emails")] == [job["id"]]
    retried = service.retry(job["id"])  # and a retry finds the job failed as ever, a new run
    assert retried["state"] == "waiting"


def test_a_dead_letter_copy_sent_twice_by_the_sdk_is_retried_once_by_a_redrive(faults, poller, register):
    # SQS standard queues keep no deduplication id: a SendMessage whose answer was lost and that
    # the SDK repeats leaves two copies; the redrive retries the job once and drops the other.
    from chalicelib.jobs import PermanentError

    runs: list[str] = []

    def fail_first(job, ctx):
        runs.append(job["id"])
        if len(runs) == 1:
            raise PermanentError("bad address")
        return {}

    register("emails", "send", fail_first)
    job = service.enqueue("emails", "send", {"to": "a"})
    faults.lose("SendMessage", match="-dlq")
    poller.drain("emails")
    assert faults.met["SendMessage"] == 1
    assert len(poller.dead_letter_bodies("emails")) == 2
    assert service.redrive_dead_letters("emails") == 1
    assert poller.dead_letter_bodies("emails") == []
    poller.drain("emails")
    assert runs == [job["id"], job["id"]]
    assert service.get(job["id"])["state"] == "completed"


def test_a_duplicate_repeated_with_its_idempotency_key_makes_one_job(api, poller, noop):
    original = service.enqueue("emails", "send", {"to": "a"})
    poller.drain("emails")
    path = f"/api/jobs/{original['id']}/duplicate"
    api.token("admin")
    first = api.post(path, {}, as_="admin", headers={"Idempotency-Key": "dup-1"})
    assert first.status_code == 202, first.body
    again = api.post(path, {}, as_="admin", headers={"Idempotency-Key": "dup-1"})  # its answer was lost
    assert again.status_code == 202 and body(again)["job_id"] == body(first)["job_id"]
    other = api.post(path, {}, as_="admin", headers={"Idempotency-Key": "dup-2"})
    assert body(other)["job_id"] != body(first)["job_id"]
    assert api.post(path, {}, as_="admin", headers={"Idempotency-Key": "a b"}).status_code == 400
    poller.drain("emails")
    assert sorted(noop) == sorted([original["id"], body(first)["job_id"], body(other)["job_id"]])
