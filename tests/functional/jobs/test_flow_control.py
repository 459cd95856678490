"""Flow control on moto: delays of any length (one-time schedules past 15 minutes, and the hops
of messages sent before them), promote, cancel."""

from __future__ import annotations

import json

import pytest

from chalicelib import aws, timeutil
from chalicelib.jobs import enqueue, service
from chalicelib.jobs.errors import JobStateRefused
from chalicelib.jobs.queues import MAX_DELAY_SECONDS
from tests.conftest import body

HOUR = 3600
YEAR = 365 * 24 * HOUR


def _ran(register):
    ran: list[str] = []
    register("emails", "send", lambda job, ctx: ran.append(job["id"]) or {})
    return ran


# --- delays beyond SQS's 15 minutes ----------------------------------------------------------------


def _fire_due(clock) -> list[str]:
    """The local EventBridge Scheduler firing the one-time schedules due on the test's clock."""
    from chalicelib import config
    from local.scheduler import fire_one_time

    return fire_one_time(aws.client("scheduler"), aws.client("sqs"), config.physical_name(config.get().stage), clock.t)


def _one_time_schedules() -> list[dict]:
    from chalicelib import config

    group = config.physical_name(config.get().stage)
    return aws.client("scheduler").list_schedules(GroupName=group, NamePrefix="job-")["Schedules"]


def _hopped(delay: float) -> dict:
    """A job delayed the way it was before one-time schedules: a message carrying run_at, hopping."""
    from chalicelib.jobs import later
    from chalicelib.jobs.queues import first_hop, message_for

    job = enqueue("emails", "send", {}, delay_seconds=int(delay))
    later.release(later.schedule_name(job["id"], 1))
    hop, run_at = first_hop(delay, timeutil.now())
    service.queues().send("emails", message_for(service.store().get(job["id"]), run_at), hop)
    return job


def test_a_two_hour_delay_waits_on_one_one_time_schedule_and_runs_once_on_time(poller, register, clock, sqs_calls):
    # GIVEN a job delayed by two hours
    ran = _ran(register)
    start = clock.t
    job = enqueue("emails", "send", {}, delay_seconds=2 * HOUR)
    assert job["state"] == "delayed"
    assert timeutil.parse_iso(job["run_at"]) == pytest.approx(start + 2 * HOUR, abs=0.01)
    # THEN nothing is in the queue: one schedule holds it, at its time, deleting itself after
    [held] = _one_time_schedules()
    found = aws.client("scheduler").get_schedule(Name=held["Name"], GroupName=held["GroupName"])
    assert found["ScheduleExpression"].startswith("at(") and found["ActionAfterCompletion"] == "DELETE"
    assert json.loads(found["Target"]["Input"])["job_id"] == job["id"]
    assert [n for n, _ in sqs_calls if n == "SendMessage"] == []
    # WHEN the clock moves, nothing fires before the time
    clock.advance(2 * HOUR - 60)
    assert _fire_due(clock) == [] and poller.receive("emails") == []
    # THEN at two hours it fires once, the schedule is gone, and the job runs on its first attempt
    clock.advance(61)
    assert _fire_due(clock) == [held["Name"]]
    assert _fire_due(clock) == [] and _one_time_schedules() == []
    poller.drain("emails")
    assert ran == [job["id"]]
    done = service.get(job["id"])
    assert (done["state"], done["attempts"], done["run_at"]) == ("completed", 1, None)
    assert poller.visible_and_hidden("emails") == (0, 0)


def test_a_year_s_delay_is_one_schedule_and_fires_after_a_year(poller, register, clock):
    ran = _ran(register)
    job = enqueue("emails", "send", {}, delay_seconds=YEAR)
    assert len(_one_time_schedules()) == 1
    clock.advance(YEAR - HOUR)
    assert _fire_due(clock) == []
    clock.advance(HOUR + 1)
    assert len(_fire_due(clock)) == 1
    poller.drain("emails")
    assert ran == [job["id"]]


def test_a_schedule_that_cannot_be_created_leaves_no_job(clock, monkeypatch):
    from chalicelib.jobs import EnqueueError, later

    monkeypatch.setattr(later, "hold", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("Scheduler down")))
    with pytest.raises(EnqueueError):
        enqueue("emails", "send", {}, delay_seconds=2 * HOUR)
    assert service.counts("emails")["delayed"] == 0


