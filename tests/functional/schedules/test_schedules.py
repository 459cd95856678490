"""Scheduled tasks on moto: once per slot, last runs and outcomes, the run lease, the routes."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import pytest

from chalicelib import catalog, cron, events, http, timeutil
from chalicelib.schedules import service as schedules
from tests.conftest import body
from tests.functional.schedules.conftest import cw_event

NOW = datetime(2026, 11, 28, 10, 30, tzinfo=UTC).timestamp()


class FakeJobs:
    """`jobs.enqueue` as the brief defines it: a second call with a known idempotency key
    returns the first job and enqueues nothing."""

    def __init__(self) -> None:
        self.enqueued: list[dict[str, Any]] = []
        self.by_key: dict[str, dict[str, Any]] = {}

    def enqueue(self, queue, type, payload, *, user_id=None, idempotency_key=None, delay_seconds=0):
        if idempotency_key in self.by_key:
            return self.by_key[idempotency_key]
        job = {"id": str(uuid.uuid4()), "queue": queue, "type": type, "state": "waiting", "payload": payload}
        job["user_id"] = user_id
        self.enqueued.append(job)
        if idempotency_key:
            self.by_key[idempotency_key] = job
        return job


@pytest.fixture
def jobs(monkeypatch) -> FakeJobs:
    fake = FakeJobs()
    monkeypatch.setattr(schedules, "_enqueue", lambda: fake.enqueue)
    return fake


@pytest.fixture
def fixed_now(monkeypatch):
    moment = {"now": NOW}
    monkeypatch.setattr(timeutil, "now", lambda: moment["now"])
    return moment


def stored(name: str) -> dict[str, Any]:
    return schedules.runs().get(name) or {}


# --- the Lambdas --------------------------------------------------------------------------------


def test_every_catalogue_schedule_is_its_own_lambda_reachable_as_app_attribute(app):
    import app as app_module

    # plain Lambda functions, invoked by EventBridge Scheduler: no Chalice schedule (an EventBridge rule)
    assert [e for e in app.event_sources if type(e).__name__ == "ScheduledEventConfig"] == []
    functions = {f.name: f for f in app.pure_lambda_functions}
    for schedule in catalog.SCHEDULES.values():
        function = functions[schedule.name.replace("-", "_")]
        module, _, attribute = function.handler_string.partition(".")
        assert module == "app"
        assert getattr(app_module, attribute) is app.handler_map[function.name]
    assert len({functions[s.name.replace("-", "_")].handler_string for s in catalog.SCHEDULES.values()}) == len(
        catalog.SCHEDULES
    )


def test_a_scheduled_event_enqueues_the_job_of_its_slot(client, jobs, fixed_now):
    client.lambda_.invoke("daily_analytics", cw_event("2026-11-28T02:00:00Z"))
    [job] = jobs.enqueued
    assert (job["queue"], job["type"]) == ("analytics", "daily_report")
    assert job["payload"] == {
        "schedule": "daily-analytics",
        "slot": "2026-11-28T02:00:00Z",
        "manual": False,
        "date": "2026-11-27",
    }
    assert list(jobs.by_key) == ["daily-analytics#2026-11-28T02:00:00Z"]
    assert stored("daily-analytics")["last_run"] == "2026-11-28T02:00:00Z"
    assert stored("daily-analytics")["last_status"] == "waiting"


def test_a_duplicate_event_gives_one_job(client, jobs, fixed_now):
    for _ in range(2):
        client.lambda_.invoke("session_cleanup", cw_event("2026-11-28T10:00:00Z"))
    client.lambda_.invoke("session_cleanup", cw_event("2026-11-28T10:00:07Z"))  # same slot, jittered
    assert len(jobs.enqueued) == 1
    assert stored("session-cleanup")["last_job_id"] == jobs.enqueued[0]["id"]


def test_a_duplicate_after_the_run_finished_does_not_reset_its_status(jobs, aws_mock, fixed_now):
    job = schedules.fire("session-cleanup", "2026-11-28T10:00:00Z")
    events.publish(events.JobEvent("completed", job))
    again = schedules.fire("session-cleanup", "2026-11-28T10:00:00Z")
    assert again["id"] == job["id"]
    assert stored("session-cleanup")["last_status"] == "completed"


def test_a_late_event_for_an_old_slot_gives_one_job_for_that_slot(client, jobs, fixed_now):
    client.lambda_.invoke("daily_analytics", cw_event("2026-11-28T02:00:00Z"))
    client.lambda_.invoke("daily_analytics", cw_event("2026-11-27T02:00:00Z"))  # yesterday's, late
    client.lambda_.invoke("daily_analytics", cw_event("2026-11-27T02:00:00Z"))
    assert [j["payload"]["date"] for j in jobs.enqueued] == ["2026-11-27", "2026-11-26"]
    assert set(jobs.by_key) == {"daily-analytics#2026-11-28T02:00:00Z", "daily-analytics#2026-11-27T02:00:00Z"}
    # the late run does not pass for the newest one
    assert stored("daily-analytics")["last_run"] == "2026-11-28T02:00:00Z"
    assert stored("daily-analytics")["last_job_id"] == jobs.enqueued[0]["id"]


def test_an_event_without_a_time_runs_the_current_slot(jobs, aws_mock, fixed_now):
    job = schedules.fire("session-cleanup", None)
    assert job["payload"]["slot"] == "2026-11-28T10:00:00Z"


@pytest.mark.parametrize("bad_time", ["", "yesterday", 1795861800, "2026-13-45T99:00:00Z"])
def test_an_event_with_a_bad_time_runs_the_current_slot(jobs, aws_mock, fixed_now, bad_time):
    assert schedules.fire("session-cleanup", bad_time)["payload"]["slot"] == "2026-11-28T10:00:00Z"


def test_an_event_whose_recording_failed_is_retried_into_the_same_single_job(jobs, aws_mock, fixed_now, monkeypatch):
    from botocore.exceptions import ClientError

    from chalicelib.schedules.store import ScheduleRuns

    real, calls = ScheduleRuns.record_run, []

    def flaky(self, *args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "UpdateItem")
        return real(self, *args, **kwargs)

    monkeypatch.setattr(ScheduleRuns, "record_run", flaky)
    with pytest.raises(ClientError):  # the Lambda fails; EventBridge invokes it again
        schedules.fire("daily-analytics", "2026-11-28T02:00:00Z")
    job = schedules.fire("daily-analytics", "2026-11-28T02:00:00Z")
    assert jobs.enqueued == [job]
    assert stored("daily-analytics")["last_job_id"] == job["id"]


# --- outcomes -----------------------------------------------------------------------------------


def test_job_events_store_the_outcome_of_the_last_run(jobs, aws_mock, fixed_now):
    job = schedules.fire("weekly-report", "2026-11-30T03:00:00Z")
    events.publish(events.JobEvent("active", job))
    assert stored("weekly-report")["last_status"] == "active"
    events.publish(events.JobEvent("retrying", job, error={"message": "boom"}))
    assert stored("weekly-report")["last_status"] == "delayed"
    events.publish(events.JobEvent("progress", job))
    assert stored("weekly-report")["last_status"] == "delayed"
    events.publish(events.JobEvent("failed", job, error={"message": "boom"}))
    assert stored("weekly-report")["last_status"] == "failed"


def test_an_older_runs_outcome_does_not_overwrite_the_last_runs(jobs, aws_mock, fixed_now):
    old = schedules.fire("session-cleanup", "2026-11-28T09:00:00Z")
    new = schedules.fire("session-cleanup", "2026-11-28T10:00:00Z")
    events.publish(events.JobEvent("failed", old))
    assert stored("session-cleanup")["last_status"] == "waiting"
    events.publish(events.JobEvent("completed", new))
    assert stored("session-cleanup")["last_status"] == "completed"


def test_jobs_that_do_not_come_from_a_schedule_are_ignored(aws_mock):
    foreign = [
        {"id": "j1", "queue": "articles", "type": "generate", "payload": {"article_id": "a"}},
        {"id": "j2", "queue": "articles", "type": "generate", "payload": {"schedule": "daily-analytics"}},
        {"id": "j3", "queue": "cleanup", "type": "sessions", "payload": {"schedule": "nope"}},
        {"id": "j4", "queue": "cleanup", "type": "sessions", "payload": None},
    ]
    for job in foreign:
        events.publish(events.JobEvent("completed", job))
        assert schedules.schedule_of(job) is None
    assert schedules.runs().get_many(list(catalog.SCHEDULES)) == {}


# --- no overlap ---------------------------------------------------------------------------------


def scheduled_job(job_id: str, name: str = "daily-analytics") -> dict[str, Any]:
    schedule = catalog.SCHEDULES[name]
    return {"id": job_id, "queue": schedule.queue, "type": schedule.job_type, "payload": {"schedule": name}}


def test_a_run_waits_while_the_previous_run_is_active(aws_mock, fixed_now):
    with schedules.exclusive(scheduled_job("first")):
        with pytest.raises(schedules.ScheduleBusy) as busy, schedules.exclusive(scheduled_job("second")):
            pytest.fail("the second run started while the first was active")
        # it waits until the first run's lease has surely ended, then retries
        assert busy.value.retry_after == catalog.queue("analytics").function_timeout + 1
        with schedules.exclusive(scheduled_job("other", "session-cleanup")):
            pass  # other schedules are not held up
    with schedules.exclusive(scheduled_job("second")):
        assert stored("daily-analytics")["lease_job"] == "second"
    assert "lease_job" not in stored("daily-analytics")


class FakeCtx:
    def __init__(self, left: float) -> None:
        self.left = left

    def time_left(self) -> float:
        return self.left


def test_a_run_waits_for_the_previous_one_to_finish_then_runs(aws_mock, fixed_now, monkeypatch):
    slept: list[float] = []

    def sleep(seconds):  # the first run finishes while the second waits
        slept.append(seconds)
        fixed_now["now"] += seconds
        if len(slept) == 3:
            schedules.runs().release("daily-analytics", "first")

    monkeypatch.setattr(schedules, "sleep", sleep)
    schedules.runs().acquire("daily-analytics", "first", timeutil.now(), 300)
    with schedules.exclusive(scheduled_job("second"), FakeCtx(295)):
        assert stored("daily-analytics")["lease_job"] == "second"
    assert slept == [schedules.LEASE_POLL_SECONDS] * 3


def test_a_run_waits_at_most_half_its_time_before_it_retries(aws_mock, fixed_now, monkeypatch):
    slept: list[float] = []
    monkeypatch.setattr(schedules, "sleep", lambda s: (slept.append(s), fixed_now.update(now=fixed_now["now"] + s)))
    schedules.runs().acquire("daily-analytics", "first", timeutil.now(), 300)
    with pytest.raises(schedules.ScheduleBusy), schedules.exclusive(scheduled_job("second"), FakeCtx(100)):
        pass
    assert 45 <= sum(slept) <= 50
    assert stored("daily-analytics")["lease_job"] == "first"


def test_the_lease_is_given_back_when_the_run_fails(aws_mock, fixed_now):
    with pytest.raises(RuntimeError), schedules.exclusive(scheduled_job("first")):
        raise RuntimeError("processor crashed")
    with schedules.exclusive(scheduled_job("second")):
        pass


def test_a_lease_left_by_a_dead_worker_expires_after_the_function_timeout(aws_mock, fixed_now):
    schedules.runs().acquire("daily-analytics", "dead", timeutil.now(), catalog.queue("analytics").function_timeout)
    fixed_now["now"] += 100
    with pytest.raises(schedules.ScheduleBusy) as busy, schedules.exclusive(scheduled_job("second")):
        pass
    assert busy.value.retry_after == catalog.queue("analytics").function_timeout - 100 + 1
    fixed_now["now"] += busy.value.retry_after
    with schedules.exclusive(scheduled_job("second")):
        pass


def test_a_redelivered_job_may_take_its_own_lease_again(aws_mock, fixed_now):
    schedules.runs().acquire("daily-analytics", "same", timeutil.now(), 300)
    with schedules.exclusive(scheduled_job("same")):
        pass


def test_jobs_from_no_schedule_run_without_a_lease(aws_mock):
    with schedules.exclusive({"id": "x", "queue": "articles", "type": "generate", "payload": {}}):
        pass
    assert schedules.runs().get_many(list(catalog.SCHEDULES)) == {}


# --- routes -------------------------------------------------------------------------------------


def test_the_listing_shows_every_schedule_with_its_next_and_last_run(jobs, aws_mock, fixed_now):
    schedules.fire("daily-analytics", "2026-11-28T02:00:00Z")
    items = {i["name"]: i for i in schedules.listing({})["items"]}
    assert list(items) == list(catalog.SCHEDULES)
    assert {k: items["daily-analytics"][k] for k in ("expression", "next_run", "last_run", "last_status")} == {
        "expression": "cron(0 2 * * ? *)",
        "next_run": "2026-11-29T02:00:00Z",
        "last_run": "2026-11-28T02:00:00Z",
        "last_status": "waiting",
    }
    assert items["session-cleanup"]["next_run"] == "2026-11-28T11:00:00Z"
    assert items["weekly-report"]["next_run"] == "2026-11-30T03:00:00Z"
    assert items["webhook-log-cleanup"]["next_run"] == "2026-12-01T05:00:00Z"
    assert items["analytics-data-cleanup"]["next_run"] == "2026-12-01T06:00:00Z"
    assert items["audit-digest"]["next_run"] == "2026-11-28T11:05:00Z"
    assert items["audit-tally"]["next_run"] == "2026-11-28T10:35:00Z"
    assert (items["session-cleanup"]["last_run"], items["session-cleanup"]["last_status"]) == (None, None)
    # across the year's end
    new_year = {i["name"]: i["next_run"] for i in schedules.listing({}, now=NOW + 33 * 86400 + 13.5 * 3600)["items"]}
    assert new_year["daily-analytics"] == "2027-01-01T02:00:00Z"
    assert new_year["weekly-report"] == "2027-01-04T03:00:00Z"
    assert new_year["analytics-data-cleanup"] == "2027-01-01T06:00:00Z"


def iso_next(expression: str, moment: float) -> str:
    return cron.next_run(expression, moment).strftime("%Y-%m-%dT%H:%M:%SZ")


def test_get_schedules_answers_the_catalogue_for_admins(api, jobs):
    before = timeutil.now()
    response = api.get("/api/schedules", as_="admin")
    after = timeutil.now()
    assert response.status_code == 200
    data = body(response)
    assert data["next_cursor"] is None
    assert [i["name"] for i in data["items"]] == list(catalog.SCHEDULES)
    for item in data["items"]:
        schedule = catalog.SCHEDULES[item["name"]]
        assert {"name", "expression", "description", "next_run", "last_run", "last_status"} <= set(item)
        assert (item["expression"], item["description"]) == (schedule.expression, schedule.description)
        assert item["next_run"] in {iso_next(schedule.expression, before), iso_next(schedule.expression, after)}


def test_the_listing_pages_like_every_list(api):
    names, cursor = [], None
    for _ in range(len(catalog.SCHEDULES)):
        response = api.get("/api/schedules?limit=3" + (f"&cursor={cursor}" if cursor else ""), as_="admin")
        assert response.status_code == 200
        page = body(response)
        assert len(page["items"]) <= 3
        names += [i["name"] for i in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert names == list(catalog.SCHEDULES)
    forged = http.encode_cursor({"name": "no-such-schedule"})
    response = api.get(f"/api/schedules?cursor={forged}", as_="admin")
    assert response.status_code == 400
    assert body(response)["Errors"][0]["field"] == "cursor"


def test_run_now_enqueues_a_run_of_its_own_slot(api, jobs):
    schedules.fire("daily-analytics", "2026-11-28T02:00:00Z")
    first = api.post("/api/schedules/daily-analytics/run", as_="admin")
    second = api.post("/api/schedules/daily-analytics/run", as_="admin")
    assert first.status_code == second.status_code == 202
    assert body(first)["job_id"] != body(second)["job_id"]
    assert len(jobs.enqueued) == 3
    manual = jobs.enqueued[1]
    assert (manual["queue"], manual["type"]) == ("analytics", "daily_report")
    yesterday = datetime.fromtimestamp(timeutil.now() - 86400, UTC).date().isoformat()
    assert manual["payload"]["date"] == yesterday
    assert manual["payload"]["manual"] is True
    assert manual["user_id"] == api.user("admin")["id"]
    state = stored("daily-analytics")
    assert state["last_job_id"] == body(second)["job_id"]
    assert state["last_manual"] is True
    assert state["last_run"] > "2026-11-28T02:00:00Z"


def test_run_now_of_an_unknown_schedule_is_404(api, jobs):
    for name in ("nope", "daily_analytics", "DAILY-ANALYTICS", "%20"):
        response = api.post(f"/api/schedules/{name}/run", as_="admin")
        assert response.status_code == 404, name
        assert body(response)["Code"] == "NotFoundError"
    assert jobs.enqueued == []


def test_run_now_answers_503_when_the_queue_refuses_the_message(api, monkeypatch):
    from chalicelib import jobs as jobs_capability

    def refuse(*args, **kwargs):
        raise jobs_capability.EnqueueError("could not queue the job: EndpointConnectionError")

    monkeypatch.setattr(schedules, "_enqueue", lambda: refuse)
    response = api.post("/api/schedules/daily-analytics/run", as_="admin")
    assert response.status_code == 503
    assert body(response)["Code"] == "ServiceUnavailableError"
    assert stored("daily-analytics") == {}


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_schedules_are_admin_only(api, jobs, role):
    assert api.get("/api/schedules", as_=role).status_code == 403
    assert api.post("/api/schedules/daily-analytics/run", as_=role).status_code == 403
    assert jobs.enqueued == []


def test_schedules_need_credentials(api, jobs):
    assert api.get("/api/schedules").status_code == 401
    assert api.post("/api/schedules/daily-analytics/run").status_code == 401
    assert api.post("/api/schedules/daily-analytics/run", token="not-a-jwt").status_code == 401
    assert jobs.enqueued == []


# --- audit --------------------------------------------------------------------------------------


def audited(api, action: str) -> list[dict[str, Any]]:
    response = api.get(f"/api/audit?action={action}", as_="admin")
    assert response.status_code == 200, response.body
    return body(response)["items"]


def test_a_manual_run_is_audited_as_schedule_run_with_its_actor(api, jobs):
    job_id = body(api.post("/api/schedules/weekly-report/run", as_="admin"))["job_id"]
    api.post("/api/schedules/nope/run", as_="admin")  # refused: nothing to audit
    [event] = audited(api, "schedule.run")
    assert event["actor"]["user_id"] == api.user("admin")["id"]
    assert (event["resource"]["type"], event["resource"]["id"]) == ("schedule", "weekly-report")
    assert event["details"]["job_id"] == job_id
    assert event["category"] == "system"


def test_a_slot_is_audited_once_as_schedule_triggered_however_often_it_is_delivered(api, client, jobs):
    hour = datetime.fromtimestamp(timeutil.now(), UTC).strftime("%Y-%m-%dT%H:00:00Z")
    for _ in range(3):
        client.lambda_.invoke("session_cleanup", cw_event(hour))
    [event] = audited(api, "schedule.triggered")
    assert (event["resource"]["type"], event["resource"]["id"]) == ("schedule", "session-cleanup")
    assert event["details"] == {"job_id": jobs.enqueued[0]["id"], "queue": "cleanup", "type": "sessions", "slot": hour}
