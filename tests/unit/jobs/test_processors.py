"""Each processor's logic over fakes: the webhook client, articles, emails, reports."""

from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from chalicelib import events
from chalicelib.content import actions, generation, generation_job, reports
from chalicelib.content import articles as content
from chalicelib.content import generator as webhook
from chalicelib.content import report_jobs as analytics
from chalicelib.jobs import errors
from chalicelib.jobs.processor import JobContext
from chalicelib.mail import alerts
from chalicelib.mail import jobs as emails

ARTICLE = "a" * 32


def ctx(job=None, seconds=100.0):
    progress = []
    c = JobContext(
        job=job or {"progress": 0},
        attempt=1,
        final_attempt=False,
        report_progress=progress.append,
        remaining=lambda: seconds,
    )
    c.reported = progress  # type: ignore[attr-defined]
    return c


class FakeLogs:
    def __init__(self, broken=False):
        self.entries = []
        self.broken = broken

    def record(self, article_id, entry):
        if self.broken:
            raise ConnectionError("DynamoDB down")
        self.entries.append((article_id, entry))


def post_answering(status, body=b"", exc=None):
    calls = []

    def post(url, data, headers, timeout):
        calls.append({"url": url, "body": data, "headers": headers, "timeout": timeout})
        if exc:
            raise exc
        return status, body

    post.calls = calls  # type: ignore[attr-defined]
    return post


def generator(post, logs=None, url="http://gen.example/hook?token=s3cret"):
    return webhook.ArticleGenerator(url, "k", logs or FakeLogs(), post=post, timeout=30.0)


REQUEST = {"article_id": ARTICLE, "title": "T", "topic": "t", "keywords": []}


# --- the webhook -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "body", "outcome"),
    [
        (200, b'{"content": "text"}', "ok"),
        (200, b'{"content": ""}', "invalid_response"),
        (200, b"<html>", "invalid_response"),
        (200, b"[1]", "invalid_response"),
        (429, b"", "retriable"),
        (500, b"", "retriable"),
        (503, b"", "retriable"),
        (400, b"", "rejected"),
        (401, b"", "rejected"),
        (404, b"", "rejected"),
        (302, b"", "rejected"),
        (204, b"", "rejected"),
    ],
)
def test_classify(status, body, outcome):
    assert webhook.classify(status, body).outcome == outcome


def test_the_call_is_signed_bounded_and_logged_without_secrets():
    post = post_answering(200, b'{"content": "hello"}')
    logs = FakeLogs()
    assert generator(post, logs).generate(REQUEST, job_id="j", attempt=2, time_left=12.5) == "hello"
    [call] = post.calls
    assert json.loads(call["body"]) == REQUEST
    digest = hmac.new(b"k", call["body"], hashlib.sha256).hexdigest()
    assert call["headers"]["X-Inkwell-Signature"] == f"sha256={digest}"
    assert call["timeout"] == 12.5  # never beyond the Lambda's deadline
    [(article_id, entry)] = logs.entries
    assert article_id == ARTICLE
    assert entry["url"] == "http://gen.example/hook"
    assert (entry["outcome"], entry["status_code"], entry["attempt"]) == ("ok", 200, 2)


@pytest.mark.parametrize(
    ("post", "error", "kind", "logged"),
    [
        (post_answering(0, exc=TimeoutError()), webhook.WebhookUnavailable, "webhook_timeout", "timeout"),
        (
            post_answering(0, exc=ConnectionRefusedError()),
            webhook.WebhookUnavailable,
            "webhook_unavailable",
            "connection_error",
        ),
        (post_answering(502, b"bad gateway"), webhook.WebhookUnavailable, "webhook_retriable", "retriable"),
        (post_answering(403, b"no"), errors.PermanentError, "webhook_rejected", "rejected"),
    ],
)
def test_failures_are_classified_and_logged(post, error, kind, logged):
    logs = FakeLogs()
    with pytest.raises(error) as caught:
        generator(post, logs).generate(REQUEST, job_id="j", attempt=1, time_left=60)
    assert caught.value.kind == kind
    assert logs.entries[0][1]["outcome"] == logged


def test_a_lost_log_line_does_not_fail_a_good_call():
    post = post_answering(200, b'{"content": "ok"}')
    assert generator(post, FakeLogs(broken=True)).generate(REQUEST, job_id="j", attempt=1, time_left=60) == "ok"