def test_a_hop_waits_only_what_remains(poller, register, clock, sqs_calls):
    _ran(register)
    _hopped(MAX_DELAY_SECONDS + 100)
    clock.advance(MAX_DELAY_SECONDS)
    poller.run_once("emails")
    hops = [params for name, params in sqs_calls if name == "SendMessage"][1:]
    assert [h["DelaySeconds"] for h in hops] == [100]


def test_a_hop_whose_send_fails_comes_back_and_still_runs_once(poller, register, clock, monkeypatch):
    # GIVEN a job delayed by an hour whose first hop cannot be sent (SQS throttles)
    ran = _ran(register)
    job = _hopped(HOUR)
    clock.advance(MAX_DELAY_SECONDS)
    real_send = service.JobQueues.send
    monkeypatch.setattr(service.JobQueues, "send", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("throttled")))
    messages = poller.receive("emails")
    # WHEN it arrives, THEN it is not acknowledged (it comes back after a backoff)
    response = poller.deliver("emails", messages)
    assert response == {"batchItemFailures": [{"itemIdentifier": messages[0]["MessageId"]}]}
    monkeypatch.setattr(service.JobQueues, "send", real_send)
    # AND the job still runs once, when due
    for _ in range(6):
        clock.advance(MAX_DELAY_SECONDS)
        poller.drain("emails", rounds=3)
    assert ran == [job["id"]]
    assert service.get(job["id"])["attempts"] == 1


def test_a_hop_delivered_twice_runs_its_job_once(poller, register, clock):
    # GIVEN a long delay whose early message is delivered twice (the Lambda died before deleting it)
    ran = _ran(register)
    job = _hopped(MAX_DELAY_SECONDS + 300)
    clock.advance(MAX_DELAY_SECONDS)
    messages = poller.receive("emails")
    poller.deliver("emails", messages, delete=False)
    poller.deliver("emails", messages)
    # WHEN both hops arrive when due
    clock.advance(300)
    poller.drain("emails")
    # THEN the job ran once
    assert ran == [job["id"]]
    assert poller.visible_and_hidden("emails") == (0, 0)


def test_delays_up_to_a_year_are_accepted_and_longer_ones_refused(poller, clock):
    job = enqueue("emails", "send", {}, delay_seconds=YEAR)
    assert job["state"] == "delayed"
    assert timeutil.parse_iso(job["run_at"]) == pytest.approx(clock.t + YEAR, abs=0.01)
    assert poller.receive("emails") == []
    with pytest.raises(ValueError, match="delay"):
        enqueue("emails", "send", {}, delay_seconds=YEAR + 1)


def test_a_short_delay_sends_no_run_at_and_answers_it(poller, clock, sqs_calls):
    job = enqueue("emails", "send", {}, delay_seconds=60)
    assert timeutil.parse_iso(job["run_at"]) == pytest.approx(clock.t + 60, abs=0.01)
    sent = next(params for name, params in sqs_calls if name == "SendMessage")
    assert sent["DelaySeconds"] == 60 and "run_at" not in json.loads(sent["MessageBody"])


def test_a_job_without_delay_answers_no_run_at_and_normal_priority(clock):
    job = enqueue("emails", "send", {})
    assert (job["run_at"], job["priority"]) == (None, "normal")


# --- promote ---------------------------------------------------------------------------------------


def test_promote_runs_a_delayed_job_now_and_its_old_message_is_harmless(poller, register, clock):
    # GIVEN a job delayed by two hours
    ran = _ran(register)
    job = enqueue("emails", "send", {}, delay_seconds=2 * HOUR)
    # WHEN it is promoted
    promoted = service.promote(job["id"])
    # THEN it waits with no run_at, its one-time schedule is gone, and it runs at once
    assert (promoted["state"], promoted["run_at"]) == ("waiting", None)
    assert _one_time_schedules() == []
    poller.drain("emails")
    assert ran == [job["id"]]
    # AND nothing fires later: no second run
    clock.advance(2 * HOUR + 1)
    assert _fire_due(clock) == []
    poller.drain("emails")
    assert poller.visible_and_hidden("emails") == (0, 0)
    assert ran == [job["id"]]
    assert service.get(job["id"])["state"] == "completed"


def test_promote_refuses_a_job_that_is_not_delayed(clock):
    job = enqueue("emails", "send", {})
    with pytest.raises(JobStateRefused):
        service.promote(job["id"])
    with pytest.raises(LookupError):
        service.promote("0" * 32)


