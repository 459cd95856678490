"""GET /api/jobs: search over every job kept, by each filter, indexed (no Scan)."""

from __future__ import annotations

import pytest

from chalicelib.jobs import PermanentError, enqueue
from tests.conftest import body

pytestmark = pytest.mark.usefixtures("no_scans")


@pytest.fixture
def no_scans(aws_mock, monkeypatch):
    """Fail the test on any Scan of the jobs table."""
    from chalicelib import aws

    def refuse(model, params, **_):
        if model.name == "Scan":
            raise AssertionError(f"a Scan: {params}")

    aws.session().events.register("before-call.dynamodb.Scan", refuse)
    yield
    aws.session().events.unregister("before-call.dynamodb.Scan", refuse)


def ids(response):
    assert response.status_code == 200, response.body
    return [job["id"] for job in body(response)["items"]]


def test_each_filter_finds_its_jobs_newest_first(api, clock):
    editor = api.user("editor")
    a = enqueue("emails", "send", {"template": "x"}, user_id=editor["id"])
    clock.advance(1)
    b = enqueue("articles", "generate", {"article_id": "f" * 32, "title": "t", "topic": "t"})
    clock.advance(1)
    c = enqueue("emails", "send", {"template": "y"}, delay_seconds=60)
    assert ids(api.get("/api/jobs", as_="admin"))[:3] == [c["id"], b["id"], a["id"]]
    assert ids(api.get("/api/jobs?queue=emails", as_="admin")) == [c["id"], a["id"]]
    assert ids(api.get("/api/jobs?state=delayed", as_="admin")) == [c["id"]]
    assert ids(api.get("/api/jobs?type=generate", as_="admin")) == [b["id"]]
    assert ids(api.get(f"/api/jobs?user_id={editor['id']}", as_="admin")) == [a["id"]]
    assert ids(api.get(f"/api/jobs?article_id={'f' * 32}", as_="admin")) == [b["id"]]
    assert ids(api.get("/api/jobs?queue=emails&state=waiting", as_="admin")) == [a["id"]]
    assert ids(api.get(f"/api/jobs?q={b['id']}", as_="admin")) == [b["id"]]
    assert ids(api.get(f"/api/jobs?q={b['id']}&queue=emails", as_="admin")) == []
    since, until = b["created_at"], b["created_at"]
    assert ids(api.get(f"/api/jobs?since={since}&until={until}", as_="admin")) == [b["id"]]
    assert ids(api.get(f"/api/jobs?queue=emails&since={since}", as_="admin")) == [c["id"]]


def test_q_finds_failed_jobs_by_words_of_their_error(api, poller, register):
    def boom(job, ctx):
        raise PermanentError(f"mailbox {job['payload']['box']} unreachable")

    register("emails", "send", boom)
    first = enqueue("emails", "send", {"box": "alpha"})
    second = enqueue("emails", "send", {"box": "beta"})
    enqueue("emails", "send", {"box": "gamma"}, delay_seconds=600)  # never ran: no error
    poller.drain("emails")
    assert set(ids(api.get("/api/jobs?q=unreachable", as_="admin"))) == {first["id"], second["id"]}
    assert ids(api.get("/api/jobs?q=Mailbox+beta", as_="admin")) == [second["id"]]
    assert ids(api.get("/api/jobs?q=unreachable&state=completed", as_="admin")) == []
    # a job removed, or whose error is gone, is no answer although its word items remain
    assert api.delete(f"/api/jobs/{first['id']}", as_="admin").status_code == 204
    assert ids(api.get("/api/jobs?q=unreachable", as_="admin")) == [second["id"]]


def test_pages_continue_with_the_cursor(api, clock):
    made = []
    for i in range(5):
        made.append(enqueue("emails", "send", {"n": i})["id"])
        clock.advance(1)
    seen, cursor = [], ""
    for _ in range(5):
        answer = body(api.get(f"/api/jobs?queue=emails&limit=2{cursor}", as_="admin"))
        seen += [job["id"] for job in answer["items"]]
        if not answer["next_cursor"]:
            break
        cursor = f"&cursor={answer['next_cursor']}"
    assert seen == made[::-1]
    other = body(api.get("/api/jobs?queue=emails&limit=2", as_="admin"))["next_cursor"]
    assert api.get(f"/api/jobs?queue=cleanup&cursor={other}", as_="admin").status_code == 400


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("queue=nope", "queue"),
        ("state=lost", "state"),
        ("q=a", "q"),
        ("since=yesterday", "since"),
        ("limit=0", "limit"),
    ],
)
def test_bad_filters_are_400_naming_the_field(api, query, field):
    response = api.get(f"/api/jobs?{query}", as_="admin")
    assert response.status_code == 400
    assert field in response.body.decode()


def test_search_is_for_admins(api):
    assert api.get("/api/jobs", as_="editor").status_code == 403
    assert api.get("/api/jobs").status_code == 401


def test_a_walk_over_the_days_is_bounded_whatever_since_asks(api, requests_made):
    enqueue("emails", "send", {})
    api.token("admin")
    requests_made.clear()
    answer = api.get("/api/jobs?since=0001-01-01T00:00:00Z", as_="admin")
    assert len(ids(answer)) == 1
    assert requests_made["Query"] <= 63  # a day each, 62 days back at most


@pytest.fixture
def requests_made(aws_mock):
    from collections import Counter

    from chalicelib import aws

    seen: Counter[str] = Counter()

    def count(model, **_):
        seen[model.name] += 1

    aws.session().events.register("before-call.dynamodb", count)
    yield seen
    aws.session().events.unregister("before-call.dynamodb", count)