def test_no_call_without_a_url_or_without_time():
    post = post_answering(200, b'{"content": "ok"}')
    with pytest.raises(errors.PermanentError):
        generator(post, url="").generate(REQUEST, job_id="j", attempt=1, time_left=60)
    with pytest.raises(errors.DeadlineExceeded):
        generator(post).generate(REQUEST, job_id="j", attempt=1, time_left=0.5)
    assert post.calls == []


# --- articles --------------------------------------------------------------------------------------


class FakeArticles:
    def __init__(self, status="PROCESSING", job_id="j1", previous="DRAFT"):
        self.item = {"id": ARTICLE, "status": status, "job_id": job_id, "author_id": "u", "previous_status": previous}

    def get(self, article_id):
        if article_id != ARTICLE:
            raise content.ArticleNotFound(article_id)
        return dict(self.item)

    def complete_generation(self, article_id, job_id, text):
        if self.item["status"] != "PROCESSING" or self.item["job_id"] != job_id:
            raise content.InvalidTransition(article_id, "complete", self.item["status"])
        self.item.update(status="PUBLISHED", content=text)
        return dict(self.item)

    def rollback(self, article_id, job_id):
        if self.item["status"] != "PROCESSING" or self.item["job_id"] != job_id:
            raise content.InvalidTransition(article_id, "roll back", self.item["status"])
        self.item["status"] = self.item.pop("previous_status")
        return dict(self.item)

    def transition(self, article_id, action, extra=None):
        self.get(article_id)
        sources, target = content.TRANSITIONS[action]
        if self.item["status"] not in sources:
            raise content.InvalidTransition(article_id, action, self.item["status"])
        self.item.update(status=target, **(extra or {}))
        return dict(self.item)


class FakeGenerator:
    def __init__(self, text="content", exc=None):
        self.text, self.exc, self.calls = text, exc, []

    def generate(self, request, **kw):
        self.calls.append((request, kw))
        if self.exc:
            raise self.exc
        return self.text


@pytest.fixture
def published(monkeypatch):
    seen = []
    monkeypatch.setattr(events, "publish", seen.append)
    return seen


def gen_job(**payload):
    return {"id": "j1", "attempts": 1, "payload": {**REQUEST, **payload}, "progress": 0}


def test_generate_publishes_the_content_with_progress(published):
    store, hook, c = FakeArticles(), FakeGenerator("words"), ctx()
    result = generation_job.run_generate(gen_job(), c, store, hook)
    assert result == {"article_id": ARTICLE, "status": "PUBLISHED", "content_length": 5}
    assert store.item["content"] == "words"
    assert c.reported == [10, 90]
    assert hook.calls[0][0] == REQUEST
    assert published == [events.ArticleStatusChanged(ARTICLE, "PUBLISHED", "u", "j1")]


def test_generate_after_a_crash_that_published_finishes_without_generating_again(published):
    store, hook = FakeArticles(status="PUBLISHED"), FakeGenerator()
    assert generation_job.run_generate(gen_job(), ctx(), store, hook)["status"] == "PUBLISHED"
    assert hook.calls == []
    assert published == [events.ArticleStatusChanged(ARTICLE, "PUBLISHED", "u", "j1", again=True)]


def test_generate_for_an_article_taken_over_by_another_job_fails_permanently(published):
    with pytest.raises(errors.PermanentError) as caught:
        generation_job.run_generate(gen_job(), ctx(), FakeArticles(job_id="other"), FakeGenerator())
    assert caught.value.kind == "invalid_transition"


def test_generate_refuses_a_bad_payload_before_calling_anyone():
    hook = FakeGenerator()
    with pytest.raises(errors.PermanentError) as caught:
        generation_job.run_generate(
            {"id": "j1", "payload": {"article_id": "x"}, "progress": 0}, ctx(), FakeArticles(), hook
        )
    assert caught.value.kind == "invalid_payload"
    assert hook.calls == []


def test_the_final_failure_rolls_back_and_alerts(published):
    store = FakeArticles(previous="PUBLISHED")
    generation.generation_failed(gen_job(), {"message": "boom", "kind": "error"}, store)
    assert store.item["status"] == "PUBLISHED"
    status, alert = published
    assert status == events.ArticleStatusChanged(ARTICLE, "PUBLISHED", "u", "j1")
    assert alert.level == "critical" and "boom" in alert.message


def test_the_final_failure_of_an_article_that_moved_on_still_alerts(published):
    generation.generation_failed(gen_job(), {"message": "boom", "kind": "error"}, FakeArticles(status="ARCHIVED"))
    assert [type(e) for e in published] == [events.Alert]


