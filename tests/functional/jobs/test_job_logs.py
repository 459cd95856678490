"""Per-job logs: `ctx.log` per attempt, masked, bounded, kept on the job record (gone with it),
one request an attempt; GET /api/jobs/{id}/logs for admins and the user who caused the job."""

from __future__ import annotations

from collections import Counter

import pytest

from chalicelib import aws
from chalicelib.jobs import enqueue, joblog, service
from tests.conftest import body

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ1In0.c2lnbmF0dXJl"


@pytest.fixture
def requests(aws_mock):
    """Requests on the jobs table by name, while the fixture lives (settings read through caches
    that expire by the wall clock are left out: they come and go with the machine's speed)."""
    from chalicelib import config

    seen: Counter[str] = Counter()
    jobs = config.get().resource_name("jobs")  # no client made yet: they copy the session's hooks when made

    def count(model, params, **_):
        if params.get("TableName") == jobs or jobs in (params.get("RequestItems") or {}) or "TransactItems" in params:
            seen[model.name] += 1

    aws.session().events.register("before-parameter-build.dynamodb", count)
    yield seen
    aws.session().events.unregister("before-parameter-build.dynamodb", count)


def flaky(job, ctx):
    ctx.log("info", f"attempt {ctx.attempt} starts")
    ctx.log("debug", f"calling with Bearer abc.def and token {JWT}")
    if ctx.attempt == 1:
        ctx.log("error", "the service answered 503")
        raise RuntimeError("service unavailable")
    return {}


def test_lines_are_kept_per_attempt_and_masked(api, poller, register):
    register("emails", "send", flaky)
    editor = api.user("editor")
    job = enqueue("emails", "send", {}, user_id=editor["id"])
    poller.drain("emails", step=60)
    answer = api.get(f"/api/jobs/{job['id']}/logs", as_="editor")
    assert answer.status_code == 200
    lines = body(answer)["items"]
    assert [(line["attempt"], line["level"]) for line in lines] == [
        (1, "info"),
        (1, "debug"),
        (1, "error"),
        (2, "info"),
        (2, "debug"),
    ]
    assert lines[0]["message"] == "attempt 1 starts" and lines[0]["ts"]
    assert JWT not in answer.body.decode() and "abc.def" not in answer.body.decode()
    assert "[REDACTED]" in lines[1]["message"]
    timeline = body(answer)["attempts"]
    assert [(a["attempt"], a["outcome"]) for a in timeline] == [(1, "retrying"), (2, "completed")]
    assert timeline[0]["error"]["message"] == "RuntimeError: service unavailable"
    assert all(a["started_at"] <= a["ended_at"] for a in timeline)
    assert timeline[0]["ended_at"] <= timeline[1]["started_at"]


def test_logs_are_for_admins_and_the_user_who_caused_the_job(api, poller, register):
    register("emails", "send", lambda job, ctx: ctx.log("info", "hello") or {})
    editor = api.user("editor")
    job = enqueue("emails", "send", {}, user_id=editor["id"])
    poller.drain("emails")
    assert len(body(api.get(f"/api/jobs/{job['id']}/logs", as_="admin"))["items"]) == 1
    assert api.get(f"/api/jobs/{job['id']}/logs", as_="editor-2").status_code == 404
    assert api.get(f"/api/jobs/{job['id']}/logs", as_="viewer").status_code == 404
    assert api.get(f"/api/jobs/{job['id']}/logs").status_code == 401
    assert api.get(f"/api/jobs/{'0' * 32}/logs", as_="admin").status_code == 404


def test_an_attempt_keeps_at_most_100_lines_and_8_kb(api, poller, register):
    def chatty(job, ctx):
        for i in range(150):
            ctx.log("info", f"line {i}")
        return {}

    def wordy(job, ctx):
        for _ in range(40):
            ctx.log("info", "x" * 1000)
        return {}

    register("emails", "send", chatty)
    register("cleanup", "orphans", wordy)
    many = enqueue("emails", "send", {})
    big = enqueue("cleanup", "orphans", {})
    poller.drain("emails")
    poller.drain("cleanup")
    lines = body(api.get(f"/api/jobs/{many['id']}/logs", as_="admin"))["items"]
    assert len(lines) == joblog.MAX_LINES
    assert lines[-1]["message"].startswith("51 more lines not kept")
    wide = body(api.get(f"/api/jobs/{big['id']}/logs", as_="admin"))["items"]
    assert sum(len(line["message"].encode()) for line in wide[:-1]) <= joblog.MAX_BYTES
    assert wide[-1]["level"] == "warning" and "not kept" in wide[-1]["message"]


def test_a_bad_level_fails_the_attempt_clearly():
    log = joblog.AttemptLog()
    with pytest.raises(ValueError, match="one of debug, info, warning, error"):
        log.add("loud", "x")


def test_logs_live_on_the_job_record_and_go_with_it(api, poller, register):
    register("emails", "send", lambda job, ctx: ctx.log("info", "kept") or {})
    job = enqueue("emails", "send", {})
    poller.drain("emails")
    record = service.store().get(job["id"])
    assert joblog.attribute(1, 1) in record  # the record's TTL is the log's
    assert api.delete(f"/api/jobs/{job['id']}", as_="admin").status_code == 204
    assert api.get(f"/api/jobs/{job['id']}/logs", as_="admin").status_code == 404


def test_logs_of_older_runs_are_dropped(aws_mock):
    store = service.store()
    job = enqueue("emails", "send", {})
    for run in range(1, joblog.KEEP_RUNS + 3):
        attempt = joblog.AttemptLog()
        attempt.add("info", f"run {run}")
        joblog.write(store.table, {**store.get(job["id"]), "run": run, "attempts": 1}, attempt, None)
    runs = {line["run"] for line in joblog.lines_of(store.get(job["id"]))}
    assert runs == set(range(3, joblog.KEEP_RUNS + 3))


def test_logging_costs_one_request_an_attempt(api, poller, register, requests, monkeypatch):
    from chalicelib.jobs import worker

    monkeypatch.setattr(worker, "retain", lambda *a: None)  # trims run every TRIM_EVERY jobs: not here
    register("emails", "send", lambda job, ctx: [ctx.log("info", f"{i}") for i in range(job["payload"]["n"])] and {})
    enqueue("emails", "send", {"n": 0})
    poller.drain("emails")  # settings read once a container are read now
    requests.clear()
    enqueue("emails", "send", {"n": 0})
    poller.drain("emails")
    quiet = sum(requests.values())
    requests.clear()
    enqueue("emails", "send", {"n": 20})
    poller.drain("emails")
    assert sum(requests.values()) == quiet + 1
    assert requests["UpdateItem"] >= 1


def test_the_article_generation_logs_its_steps(api, poller, generator):
    api.token("admin")
    generator.answers = [(500, {}), (400, {})]
    article = body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    poller.drain("articles", step=60)
    messages = [
        (line["attempt"], line["message"]) for line in body(api.get(f"/api/jobs/{job_id}/logs", as_="admin"))["items"]
    ]
    assert messages[0][1].startswith(f"calling the generator for article {article['id']}")
    assert any(a == 1 and "failed after" in m and "500" in m for a, m in messages)
    assert any(a == 2 and "rolled back to DRAFT" in m for a, m in messages)
