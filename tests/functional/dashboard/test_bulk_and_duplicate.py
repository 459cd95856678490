"""POST /api/queues/{queue}/bulk (bounded, continued, audited, admins only) and
POST /api/jobs/{id}/duplicate."""

from __future__ import annotations

from chalicelib.jobs import PermanentError, enqueue, service
from tests.conftest import body
from tests.functional.audit_helpers import all_events


def fail_all(job, ctx):
    raise PermanentError("upstream refused")


def states(ids):
    return [service.get(job_id)["state"] for job_id in ids]


def test_bulk_retry_is_bounded_and_continued_with_the_cursor(api, poller, register):
    register("emails", "send", fail_all)
    failed = [enqueue("emails", "send", {"n": i})["id"] for i in range(5)]
    poller.drain("emails")
    assert states(failed) == ["failed"] * 5
    first = api.post("/api/queues/emails/bulk", {"action": "retry", "limit": 2}, as_="admin")
    assert first.status_code == 200, first.body
    answer = body(first)
    assert (answer["action"], answer["matched"], answer["done"]) == ("retry", 2, 2)
    assert states(failed).count("waiting") == 2
    done = 2
    cursor = answer["next_cursor"]
    for _ in range(5):
        if not cursor:
            break
        page = body(api.post("/api/queues/emails/bulk", {"action": "retry", "limit": 2, "cursor": cursor}, as_="admin"))
        assert page["matched"] <= 2
        done += page["done"]
        cursor = page.get("next_cursor")
    assert done == 5 and states(failed) == ["waiting"] * 5
    events = all_events(api, action="queue.bulk")
    assert {(e["details"]["matched"], e["details"]["done"]) for e in events} >= {(2, 2)}
    assert all(e["details"]["action"] == "retry" and e["resource"] == {"type": "queue", "id": "emails"} for e in events)


def test_bulk_by_user_and_the_other_actions(api, poller, register):
    editor = api.user("editor")
    mine = [enqueue("emails", "send", {}, user_id=editor["id"], delay_seconds=600)["id"] for _ in range(2)]
    other = enqueue("emails", "send", {}, delay_seconds=600)["id"]
    answer = body(api.post("/api/queues/emails/bulk", {"action": "promote", "user_id": editor["id"]}, as_="admin"))
    assert (answer["matched"], answer["done"], answer.get("next_cursor")) == (2, 2, None)
    assert states(mine) == ["waiting", "waiting"] and states([other]) == ["delayed"]
    answer = body(api.post("/api/queues/emails/bulk", {"action": "cancel", "state": "delayed"}, as_="admin"))
    assert (answer["matched"], answer["done"]) == (1, 1) and states([other]) == ["cancelled"]
    answer = body(api.post("/api/queues/emails/bulk", {"action": "remove", "state": "cancelled"}, as_="admin"))
    assert (answer["matched"], answer["done"]) == (1, 1) and service.get(other) is None


def test_bulk_is_for_admins_and_names_what_is_wrong(api):
    assert api.post("/api/queues/emails/bulk", {"action": "retry"}, as_="editor").status_code == 403
    assert api.post("/api/queues/emails/bulk", {"action": "retry"}).status_code == 401
    assert api.post("/api/queues/nope/bulk", {"action": "retry"}, as_="admin").status_code == 404
    wrong = api.post("/api/queues/emails/bulk", {"action": "promote", "state": "failed"}, as_="admin")
    assert wrong.status_code == 400 and "state" in wrong.body.decode()


def test_duplicate_queues_a_new_job_with_the_same_data(api, poller, register):
    runs = []
    register("emails", "send", lambda job, ctx: runs.append(job["payload"]) or {})
    editor = api.user("editor")
    original = enqueue("emails", "send", {"to": "a@example.com"}, user_id=editor["id"], priority="high")
    poller.drain("emails-high")
    response = api.post(f"/api/jobs/{original['id']}/duplicate", as_="admin")
    assert response.status_code == 202
    copy = body(response)
    assert copy["job_id"] == copy["id"] != original["id"]
    assert (copy["queue"], copy["type"], copy["payload"], copy["priority"]) == (
        "emails",
        "send",
        original["payload"],
        "high",
    )
    assert copy["state"] == "waiting" and copy["user_id"] == editor["id"]
    poller.drain("emails-high")
    assert runs == [original["payload"], original["payload"]]
    assert service.get(original["id"])["state"] == "completed"
    assert [e["details"]["of"] for e in all_events(api, action="job.duplicate")] == [original["id"]]
    assert api.post(f"/api/jobs/{original['id']}/duplicate", as_="editor").status_code == 403
    assert api.post(f"/api/jobs/{'0' * 32}/duplicate", as_="admin").status_code == 404


def test_a_duplicate_generation_takes_its_article_back_into_processing(api, poller, generator):
    api.token("admin")
    generator.answers = [(400, {})]
    article = body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    poller.drain("articles")
    copy = body(api.post(f"/api/jobs/{job_id}/duplicate", as_="admin"))
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "PROCESSING"
    # while that one runs, a second duplicate is refused by the article (409), and nothing is queued
    assert api.post(f"/api/jobs/{job_id}/duplicate", as_="admin").status_code == 409
    generator.answers = [(200, {"content": "text"})]
    poller.drain("articles")
    assert service.get(copy["id"])["state"] == "completed"
    assert body(api.get(f"/api/articles/{article['id']}", as_="editor"))["status"] == "PUBLISHED"