def test_a_retry_puts_the_article_back_into_processing_or_is_refused(published):
    store = FakeArticles(status="DRAFT", job_id=None)
    generation.generation_retried(gen_job(), store)
    assert (store.item["status"], store.item["job_id"]) == ("PROCESSING", "j1")
    with pytest.raises(errors.RetryRefused):
        generation.generation_retried(gen_job(), store)


@pytest.mark.parametrize(
    ("action", "status", "result"),
    [
        ("publish", "ARCHIVED", {"status": "PUBLISHED", "changed": True}),
        ("archive", "PUBLISHED", {"status": "ARCHIVED", "changed": True}),
        ("archive", "ARCHIVED", {"status": "ARCHIVED", "changed": False}),
    ],
)
def test_transitions(published, action, status, result):
    out = actions.run_transition({"id": "j2", "payload": {"article_id": ARTICLE}}, action, FakeArticles(status=status))
    assert out == {"article_id": ARTICLE, **result}
    assert len(published) == int(result["changed"])


def test_an_impossible_transition_fails_permanently():
    with pytest.raises(errors.PermanentError):
        actions.run_transition({"id": "j", "payload": {"article_id": ARTICLE}}, "archive", FakeArticles("PROCESSING"))
    with pytest.raises(errors.PermanentError):
        actions.run_transition({"id": "j", "payload": {"article_id": "b" * 32}}, "archive", FakeArticles())


# --- emails ----------------------------------------------------------------------------------------


class FakeSettings:
    def __init__(self, **values):
        self.values = values

    def value(self, key, default=None, scope="config"):
        return self.values.get(key, default)


class FakeSes:
    def __init__(self, error_code=None):
        self.sent, self.error_code = [], error_code

    def send_email(self, **kwargs):
        if self.error_code:
            exc = RuntimeError(self.error_code)
            exc.response = {"Error": {"Code": self.error_code}}  # type: ignore[attr-defined]
            raise exc
        self.sent.append(kwargs)
        return {"MessageId": "m1"}


def email_job(**payload):
    return {"id": "e", "payload": {"template": "job_failed", "data": {"job_id": "j9", "queue": "articles"}, **payload}}


def test_an_email_goes_to_the_admins_from_the_configured_sender():
    ses = FakeSes()
    settings = FakeSettings(**{"email.admins": ["a@x.io", "not-an-address", "b@x.io"], "email.sender": "s@x.io"})
    result = emails.run_send(email_job(), ctx(), ses, settings)
    assert result == {"sent": True, "template": "job_failed", "recipients": 2, "message_id": "m1"}
    [sent] = ses.sent
    assert sent["Source"] == "s@x.io"
    assert sent["Destination"] == {"ToAddresses": ["a@x.io", "b@x.io"]}
    assert "articles" in sent["Message"]["Subject"]["Data"]
    assert "j9" in sent["Message"]["Body"]["Text"]["Data"]


def test_payload_recipients_win_and_none_means_not_sent():
    ses = FakeSes()
    emails.run_send(email_job(to=["c@x.io"]), ctx(), ses, FakeSettings(**{"email.admins": ["a@x.io"]}))
    assert ses.sent[0]["Destination"]["ToAddresses"] == ["c@x.io"]
    assert ses.sent[0]["Source"] == emails.DEFAULT_SENDER
    assert emails.run_send(email_job(), ctx(), FakeSes(), FakeSettings())["sent"] is False


@pytest.mark.parametrize(
    ("payload", "ses", "kind"),
    [
        ({"template": "nope"}, FakeSes(), "invalid_payload"),
        ({"to": "not a list"}, FakeSes(), "invalid_payload"),
        ({"to": ["a@x.io"]}, FakeSes("MessageRejected"), "email_rejected"),
    ],
)
def test_emails_that_cannot_succeed_fail_permanently(payload, ses, kind):
    with pytest.raises(errors.PermanentError) as caught:
        emails.run_send(email_job(**payload), ctx(), ses, FakeSettings())
    assert caught.value.kind == kind


def test_a_throttled_send_is_retried():
    with pytest.raises(RuntimeError):
        emails.run_send(email_job(to=["a@x.io"]), ctx(), FakeSes("Throttling"), FakeSettings())


def test_templates_render_missing_values_empty():
    subject, text = emails.TEMPLATES["weekly_report"].render({"week": "2026-W48", "top": ["  1. a", "  2. b"]})
    assert subject == "[Inkwell] Weekly report 2026-W48"
    assert "  1. a\n  2. b" in text
    assert "$" not in subject