def test_a_promote_whose_message_cannot_be_sent_leaves_the_job_delayed(poller, register, clock):
    ran = _ran(register)
    job = enqueue("emails", "send", {}, delay_seconds=2 * HOUR)

    class Broken(service.JobQueues):
        def send(self, *a, **k):
            raise ConnectionError("SQS unreachable")

    from chalicelib.jobs import EnqueueError

    with pytest.raises(EnqueueError):
        service.promote(job["id"], sqs=Broken(aws.client("sqs"), aws.queue_url))
    after = service.get(job["id"])
    assert (after["state"], after["run_at"]) == ("delayed", job["run_at"])
    # its one-time schedule still runs it when due
    clock.advance(2 * HOUR + 1)
    assert len(_fire_due(clock)) == 1
    poller.drain("emails")
    assert ran == [job["id"]]


# --- cancel ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("delay", [0, 60, 2 * HOUR])
def test_a_cancelled_job_s_message_is_acknowledged_without_running(poller, register, clock, delay):
    ran = _ran(register)
    job = enqueue("emails", "send", {}, delay_seconds=delay)
    cancelled = service.cancel(job["id"])
    assert (cancelled["state"], cancelled["run_at"]) == ("cancelled", None)
    assert cancelled["finished_at"] is not None
    assert _one_time_schedules() == []  # a long delay's schedule is deleted
    clock.advance(delay + 1)
    _fire_due(clock)
    poller.drain("emails")
    assert ran == []
    assert poller.visible_and_hidden("emails") == (0, 0)
    assert poller.dead_letter_bodies("emails") == []
    assert service.get(job["id"])["state"] == "cancelled"
    assert service.counts("emails")["cancelled"] == 1


def test_cancel_refuses_a_job_that_is_neither_waiting_nor_delayed(poller, register, clock):
    _ran(register)
    job = enqueue("emails", "send", {})
    poller.drain("emails")
    with pytest.raises(JobStateRefused):
        service.cancel(job["id"])
    with pytest.raises(LookupError):
        service.cancel("0" * 32)


def test_a_cancelled_job_cannot_be_promoted_or_cancelled_again(clock):
    job = enqueue("emails", "send", {}, delay_seconds=2 * HOUR)
    service.cancel(job["id"])
    with pytest.raises(JobStateRefused):
        service.promote(job["id"])
    with pytest.raises(JobStateRefused):
        service.cancel(job["id"])


def test_retention_keeps_the_newest_cancelled_jobs(clock, monkeypatch):
    import dataclasses
    from collections import Counter

    from chalicelib import catalog
    from chalicelib.jobs import worker

    spec = dataclasses.replace(catalog.queue("emails"), keep_cancelled=3)
    monkeypatch.setitem(catalog.QUEUES, "emails", spec)
    monkeypatch.setattr(worker, "TRIM_EVERY", 2)
    monkeypatch.setattr(worker, "_finished", Counter())  # a fresh container
    cancelled = []
    for i in range(8):
        job = enqueue("emails", "send", {"i": i}, delay_seconds=60 * (i % 2))
        cancelled.append(service.cancel(job["id"])["id"])
        clock.advance(1)
    # trimmed at the 1st, 3rd, 5th and 7th cancel: 3 kept at the 7th, 1 more since
    assert [j for j in cancelled if service.get(j)] == cancelled[-4:]
    assert service.counts("emails")["cancelled"] == 4


# --- through the API ---------------------------------------------------------------------------------


def _article(api):
    return body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))


def test_cancelling_a_generation_rolls_its_article_back(api, poller, generator):
    # GIVEN an editor's article whose generation is delayed
    article = _article(api)
    started = api.post(f"/api/articles/{article['id']}/generate", {"delay_seconds": 1200}, as_="editor")
    job = body(started)
    assert (job["state"], body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"]) == (
        "delayed",
        "PROCESSING",
    )
    # WHEN the editor cancels it
    response = api.post(f"/api/jobs/{job['job_id']}/cancel", as_="editor")
    # THEN the job is cancelled, the article is a draft again, and the generator is never called
    assert response.status_code == 200
    assert body(response)["state"] == "cancelled"
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "DRAFT"
    for _ in range(3):  # past its run_at (the login token lives an hour)
        poller.clock.advance(900)
        poller.run_once("articles")
    assert generator.requests == []
    # AND it can be generated again
    assert api.post(f"/api/articles/{article['id']}/generate", as_="editor").status_code == 202


