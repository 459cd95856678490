"""Reports, emails and cleanup sweeps on moto."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib import aws, events, timeutil
from chalicelib.content import reports
from chalicelib.content import settings as settings_store
from chalicelib.jobs import enqueue, service
from tests.conftest import body

DAY = "2026-11-23"  # a Monday: ISO week 2026-W48


def _events(day: str, rows: list[tuple[str, str]]) -> None:
    table = aws.table("analytics_events")
    for i, (article_id, kind) in enumerate(rows):
        table.put_item(
            Item={"day": day, "sk": f"{day}T10:00:00.000Z#{i:04d}", "article_id": article_id, "type": kind, "ttl": 1}
        )


@pytest.fixture
def ses():
    client = aws.client("ses")
    client.verify_email_identity(EmailAddress="reports@example.com")
    settings_store.settings().put("email.sender", "reports@example.com", None)
    settings_store.settings().put("email.admins", ["boss@example.com", "ops@example.com"], None)
    return client


def _sent(ses) -> int:
    return int(ses.get_send_quota()["SentLast24Hours"])


def test_the_daily_report_counts_per_article_and_in_total(api, poller, published):
    api.token("admin")
    _events(DAY, [("a", "view"), ("a", "view"), ("a", "click"), ("b", "share"), ("b", "bogus")])
    _events("2026-11-24", [("a", "view")])
    job = enqueue("analytics", "daily_report", {"date": DAY})
    poller.drain("analytics")
    assert service.get(job["id"])["state"] == "completed"
    response = api.get(f"/api/analytics/reports/daily?date={DAY}", as_="admin")
    assert response.status_code == 200
    report = body(response)
    assert report["total"] == {"view": 2, "click": 1, "share": 1, "events": 4}
    assert report["articles"]["a"] == {"view": 2, "click": 1, "share": 0, "events": 3}
    assert report["articles"]["b"]["share"] == 1
    assert report["top_articles"][0]["article_id"] == "a"
    assert [e.key for e in published if isinstance(e, events.ReportStored)] == [f"analytics.daily.{DAY}"]


def test_the_daily_report_defaults_to_yesterday(poller, clock):
    clock.t = datetime(2026, 11, 24, 2, 0, tzinfo=UTC).timestamp()
    _events(DAY, [("a", "view")])
    job = enqueue("analytics", "daily_report", {})
    poller.drain("analytics")
    assert service.get(job["id"])["result"]["key"] == f"analytics.daily.{DAY}"
    assert reports.stored(f"analytics.daily.{DAY}")["total"]["view"] == 1


def test_the_weekly_report_is_stored_and_emailed_once_to_the_admins(api, poller, ses):
    api.token("admin")
    _events(DAY, [("a", "view"), ("b", "view")])
    _events("2026-11-29", [("a", "share")])  # Sunday, same ISO week
    _events("2026-11-30", [("a", "view")])  # next week
    first = enqueue("analytics", "weekly_report", {"week": "2026-W48"})
    poller.drain("analytics")
    report = body(api.get("/api/analytics/reports/weekly?week=2026-W48", as_="admin"))
    assert (report["from"], report["to"]) == ("2026-11-23", "2026-11-29")
    assert report["total"] == {"view": 2, "click": 0, "share": 1, "events": 3}
    assert report["days"]["2026-11-29"]["share"] == 1
    # a second run of the same week (a rerun, a duplicate) recomputes but sends nothing more
    enqueue("analytics", "weekly_report", {"week": "2026-W48"})
    poller.drain("analytics")
    poller.drain("emails")
    assert _sent(ses) == 2  # one email, to two recipients
    email_job = service.get(service.get(first["id"])["result"]["email_job_id"])
    assert email_job["result"]["recipients"] == 2
    assert email_job["payload"]["data"]["week"] == "2026-W48"


@pytest.mark.parametrize(
    ("path", "status"),
    [
        ("/api/analytics/reports/daily?date=2026-11-23", 404),
        ("/api/analytics/reports/daily?date=2026-13-01", 400),
        ("/api/analytics/reports/daily?date=23-11-2026", 400),
        ("/api/analytics/reports/daily", 400),
        ("/api/analytics/reports/weekly?week=2026-W48", 404),
        ("/api/analytics/reports/weekly?week=2025-W53", 400),
        ("/api/analytics/reports/weekly?week=2026-48", 400),
        ("/api/analytics/reports/weekly?week=2026-W00", 400),
        ("/api/analytics/reports/weekly", 400),
    ],
)
def test_report_reads_answer_404_until_generated_and_400_on_bad_input(api, path, status):
    response = api.get(path, as_="admin")
    assert response.status_code == status
    if status == 400:
        assert body(response)["Errors"][0]["field"] in ("date", "week")


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_reports_are_for_admins(api, role):
    assert api.get("/api/analytics/reports/daily?date=2026-11-23", as_=role).status_code == 403
    assert api.get("/api/analytics/reports/weekly?week=2026-W48", as_=role).status_code == 403


def test_a_bad_report_payload_fails_the_job_at_once(poller, clock):
    job = enqueue("analytics", "daily_report", {"date": "yesterday"})
    poller.drain("analytics")
    assert service.get(job["id"])["error"]["kind"] == "invalid_payload"
    assert service.get(job["id"])["attempts"] == 1


def test_an_email_delivered_twice_is_sent_once(poller, ses):
    enqueue("emails", "send", {"template": "job_failed", "data": {"job_id": "j", "queue": "q"}})
    messages = poller.receive("emails")
    poller.deliver("emails", messages, delete=False)
    poller.deliver("emails", messages)
    assert _sent(ses) == 2  # two recipients, one SendEmail


def test_a_crash_after_sending_does_not_send_the_email_again(poller, ses, clock, monkeypatch):
    from chalicelib.jobs.records import JobStore

    class Crash(BaseException):  # the Lambda dies after SES accepted, before the job completed
        pass

    job = enqueue("emails", "send", {"template": "job_failed", "data": {"job_id": "j", "queue": "q"}})
    real_complete = JobStore.complete
    monkeypatch.setattr(JobStore, "complete", lambda *a, **k: (_ for _ in ()).throw(Crash()))
    with pytest.raises(Crash):
        poller.run_once("emails")
    monkeypatch.setattr(JobStore, "complete", real_complete)
    assert _sent(ses) == 2
    clock.advance(24 * 60)  # the message comes back; the lease has run out
    poller.drain("emails")
    done = service.get(job["id"])
    assert (done["state"], done["attempts"]) == ("completed", 2)
    assert _sent(ses) == 2  # two recipients, still one SendEmail
    assert done["result"]["sent"] is True and done["result"]["message_id"]


def test_an_email_without_recipients_completes_without_sending(poller, clock):
    job = enqueue("emails", "send", {"template": "weekly_report", "data": {}})
    poller.drain("emails")
    assert service.get(job["id"])["result"]["sent"] is False


def test_an_unverified_sender_fails_the_email_at_once(poller, ses):
    settings_store.settings().put("email.sender", "stranger@example.com", None)
    job = enqueue("emails", "send", {"template": "job_failed", "data": {}, "to": ["x@example.com"]})
    poller.drain("emails")
    assert service.get(job["id"])["error"]["kind"] == "email_rejected"
    assert service.get(job["id"])["attempts"] == 1


def _expired(table_name: str, key: dict, at: float) -> None:
    aws.table(table_name).put_item(Item={**key, **timeutil.ttl_fields(at)})


def test_sweeps_delete_expired_items_and_keep_live_ones(poller, clock):
    now = clock.t
    _expired("sessions", {"jti": "old"}, now - 3600)
    _expired("sessions", {"jti": "older"}, now - 5 * 86400)
    _expired("sessions", {"jti": "live"}, now + 3600)
    _expired("refresh_tokens", {"hash": "used-long-ago"}, now - 60)
    _expired("refresh_tokens", {"hash": "current"}, now + 60)
    _expired("login_attempts", {"key": "email#a", "at": "t1"}, now - 10)
    _expired("webhook_logs", {"article_id": "a", "sk": "s"}, now - 10)
    jobs = [enqueue("cleanup", kind, {}) for kind in ("sessions", "login_attempts", "webhook_logs")]
    poller.drain("cleanup")
    assert [service.get(j["id"])["result"]["deleted"] for j in jobs] == [2, 1, 1]
    assert aws.table("sessions").get_item(Key={"jti": "live"}).get("Item")
    assert not aws.table("sessions").get_item(Key={"jti": "old"}).get("Item")
    assert service.get(jobs[0]["id"])["result"]["refresh_tokens"]["deleted"] == 1
    assert aws.table("refresh_tokens").get_item(Key={"hash": "current"}).get("Item")


SWEEPS = [  # every sweep job and the table it sweeps
    ("cleanup", "sessions", "sessions"),
    ("cleanup", "login_attempts", "login_attempts"),
    ("cleanup", "webhook_logs", "webhook_logs"),
    ("cleanup", "activity_logs", "audit_events"),
    ("analytics", "cleanup_old_data", "analytics_events"),
]


def _fill(table_name: str, prefix: str, expiries: list[float]) -> list[dict]:
    """One item per expiry time in `table_name`; their keys."""
    from chalicelib import catalog

    spec = catalog.table(table_name)
    keys = [{spec.pk: f"{prefix}{i}", **({spec.sk: f"{prefix}{i}"} if spec.sk else {})} for i in range(len(expiries))]
    for key, at in zip(keys, expiries, strict=True):
        _expired(table_name, key, at)
    return keys


def _noon(clock) -> float:
    """Move the clock on to noon UTC (so that today's expiry partition holds past and future)."""
    clock.advance((43_200 - clock.t % 86_400) % 86_400)
    return clock.t


@pytest.mark.parametrize(("queue", "job_type", "table_name"), SWEEPS)
def test_a_sweep_larger_than_its_page_budget_finishes_over_follow_up_jobs(
    poller, clock, monkeypatch, queue, job_type, table_name
):
    from chalicelib.jobs import sweep as cleanup

    monkeypatch.setattr(cleanup, "PAGE_SIZE", 2)
    monkeypatch.setattr(cleanup, "MAX_PAGES", 1)
    now = _noon(clock)
    expired = _fill(table_name, "old", [now - 60, now - 120, now - 86_400, now - 3 * 86_400 - 5, now - 5 * 86_400])
    live = _fill(table_name, "live", [now + 3600, now + 2 * 86_400])  # the first one is in today's partition
    first = enqueue(queue, job_type, {})
    poller.drain(queue)
    chain, job_id = [], first["id"]
    while job_id:
        job = service.get(job_id)
        assert job["state"] == "completed"
        chain.append(job["result"])
        job_id = job["result"].get("continued_by")
    assert [r["more"] for r in chain] == [True] * (len(chain) - 1) + [False]
    assert len(chain) >= 3 and sum(r["deleted"] for r in chain) == 5  # at most 2 a job
    table = aws.table(table_name)
    assert not any(table.get_item(Key=key).get("Item") for key in expired)
    assert all(table.get_item(Key=key).get("Item") for key in live)


def test_a_sweep_stops_when_its_time_is_up_and_says_more(aws_mock, clock, monkeypatch):
    from chalicelib import catalog
    from chalicelib.jobs import sweep as cleanup

    monkeypatch.setattr(cleanup, "PAGE_SIZE", 2)
    _fill("sessions", "old", [_noon(clock) - 60] * 5)

    class Ctx:
        def __init__(self, checks: int) -> None:
            self.checks = checks

        def time_left(self) -> float:
            self.checks -= 1
            return 10.0 if self.checks >= 0 else 0.0

    # time for the Queries of the empty days before today, then for two pages of today
    result = cleanup.sweep_expired(aws.table("sessions"), catalog.table("sessions"), Ctx(cleanup.LOOKBACK_DAYS + 2))
    assert (result["deleted"], result["pages"], result["more"]) == (4, 2, True)
    rest = cleanup.sweep_expired(aws.table("sessions"), catalog.table("sessions"), Ctx(1000))
    assert (rest["deleted"], rest["more"]) == (1, False)


def test_a_redelivered_sweep_enqueues_one_follow_up(aws_mock, clock):
    from chalicelib.jobs import sweep as cleanup

    job = enqueue("cleanup", "sessions", {})
    first = cleanup.carry_on(job, {"deleted": 2, "more": True})
    again = cleanup.carry_on(job, {"deleted": 0, "more": True})
    assert first["continued_by"] == again["continued_by"] != job["id"]
    follow_up = service.get(first["continued_by"])
    assert (follow_up["type"], follow_up["payload"]) == ("sessions", {"continues": job["id"]})
    assert "continued_by" not in cleanup.carry_on(job, {"deleted": 0, "more": False})


def test_analytics_cleanup_removes_events_past_retention(poller, clock):
    _events(DAY, [("a", "view")])  # ttl 1 (long past), but indexed by expiry_day only when set
    old = {"day": "2026-08-01", "sk": "x", "article_id": "a", "type": "view"}
    _expired("analytics_events", old, clock.t - 86400)
    job = enqueue("analytics", "cleanup_old_data", {})
    poller.drain("analytics")
    assert service.get(job["id"])["result"]["deleted"] == 1


def test_orphans_removes_events_and_jobs_of_deleted_articles(api, poller, clock):
    api.token("admin")
    article = body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))
    gone = "f" * 32
    today = timeutil.day(clock.t)
    _events(today, [(article["id"], "view"), (gone, "view"), (gone, "click")])
    kept = enqueue("articles", "archive", {"article_id": article["id"]})
    orphan = enqueue("articles", "archive", {"article_id": gone})
    poller.drain("articles")
    job = enqueue("cleanup", "orphans", {"days": 2})
    poller.drain("cleanup")
    result = service.get(job["id"])["result"]
    assert result["jobs"] == 1 and result["analytics_events"] == 2
    assert service.get(kept["id"]) is not None
    assert service.get(orphan["id"]) is None


def test_the_weekly_orphans_run_reaches_back_over_the_previous_run_s_day(poller, clock):
    """Run weekly, the orphans job must see what was written on the previous run's day after that
    run: its default look-back is 8 days (today and the 7 before)."""
    gone = "e" * 32
    week_ago = timeutil.day(clock.t - 7 * 86400)
    _events(week_ago, [(gone, "view")])
    job = enqueue("cleanup", "orphans", {})
    poller.drain("cleanup")
    assert service.get(job["id"])["result"]["analytics_events"] == 1
