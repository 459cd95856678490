"""GET /api/jobs/{id}, POST /api/jobs/{id}/retry, GET /api/queues/{queue}/jobs."""

from __future__ import annotations

import pytest

from chalicelib.jobs import PermanentError, enqueue, service
from tests.conftest import body
from tests.functional.jobs.conftest import CONTRACT_FIELDS


def test_a_job_is_visible_to_admins_and_to_the_user_who_caused_it(api):
    editor = api.user("editor")
    job = enqueue("emails", "send", {"template": "job_failed"}, user_id=editor["id"])
    mine = api.get(f"/api/jobs/{job['id']}", as_="editor")
    assert mine.status_code == 200
    assert set(body(mine)) >= CONTRACT_FIELDS
    assert api.get(f"/api/jobs/{job['id']}", as_="admin").status_code == 200
    assert api.get(f"/api/jobs/{job['id']}", as_="editor-2").status_code == 404
    assert api.get(f"/api/jobs/{job['id']}", as_="viewer").status_code == 404
    assert api.get(f"/api/jobs/{job['id']}").status_code == 401


def test_a_completed_job_answers_when_it_started(api, poller, register):
    register("emails", "send", lambda job, ctx: {})
    job = enqueue("emails", "send", {})
    poller.drain("emails")
    answer = body(api.get(f"/api/jobs/{job['id']}", as_="admin"))
    assert answer["state"] == "completed"
    assert answer["started_at"] is not None and answer["created_at"] <= answer["started_at"] <= answer["finished_at"]


@pytest.mark.parametrize("job_id", ["0" * 32, "nope", "idem%23emails%23k", "A" * 32, "x" * 300])
def test_unknown_or_malformed_job_ids_are_404(api, job_id):
    enqueue("emails", "send", {}, idempotency_key="k")
    assert api.get(f"/api/jobs/{job_id}", as_="admin").status_code == 404
    assert api.post(f"/api/jobs/{job_id}/retry", as_="admin").status_code == 404


def test_retry_is_for_admins_and_only_for_failed_jobs(api, poller, register):
    register("emails", "send", lambda job, ctx: (_ for _ in ()).throw(PermanentError("no")))
    api.token("admin")
    job = enqueue("emails", "send", {})
    assert api.post(f"/api/jobs/{job['id']}/retry", as_="admin").status_code == 409
    poller.drain("emails")
    assert api.post(f"/api/jobs/{job['id']}/retry", as_="editor").status_code == 403
    response = api.post(f"/api/jobs/{job['id']}/retry", as_="admin")
    assert response.status_code == 202
    assert body(response)["state"] == "waiting"
    assert api.post(f"/api/jobs/{job['id']}/retry", as_="admin").status_code == 409


def test_a_retry_the_article_refuses_is_a_conflict(api, poller, generator):
    api.token("admin")
    generator.answers = [(400, {})]
    article = body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    poller.drain("articles")
    api.post(f"/api/articles/{article['id']}/generate", as_="editor")  # a new generation is running
    response = api.post(f"/api/jobs/{job_id}/retry", as_="admin")
    assert response.status_code == 409
    assert service.get(job_id)["state"] == "failed"


def test_a_queue_s_jobs_are_listed_by_state_and_paged(api, poller, register):
    register("emails", "send", lambda job, ctx: {})
    api.token("admin")
    ids = [enqueue("emails", "send", {"n": i})["id"] for i in range(3)]
    waiting = body(api.get("/api/queues/emails/jobs", as_="admin"))
    assert sorted(j["id"] for j in waiting["items"]) == sorted(ids)
    poller.drain("emails")
    first = body(api.get("/api/queues/emails/jobs?state=completed&limit=2", as_="admin"))
    assert len(first["items"]) == 2 and first["next_cursor"]
    rest = body(api.get(f"/api/queues/emails/jobs?state=completed&limit=2&cursor={first['next_cursor']}", as_="admin"))
    assert len(rest["items"]) == 1 and rest["next_cursor"] is None
    assert {j["id"] for j in first["items"] + rest["items"]} == set(ids)
    assert body(api.get("/api/queues/emails/jobs?state=waiting", as_="admin"))["items"] == []


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/queues/nope/jobs", 404),
        ("/api/queues/emails/jobs?state=bogus", 400),
        ("/api/queues/emails/jobs?limit=0", 400),
        ("/api/queues/emails/jobs?limit=201", 400),
        ("/api/queues/emails/jobs?cursor=garbage", 400),
        ("/api/queues/emails/jobs?cursor=e30", 400),
    ],
)
def test_queue_listing_refuses_bad_input(api, path, status):
    assert api.get(path, as_="admin").status_code == status


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_queue_listing_is_for_admins(api, role):
    assert api.get("/api/queues/emails/jobs", as_=role).status_code == 403


def _audited(api, action):
    return [e["resource"]["id"] for e in body(api.get(f"/api/audit?action={action}", as_="admin"))["items"]]


def test_article_actions_and_job_retries_are_audited(api, poller, register, generator):
    # GIVEN an editor's article whose generation fails for good
    api.token("admin")
    generator.answers = [(400, {})]
    article = body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))
    # WHEN the editor generates it and an admin retries the failed job
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    poller.drain("articles")
    assert api.post(f"/api/jobs/{job_id}/retry", as_="admin").status_code == 202
    # THEN both are in the trail, naming the article and the job
    assert article["id"] in _audited(api, "article.generate")
    assert job_id in _audited(api, "job.retry")


def test_publish_and_archive_requests_are_audited(api, poller, generator):
    api.token("admin")
    article = body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))
    api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    poller.drain("articles")
    assert api.post(f"/api/articles/{article['id']}/archive", as_="editor").status_code == 202
    poller.drain("articles")
    assert api.post(f"/api/articles/{article['id']}/publish", as_="editor").status_code == 202
    assert article["id"] in _audited(api, "article.archive")
    assert article["id"] in _audited(api, "article.publish")