def test_a_rollback_that_failed_at_cancel_is_finished_by_the_job_s_message(api, poller, generator, monkeypatch):
    from chalicelib.content import articles as content

    article = _article(api)
    job = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))
    real = content.Articles.rollback
    monkeypatch.setattr(content.Articles, "rollback", lambda *a: (_ for _ in ()).throw(ConnectionError("down")))
    assert api.post(f"/api/jobs/{job['job_id']}/cancel", as_="editor").status_code == 200
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "PROCESSING"
    monkeypatch.setattr(content.Articles, "rollback", real)
    poller.drain("articles")
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "DRAFT"
    assert generator.requests == []
    assert poller.visible_and_hidden("articles") == (0, 0)


def test_cancel_is_for_admins_and_the_user_who_caused_the_job(api, clock):
    editor = api.user("editor")
    ids = [enqueue("emails", "send", {}, user_id=editor["id"])["id"] for _ in range(2)]
    assert api.post(f"/api/jobs/{ids[0]}/cancel", as_="editor-2").status_code == 404
    assert api.post(f"/api/jobs/{ids[0]}/cancel", as_="viewer").status_code == 404
    assert api.post(f"/api/jobs/{ids[0]}/cancel").status_code == 401
    assert api.post(f"/api/jobs/{ids[0]}/cancel", as_="editor").status_code == 200
    assert api.post(f"/api/jobs/{ids[1]}/cancel", as_="admin").status_code == 200
    assert api.post(f"/api/jobs/{ids[1]}/cancel", as_="admin").status_code == 409


def test_promote_is_for_admins_and_only_for_delayed_jobs(api, clock):
    editor = api.user("editor")
    job = enqueue("emails", "send", {}, user_id=editor["id"], delay_seconds=2 * HOUR)
    assert api.post(f"/api/jobs/{job['id']}/promote", as_="editor").status_code == 403
    response = api.post(f"/api/jobs/{job['id']}/promote", as_="admin")
    assert response.status_code == 200
    assert (body(response)["id"], body(response)["state"]) == (job["id"], "waiting")
    assert api.post(f"/api/jobs/{job['id']}/promote", as_="admin").status_code == 409
    assert api.post(f"/api/jobs/{'0' * 32}/promote", as_="admin").status_code == 404


def test_promote_and_cancel_are_audited(api, clock):
    api.token("admin")
    first = enqueue("emails", "send", {}, delay_seconds=2 * HOUR)
    second = enqueue("emails", "send", {})
    api.post(f"/api/jobs/{first['id']}/promote", as_="admin")
    api.post(f"/api/jobs/{second['id']}/cancel", as_="admin")

    def audited(action):
        return [e["resource"]["id"] for e in body(api.get(f"/api/audit?action={action}", as_="admin"))["items"]]

    assert audited("job.promote") == [first["id"]]
    assert audited("job.cancel") == [second["id"]]


def test_cancelled_jobs_are_listed_and_counted(api, clock):
    job = enqueue("emails", "send", {})
    service.cancel(job["id"])
    listed = body(api.get("/api/queues/emails/jobs?state=cancelled", as_="admin"))
    assert [j["id"] for j in listed["items"]] == [job["id"]]
    assert body(api.get("/api/queues/stats", as_="admin"))["queues"]["emails"]["cancelled"] == 1


# --- priorities --------------------------------------------------------------------------------------


def test_a_high_job_is_served_before_a_backlog_of_normal_ones(poller, register, clock):
    # GIVEN a backlog of normal jobs, then one high job
    ran = _ran(register)
    backlog = [enqueue("emails", "send", {"n": i})["id"] for i in range(30)]
    high = enqueue("emails", "send", {"n": "urgent"}, priority="high")
    assert high["priority"] == "high"
    # WHEN Lambda's pollers serve both queues of `emails` a batch of 5 at a time
    for _ in range(10):
        for source in ("emails", "emails-high"):
            poller.run_once(source, limit=5)
    # THEN the high job ran in the first round, not after the backlog
    assert sorted(ran) == sorted([*backlog, high["id"]])
    assert ran.index(high["id"]) < 10
    assert service.get(high["id"])["state"] == "completed"


def test_a_high_job_goes_to_its_priority_queue_and_back_off_there(poller, register, clock):
    calls = iter([ConnectionError("flaky"), None])

    def flaky(job, ctx):
        error = next(calls)
        if error:
            raise error
        return {}

    register("emails", "send", flaky)
    job = enqueue("emails", "send", {}, priority="high")
    assert poller.receive("emails") == []
    poller.drain("emails-high")
    done = service.get(job["id"])
    assert (done["state"], done["attempts"], done["priority"]) == ("completed", 2, "high")


