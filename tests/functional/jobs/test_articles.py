"""Article jobs end to end on moto: the routes, the worker, the webhook (a local HTTP server)."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest

from chalicelib import aws, events
from chalicelib.jobs import service
from tests.conftest import TEST_ENV, body


def _article(api, as_="editor", **fields):
    api.token("admin")  # log in before the test clock runs ahead (a token's iat must not be in the future)
    data = {"title": "Tides", "topic": "How tides work", "keywords": ["moon", "sea"], **fields}
    response = api.post("/api/articles", data, as_=as_)
    assert response.status_code == 201, response.body
    return body(response)


def _status(api, article_id):
    return body(api.get(f"/api/articles/{article_id}", as_="admin"))


def test_generate_goes_processing_then_published_with_the_content(api, poller, generator, job_events, published):
    article = _article(api)
    response = api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    assert response.status_code == 202
    accepted = body(response)
    assert accepted["queue"] == "articles"
    assert accepted["job_id"] == accepted["id"]
    assert accepted["payload"] == {
        "article_id": article["id"],
        "title": "Tides",
        "topic": "How tides work",
        "keywords": ["moon", "sea"],
    }
    assert _status(api, article["id"])["status"] == "PROCESSING"

    poller.drain("articles")

    done = _status(api, article["id"])
    assert (done["status"], done["content"]) == ("PUBLISHED", "Generated text #1")
    job = body(api.get(f"/api/jobs/{accepted['job_id']}", as_="editor"))
    assert (job["state"], job["progress"], job["attempts"]) == ("completed", 100, 1)
    assert job["result"]["status"] == "PUBLISHED"
    # the webhook got the contract's body, signed
    [request] = generator.requests
    assert json.loads(request["body"]) == accepted["payload"]
    expected = hmac.new(TEST_ENV["WEBHOOK_SECRET"].encode(), request["body"], hashlib.sha256).hexdigest()
    assert request["headers"]["X-Inkwell-Signature"] == f"sha256={expected}"
    # and timestamped: the local generator (what docs/api.md asks of generators) accepts it once
    from local.generator import FakeGenerator

    checker = FakeGenerator(TEST_ENV["WEBHOOK_SECRET"], delay=0.0, sleep=lambda s: None)
    sent = {k.lower(): v for k, v in request["headers"].items()}
    assert abs(int(sent["x-inkwell-timestamp"]) - time.time()) < 60
    assert checker.call(sent, request["body"])[0] == 200
    assert checker.call(sent, request["body"])[0] == 401  # replayed
    # every call is logged, with a TTL
    [log] = aws.table("webhook_logs").query(
        KeyConditionExpression="article_id = :a", ExpressionAttributeValues={":a": article["id"]}
    )["Items"]
    assert (log["outcome"], log["status_code"], log["job_id"]) == ("ok", 200, job["id"])
    assert int(log["ttl"]) > 0 and log["expiry_day"]
    # events: status changes and job lifecycle
    statuses = [e.status for e in published if isinstance(e, events.ArticleStatusChanged)]
    assert statuses == ["PROCESSING", "PUBLISHED"]
    kinds = [e.kind for e in job_events if e.job["id"] == job["id"]]
    assert kinds == ["active", "progress", "progress", "completed"]


def test_a_failing_webhook_is_tried_three_times_then_rolls_back_and_dead_letters(
    api, poller, generator, published, clock
):
    generator.answers = [(503, {"error": "busy"})]
    article = _article(api)
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]

    poller.drain("articles")

    assert len(generator.requests) == 3
    assert _status(api, article["id"])["status"] == "DRAFT"
    job = service.get(job_id)
    assert (job["state"], job["attempts"], job["error"]["kind"]) == ("failed", 3, "webhook_retriable")
    assert [b["job_id"] for b in poller.dead_letter_bodies("articles")] == [job_id]
    alerts = [e for e in published if isinstance(e, events.Alert) and e.details.get("article_id") == article["id"]]
    assert len(alerts) == 1 and alerts[0].level == "critical"
    assert alerts[0].details["rolled_back_to"] == "DRAFT"
    statuses = [e.status for e in published if isinstance(e, events.ArticleStatusChanged)]
    assert statuses == ["PROCESSING", "DRAFT"]
    # the admins are told by email (a job on the emails queue)
    [email] = service.list_page("emails", "waiting", {})["items"]
    assert email["payload"]["template"] == "job_failed"
    assert email["payload"]["data"]["job_id"] == job_id

    # WHEN the webhook recovers and an admin retries the job
    generator.answers = [(200, {"content": "At last"})]
    generator.requests.clear()
    response = api.post(f"/api/jobs/{job_id}/retry", as_="admin")
    assert response.status_code == 202
    assert _status(api, article["id"])["status"] == "PROCESSING"
    clock.advance(6)
    assert poller.visible_and_hidden("articles-dlq") == (0, 0)
    poller.drain("articles")
    # THEN the same job publishes the article
    assert _status(api, article["id"])["content"] == "At last"
    assert _status(api, article["id"])["status"] == "PUBLISHED"
    assert service.get(job_id)["state"] == "completed"


def test_a_4xx_from_the_webhook_fails_the_job_at_once(api, poller, generator):
    generator.answers = [(422, {"error": "topic refused"})]
    article = _article(api)
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    poller.drain("articles")
    assert len(generator.requests) == 1
    assert service.get(job_id)["error"]["kind"] == "webhook_rejected"
    assert _status(api, article["id"])["status"] == "DRAFT"


def test_a_429_is_retried_like_a_5xx(api, poller, generator):
    generator.answers = [(429, {}), (200, None)]
    article = _article(api)
    api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    poller.drain("articles")
    assert len(generator.requests) == 2
    assert _status(api, article["id"])["status"] == "PUBLISHED"


def test_regenerating_a_published_article_rolls_back_to_published(api, poller, generator):
    article = _article(api)
    api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    poller.drain("articles")
    generator.answers = [(500, {})]
    api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    poller.drain("articles")
    after = _status(api, article["id"])
    assert (after["status"], after["content"]) == ("PUBLISHED", "Generated text #1")


def test_a_duplicate_delivery_calls_the_webhook_once(api, poller, generator):
    article = _article(api)
    api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    messages = poller.receive("articles")
    poller.deliver("articles", messages, delete=False)
    poller.deliver("articles", messages)
    assert len(generator.requests) == 1


def test_a_crash_after_publishing_is_not_published_twice(api, poller, generator, clock, monkeypatch):
    from chalicelib.jobs.records import JobStore

    class Crash(BaseException):
        pass

    article = _article(api)
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    real_complete = JobStore.complete
    monkeypatch.setattr(JobStore, "complete", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        poller.run_once("articles")
    monkeypatch.setattr(JobStore, "complete", real_complete)
    assert _status(api, article["id"])["status"] == "PUBLISHED"
    clock.advance(24 * 60)
    poller.drain("articles")
    job = service.get(job_id)
    assert (job["state"], job["attempts"]) == ("completed", 2)
    assert _status(api, article["id"])["content"] == "Generated text #1"  # not overwritten by call #2


def test_generation_needs_the_author_or_an_admin(api):
    article = _article(api)
    assert api.post(f"/api/articles/{article['id']}/generate", as_="editor-2").status_code == 403
    assert api.post(f"/api/articles/{article['id']}/generate", as_="viewer").status_code == 403
    assert api.post(f"/api/articles/{article['id']}/generate").status_code == 401
    assert _status(api, article["id"])["status"] == "DRAFT"
    assert api.post(f"/api/articles/{article['id']}/generate", as_="admin").status_code == 202


def test_someone_elses_article_is_403_whatever_its_status(api):
    article = _article(api)
    assert api.post(f"/api/articles/{article['id']}/generate", as_="editor").status_code == 202
    response = api.post(f"/api/articles/{article['id']}/generate", as_="editor-2")
    assert response.status_code == 403 and "author" in body(response)["Message"]
    assert _status(api, article["id"])["status"] == "PROCESSING"


def test_generating_twice_is_a_conflict(api):
    article = _article(api)
    assert api.post(f"/api/articles/{article['id']}/generate", as_="editor").status_code == 202
    response = api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    assert response.status_code == 409
    assert body(response)["Code"] == "ConflictError"


@pytest.mark.parametrize("action", ["generate", "publish", "archive"])
def test_unknown_articles_are_404(api, action):
    assert api.post(f"/api/articles/{'a' * 32}/{action}", as_="admin").status_code == 404
    assert api.post(f"/api/articles/not-an-id/{action}", as_="admin").status_code == 404


def test_a_failed_enqueue_rolls_the_article_back_and_answers_503(api, monkeypatch, published):
    from chalicelib.jobs import queues

    def broken(self, *args, **kwargs):
        raise ConnectionError("SQS unreachable")

    article = _article(api)
    monkeypatch.setattr(queues.JobQueues, "send", broken)
    response = api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    assert response.status_code == 503
    assert _status(api, article["id"])["status"] == "DRAFT"
    assert [e.status for e in published if isinstance(e, events.ArticleStatusChanged)] == ["PROCESSING", "DRAFT"]
    assert service.counts("articles")["waiting"] == 0


def test_publish_and_archive_answer_202_then_change_the_status(api, poller, published):
    article = _article(api)
    # a draft has no content: it cannot be published yet
    assert api.post(f"/api/articles/{article['id']}/publish", as_="editor").status_code == 409
    response = api.post(f"/api/articles/{article['id']}/archive", as_="editor")
    assert response.status_code == 202
    assert body(response)["queue"] == "articles"
    poller.drain("articles")
    assert _status(api, article["id"])["status"] == "ARCHIVED"
    assert [e.status for e in published if isinstance(e, events.ArticleStatusChanged)] == ["ARCHIVED"]
    assert api.post(f"/api/articles/{article['id']}/archive", as_="editor").status_code == 409


def test_asking_twice_for_the_same_transition_gives_one_job(api, poller):
    article = _article(api)
    first = body(api.post(f"/api/articles/{article['id']}/archive", as_="editor"))
    second = body(api.post(f"/api/articles/{article['id']}/archive", as_="admin"))
    assert first["job_id"] == second["job_id"]
    assert len(poller.receive("articles")) == 1


def test_publish_then_archive_of_a_generated_article(api, poller, generator):
    article = _article(api)
    api.post(f"/api/articles/{article['id']}/generate", as_="editor")
    poller.drain("articles")
    api.post(f"/api/articles/{article['id']}/archive", as_="editor")
    poller.drain("articles")
    assert _status(api, article["id"])["status"] == "ARCHIVED"
    job = body(api.post(f"/api/articles/{article['id']}/publish", as_="editor"))
    poller.drain("articles")
    assert _status(api, article["id"])["status"] == "PUBLISHED"
    assert service.get(job["job_id"])["result"] == {
        "article_id": article["id"],
        "status": "PUBLISHED",
        "changed": True,
    }


def test_a_transition_overtaken_before_its_job_runs_fails_permanently(api, poller, generator):
    article = _article(api)
    job = body(api.post(f"/api/articles/{article['id']}/archive", as_="editor"))
    api.post(f"/api/articles/{article['id']}/generate", as_="editor")  # DRAFT -> PROCESSING first
    poller.drain("articles")
    assert service.get(job["job_id"])["error"]["kind"] == "invalid_transition"
    assert _status(api, article["id"])["status"] == "PUBLISHED"


# --- the order of a final failure: the article is rolled back before the job reads `failed` ------


def test_whoever_sees_the_job_failed_reads_the_article_rolled_back(api, poller, generator, monkeypatch):
    from chalicelib.content import articles as content
    from chalicelib.jobs.records import JobStore

    generator.answers = [(422, {"error": "topic refused"})]  # fails for good at once
    article = _article(api)
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    seen: dict[str, str] = {}

    def article_status() -> str:
        return content.articles().get(article["id"])["status"]

    real_fail = JobStore.fail

    def fail(self, *args, **kwargs):  # the moment the record turns `failed`
        seen["article when the record turns failed"] = article_status()
        return real_fail(self, *args, **kwargs)

    def on_job(event: events.JobEvent) -> None:
        if event.kind == "failed" and event.job["id"] == job_id:
            seen["job when job.failed is published"] = service.get(job_id)["state"]
            seen["article when job.failed is published"] = article_status()

    monkeypatch.setattr(JobStore, "fail", fail)
    monkeypatch.setitem(events._listeners, events.JobEvent, [*events._listeners[events.JobEvent], on_job])
    poller.drain("articles")

    assert seen == {
        "article when the record turns failed": "DRAFT",
        "job when job.failed is published": "failed",
        "article when job.failed is published": "DRAFT",
    }


def test_a_failing_rollback_hook_still_fails_the_job(api, poller, generator, monkeypatch):
    from chalicelib.content import articles as content

    generator.answers = [(422, {})]
    article = _article(api)
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    monkeypatch.setattr(
        content.Articles, "rollback", lambda *a, **k: (_ for _ in ()).throw(ConnectionError("DynamoDB down"))
    )
    poller.drain("articles")
    job = service.get(job_id)
    assert (job["state"], job["error"]["kind"]) == ("failed", "webhook_rejected")
    assert [b["job_id"] for b in poller.dead_letter_bodies("articles")] == [job_id]


def test_a_crash_between_the_rollback_and_the_failed_record_is_finished_by_the_redelivery(
    api, poller, generator, clock, monkeypatch, job_events
):
    from chalicelib.jobs.records import JobStore

    class Crash(BaseException):
        pass

    generator.answers = [(422, {"error": "topic refused"})]
    article = _article(api)
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    real_fail = JobStore.fail
    monkeypatch.setattr(JobStore, "fail", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):  # the Lambda dies after the rollback, before the job is recorded failed
        poller.run_once("articles")
    monkeypatch.setattr(JobStore, "fail", real_fail)
    assert _status(api, article["id"])["status"] == "DRAFT"
    assert service.get(job_id)["state"] == "active"

    clock.advance(24 * 60)  # the lease and the message's visibility run out: SQS delivers it again
    poller.drain("articles")

    job = service.get(job_id)
    # the failure is finished, not the job run again: the first error and attempt count stand
    assert (job["state"], job["attempts"], job["error"]["kind"]) == ("failed", 1, "webhook_rejected")
    assert len(generator.requests) == 1
    assert _status(api, article["id"])["status"] == "DRAFT"
    assert [b["job_id"] for b in poller.dead_letter_bodies("articles")] == [job_id]
    assert [e.kind for e in job_events if e.job["id"] == job_id] == ["active", "progress", "failed"]