def test_a_failed_job_queues_one_alert_email(monkeypatch):
    from chalicelib import jobs

    queued = []
    monkeypatch.setattr(jobs, "enqueue", lambda *a, **k: queued.append((a, k)))
    job = {"id": "j", "queue": "articles", "type": "generate", "attempts": 3, "finished_at": "t", "updated_at": "t"}
    alerts.alert_on_failure(events.JobEvent("failed", job, {"message": "m", "kind": "k"}))
    alerts.alert_on_failure(events.JobEvent("completed", job))
    alerts.alert_on_failure(events.JobEvent("failed", dict(job, queue="emails")))
    [(args, kwargs)] = queued
    assert args[:2] == ("emails", "send")
    assert args[2]["data"]["error"] == "m"
    assert kwargs["idempotency_key"] == "job-failed:j:t"


# --- reports ---------------------------------------------------------------------------------------


def test_aggregate_and_merge():
    day1 = reports.aggregate([{"article_id": "a", "type": "view"}, {"article_id": "b", "type": "click"}])
    day2 = reports.aggregate([{"article_id": "a", "type": "share"}, {"article_id": "a", "type": "nope"}])
    assert day1["total"] == {"view": 1, "click": 1, "share": 0, "events": 2}
    merged = reports.merge([day1, day2])
    assert merged["articles"]["a"] == {"view": 1, "click": 0, "share": 1, "events": 2}
    assert merged["total"]["events"] == 3


def test_a_report_keeps_the_busiest_articles(monkeypatch):
    monkeypatch.setattr(reports, "MAX_ARTICLES", 2)
    agg = reports.aggregate([{"article_id": k, "type": "view"} for k in "abbccc"])
    report = reports.daily_report("2026-11-23", agg, "now")
    assert list(report["articles"]) == ["c", "b"]
    assert (report["article_count"], report["articles_truncated"]) == (3, True)
    assert [a["article_id"] for a in report["top_articles"]] == ["c", "b", "a"]


@pytest.mark.parametrize("value", ["2026-11-23", "2024-02-29"])
def test_parse_day_accepts(value):
    assert reports.parse_day(value).isoformat() == value


@pytest.mark.parametrize("value", ["2026-02-30", "2026-1-1", "20261123", "", "2026-11-23T00:00:00"])
def test_parse_day_refuses(value):
    with pytest.raises(ValueError):
        reports.parse_day(value)


@pytest.mark.parametrize(
    ("value", "monday"), [("2026-W48", "2026-11-23"), ("2026-W53", "2026-12-28"), ("2025-W01", "2024-12-30")]
)
def test_parse_week_accepts(value, monday):
    assert reports.parse_week(value).isoformat() == monday


@pytest.mark.parametrize("value", ["2025-W53", "2026-W00", "2026-W54", "2026W48", "2026-w48", ""])
def test_parse_week_refuses(value):
    with pytest.raises(ValueError):
        reports.parse_week(value)


def test_the_weekly_email_lists_the_busiest_articles():
    days = {
        d: reports.aggregate([{"article_id": "a", "type": "view"}])
        for d in reports.week_days(reports.parse_week("2026-W48"))
    }
    payload = analytics.weekly_email(reports.weekly_report("2026-W48", days, "now"))
    assert payload["template"] == "weekly_report"
    assert payload["data"]["views"] == 7
    assert payload["data"]["top"] == ["  1. a: 7 events (7 views, 0 clicks, 0 shares)"]


def test_once_runs_a_side_effect_once_and_stores_it_before_answering():
    stored, calls = [], []
    c = ctx()
    c.record_effects = stored.append
    action = lambda: calls.append(1) or {"id": len(calls)}  # noqa: E731
    assert c.once("mail", action) == {"id": 1}
    assert c.once("mail", action) == {"id": 1}
    assert calls == [1] and stored == [{"mail": {"id": 1}}]
    # a redelivery starts from what the record holds
    again = ctx()
    again.effects = {"mail": {"id": 1}}
    assert again.once("mail", action) == {"id": 1} and calls == [1]


def test_once_whose_result_cannot_be_stored_raises_and_keeps_nothing():
    c = ctx()

    def refuse(effects):
        raise errors.LeaseLost("gone")

    c.record_effects = refuse
    with pytest.raises(errors.LeaseLost):
        c.once("mail", lambda: {"id": 1})
    assert c.effects == {}