def test_a_high_job_that_fails_for_good_is_in_its_queue_s_dead_letters_and_can_be_retried(poller, register, clock):
    from chalicelib.jobs import PermanentError

    outcomes = iter([PermanentError("no"), None])

    def once_broken(job, ctx):
        error = next(outcomes)
        if error:
            raise error
        return {}

    register("emails", "send", once_broken)
    job = enqueue("emails", "send", {}, priority="high")
    poller.drain("emails-high")
    assert [m["job_id"] for m in poller.dead_letter_bodies("emails")] == [job["id"]]
    retried = service.retry(job["id"])
    assert retried["priority"] == "high"
    clock.advance(6)
    poller.drain("emails-high")
    assert service.get(job["id"])["state"] == "completed"


def test_a_delayed_high_job_waits_and_promotes_on_its_priority_queue(poller, register, clock):
    ran = _ran(register)
    first = enqueue("emails", "send", {}, priority="high", delay_seconds=2 * HOUR)
    second = enqueue("emails", "send", {}, priority="high", delay_seconds=2 * HOUR)
    service.promote(first["id"])
    poller.drain("emails-high")
    assert ran == [first["id"]]
    clock.advance(2 * HOUR + 1)
    assert len(_fire_due(clock)) == 1
    poller.drain("emails-high")
    assert ran == [first["id"], second["id"]]
    assert poller.visible_and_hidden("emails") == (0, 0)


def test_enqueue_refuses_an_unknown_priority(clock):
    with pytest.raises(ValueError, match="priority"):
        enqueue("emails", "send", {}, priority="urgent")


def test_a_high_priority_generation_through_the_api(api, poller, generator):
    article = _article(api)
    response = api.post(f"/api/articles/{article['id']}/generate", {"priority": "high"}, as_="editor")
    job = body(response)
    assert (response.status_code, job["priority"], job["state"]) == (202, "high", "waiting")
    assert poller.receive("articles") == []
    poller.drain("articles-high")
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "PUBLISHED"
    assert body(api.get(f"/api/jobs/{job['job_id']}", as_="editor"))["priority"] == "high"


def test_an_empty_generate_body_is_normal_priority_now(api, poller, generator):
    article = _article(api)
    response = api.request("POST", f"/api/articles/{article['id']}/generate", raw=b"", as_="editor")
    job = body(response)
    assert (response.status_code, job["priority"], job["state"], job["run_at"]) == (202, "normal", "waiting", None)
    empty_object = api.post(f"/api/articles/{_article(api)['id']}/generate", {}, as_="editor")
    assert body(empty_object)["priority"] == "normal"


def test_stats_show_the_high_priority_depths(api, clock):
    enqueue("emails", "send", {})
    enqueue("emails", "send", {}, priority="high")
    enqueue("emails", "send", {}, priority="high")
    emails = body(api.get("/api/queues/stats", as_="admin"))["queues"]["emails"]
    assert emails["waiting"] == 3
    assert emails["priorities"]["high"]["waiting"] == 2
    assert emails["priorities"]["normal"]["waiting"] == 1


# --- fairness: the articles queue is a fair queue ---------------------------------------------------


def test_an_articles_job_s_message_carries_its_user_as_message_group(clock, sqs_calls):
    enqueue("articles", "generate", {"article_id": "a"}, user_id="u-1")
    enqueue("articles", "generate", {"article_id": "b"})  # no user: the shared group
    enqueue("emails", "send", {}, user_id="u-1")  # not a fair queue: no group
    sent = [params for name, params in sqs_calls if name == "SendMessage"]
    assert [p.get("MessageGroupId") for p in sent] == ["u-1", "system", None]


def test_a_long_delayed_articles_job_s_schedule_keeps_its_group(clock):
    job = enqueue("articles", "generate", {"article_id": "a"}, user_id="u-2", delay_seconds=2 * HOUR)
    from chalicelib.jobs import later

    found = aws.client("scheduler").get_schedule(Name=later.schedule_name(job["id"], 1), GroupName=_group())
    assert found["Target"]["SqsParameters"] == {"MessageGroupId": "u-2"}


def _group() -> str:
    from chalicelib import config

    return config.physical_name(config.get().stage)
