"""Counters kept as events are written answer the aggregates exactly as the raw events would
(issue 18): the analytics reports from per-day counts, on the same data, across day boundaries."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from chalicelib import aws, timeutil
from chalicelib.content import analytics, reports
from tests.functional.audit_helpers import with_clock

MIDNIGHT = datetime(2026, 11, 24, tzinfo=UTC).timestamp()  # Tuesday of ISO week 2026-W48


def _record(at: float, article_id: str, kind: str) -> None:
    with_clock(at, lambda: analytics.events().record(analytics.NewEvent(article_id=article_id, type=kind), "u-1"))


@pytest.fixture
def table(aws_mock):
    return aws.table("analytics_events")


def _raw(table, day):
    return reports.aggregate(reports.read_day(table, day))


def test_day_counts_equal_the_raw_events_across_a_day_boundary(table):
    rows = [
        (MIDNIGHT - 0.001, "a", "view"),  # the last millisecond of Monday
        (MIDNIGHT - 3600, "a", "click"),
        (MIDNIGHT - 5, "b", "share"),
        (MIDNIGHT, "a", "view"),  # the first of Tuesday
        (MIDNIGHT + 1, "b", "view"),
        (MIDNIGHT + 86399.999, "c", "click"),  # the last of Tuesday
        (MIDNIGHT + 86400, "c", "view"),  # Wednesday
    ]
    for at, article_id, kind in rows:
        _record(at, article_id, kind)
    for day in ("2026-11-23", "2026-11-24", "2026-11-25"):
        assert reports.day_aggregate(table, day) == _raw(table, day), day
    assert reports.day_aggregate(table, "2026-11-24")["total"] == {"view": 2, "click": 1, "share": 0, "events": 3}
    assert reports.day_aggregate(table, "2026-11-26")["total"]["events"] == 0


def test_the_daily_report_reads_one_count_per_article_not_every_event(table):
    for i in range(30):
        _record(MIDNIGHT + i, "a" if i % 3 else "b", ("view", "click", "share")[i % 3])
    read = []
    real_query = table.query

    def query(**kwargs):
        result = real_query(**kwargs)
        read.append(result["ScannedCount"])
        return result

    table.query = query
    aggregated = reports.day_aggregate(table, "2026-11-24")
    assert sum(read) == 2  # the counts of a and b
    table.query = real_query
    assert aggregated == _raw(table, "2026-11-24")


def test_the_weekly_report_from_counts_equals_the_one_from_events(table):
    for i, day_start in enumerate((MIDNIGHT - 86400, MIDNIGHT, MIDNIGHT + 5 * 86400, MIDNIGHT + 6 * 86400)):
        for j in range(i + 2):
            _record(day_start + j * 7000, f"a{j % 3}", ("view", "click", "share")[(i + j) % 3])
    days = reports.week_days(reports.parse_week("2026-W48"))
    from_counts = reports.weekly_report("2026-W48", {d: reports.day_aggregate(table, d) for d in days}, "t")
    from_events = reports.weekly_report("2026-W48", {d: _raw(table, d) for d in days}, "t")
    assert from_counts == from_events
    assert from_counts["total"]["events"] == 2 + 3 + 4  # Monday 30 Nov is the next week


def test_an_event_whose_write_fails_is_neither_stored_nor_counted(table, monkeypatch):
    from botocore.exceptions import ClientError

    client = table.meta.client
    real = client.transact_write_items
    calls = []

    def refuse(**kwargs):
        calls.append(kwargs)
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException"}}, "TransactWriteItems")

    monkeypatch.setattr(client, "transact_write_items", refuse)
    with pytest.raises(ClientError):
        _record(MIDNIGHT, "a", "view")
    monkeypatch.setattr(client, "transact_write_items", real)
    assert len(calls) == 1
    assert reports.day_aggregate(table, "2026-11-24") == _raw(table, "2026-11-24")
    assert reports.day_aggregate(table, "2026-11-24")["total"]["events"] == 0


def test_orphan_cleanup_removes_the_counts_with_the_events(table, monkeypatch):
    from chalicelib.content import articles as content
    from chalicelib.content import cleanup

    monkeypatch.setattr(timeutil, "now", lambda: MIDNIGHT + 3600)
    _record(MIDNIGHT + 10, "gone", "view")
    _record(MIDNIGHT + 20, "gone", "click")
    _record(MIDNIGHT + 30, "kept", "view")
    monkeypatch.setattr(cleanup, "missing_articles", lambda store, ids: {"gone"} & ids)

    assert cleanup.orphan_events(table, content.articles(), _Ctx(), days=1) == (2, False)
    assert reports.day_aggregate(table, "2026-11-24") == _raw(table, "2026-11-24")
    assert set(reports.day_aggregate(table, "2026-11-24")["articles"]) == {"kept"}


class _Ctx:
    """A job context with `seconds` of time left for each of its first `calls` checks, none after."""

    def __init__(self, calls: int = 10**9, seconds: float = 60.0) -> None:
        self.calls, self.seconds = calls, seconds

    def time_left(self) -> float:
        self.calls -= 1
        return self.seconds if self.calls >= 0 else 0.0

    def check_deadline(self, needed=0.0):
        pass


def _small_pages(table, monkeypatch, size):
    """Query answers at most `size` items a page, as DynamoDB does past 1 MB (moto never pages)."""
    real = table.query

    def paged(**kwargs):
        kwargs["Limit"] = min(size, kwargs.get("Limit", size))
        return real(**kwargs)

    monkeypatch.setattr(table, "query", paged)


def test_orphan_cleanup_deletes_every_page_of_a_deleted_articles_events(table, monkeypatch):
    from chalicelib.content import articles as content
    from chalicelib.content import cleanup

    monkeypatch.setattr(timeutil, "now", lambda: MIDNIGHT + 3600)
    for n in range(7):
        _record(MIDNIGHT + n, "gone", "view")
    _record(MIDNIGHT + 30, "kept", "view")
    monkeypatch.setattr(cleanup, "missing_articles", lambda store, ids: {"gone"} & ids)
    _small_pages(table, monkeypatch, 2)

    assert cleanup.orphan_events(table, content.articles(), _Ctx(), days=1) == (7, False)
    assert reports.day_aggregate(table, "2026-11-24") == _raw(table, "2026-11-24")
    assert set(reports.day_aggregate(table, "2026-11-24")["articles"]) == {"kept"}


def test_orphan_cleanup_out_of_time_keeps_the_counts_so_the_follow_up_finds_the_article(table, monkeypatch):
    from chalicelib.content import articles as content
    from chalicelib.content import cleanup

    monkeypatch.setattr(timeutil, "now", lambda: MIDNIGHT + 3600)
    for n in range(5):
        _record(MIDNIGHT + n, "gone", "click")
    monkeypatch.setattr(cleanup, "missing_articles", lambda store, ids: {"gone"} & ids)
    _small_pages(table, monkeypatch, 2)

    assert cleanup.orphan_events(table, content.articles(), _Ctx(calls=0), days=1) == (2, True)
    assert reports.day_articles(table, "2026-11-24") == {"gone"}  # still found by its counts
    assert cleanup.orphan_events(table, content.articles(), _Ctx(), days=1) == (3, False)
    assert reports.day_articles(table, "2026-11-24") == set()
    assert reports.day_aggregate(table, "2026-11-24") == _raw(table, "2026-11-24")


# --- the audit report from the counts (chalicelib.audit.counts) -------------------------------------

DAY_START = datetime(2026, 11, 24, tzinfo=UTC).timestamp()
GENESIS = 4  # hours the chain's first seal reaches back here (48 in the product)


@pytest.fixture(autouse=True)
def _short_genesis(monkeypatch):
    """The same seal and counts over 4 hours before the first seal instead of 48: every seal and
    count of this module walked 48 hours of empty minutes, a twelfth of which shows the same."""
    from chalicelib.audit import chain

    monkeypatch.setattr(chain, "GENESIS_HOURS", GENESIS)


def _full_genesis(monkeypatch):
    from chalicelib.audit import chain

    monkeypatch.setattr(chain, "GENESIS_HOURS", 48)


ACTIONS = ("article.status_changed", "auth.login_failed", "article.generation_failed", "auth.lockout", "job.completed")


def _invoke(fn, ip=None):
    """fn inside an invocation of its own, whose end flushes the audit buffer (as app.py's)."""
    from chalicelib import audit, runtime

    inv = runtime.Invocation(kind="sqs", request_id="test", ip=ip)
    return runtime.Middleware(buffers=[audit.logger.BUFFER]).run(inv, fn)


def _audit_events(times):
    """One event at each time (an invocation each), a mix of actions, users, emails and IPs."""
    from chalicelib import audit

    for n, at in enumerate(times):
        action = ACTIONS[n % len(ACTIONS)]
        details = {"email": f"user{n % 4}@example.com"} if action == "auth.login_failed" else {"n": n}
        record = lambda a=action, d=details, n=n: audit.record(a, details=d, user_id=f"u-{n % 3}")  # noqa: E731
        with_clock(at, lambda r=record, n=n: _invoke(r, ip=f"10.0.0.{n % 3}"))


def _raw_report(since, until):
    from chalicelib.audit import api as audit_api
    from chalicelib.audit import store

    source, _ = store.source_for({}, since, until)
    items, cut = audit_api.events_store().all_of(source, store.sort_key_bounds(since, until), store.MAX_REPORT_EVENTS)
    return store.build_report(items, timeutil.iso(since), timeutil.iso(until), cut)


def _report(since, until, now):
    from chalicelib.audit import api as audit_api

    params = {"since": timeutil.iso(since), "until": timeutil.iso(until)}
    return with_clock(now, lambda: audit_api.report(params))


def _seal(now):
    from chalicelib.audit import sealer

    return with_clock(now, lambda: sealer.seal(now))


def _seal_and_count(now):
    """The hourly seal, then the 5-minute count, both at `now`."""
    sealed = _seal(now)
    _tally(now)
    return sealed


@pytest.fixture
def audit_reads(aws_mock, monkeypatch):
    """Items read from audit_events by Queries (their ScannedCount)."""
    read = []
    table = aws.table("audit_events")  # one Table object per thread and table: the app's too
    real_query = table.query

    def query(**kwargs):
        result = real_query(**kwargs)
        read.append(result["ScannedCount"])
        return result

    monkeypatch.setattr(table, "query", query)
    return read


def test_the_report_from_sealed_counts_equals_the_one_from_events_across_hours_and_days(audit_reads, monkeypatch):
    _full_genesis(monkeypatch)  # events two days back: the product's 48 hours
    # around midnight and the next hour boundaries, to the millisecond
    times = [DAY_START - 7200 + 37 * i for i in range(40)] + [DAY_START - 0.001, DAY_START, DAY_START + 3599.999]
    times += [DAY_START + 3600, DAY_START + 3600.001] + [DAY_START + 3600 + 61 * i for i in range(30)]
    _audit_events(sorted(times))
    now = DAY_START + 4 * 3600
    assert _seal_and_count(now)["sealed"] > 0
    _audit_events([now - 30, now - 20])  # after the last count: read as events
    for since, until in [
        (DAY_START - 2 * 3600, DAY_START + 2 * 3600),  # whole hours: counts only
        (DAY_START - 5000.5, DAY_START + 3600.0005),  # partial hours at both ends
        (DAY_START - 0.001, DAY_START),  # two milliseconds across midnight
        (DAY_START + 1800, now),  # into the unsealed tail
        (DAY_START - 86400, now),
    ]:
        expected = _raw_report(since, until)
        assert expected["total"] > 0
        assert _report(since, until, now + 1) == expected, (since, until)
    audit_reads.clear()
    report = _report(DAY_START - 2 * 3600, DAY_START + 2 * 3600, now + 1)
    assert report["total"] == len(times)
    assert sum(audit_reads) == 0  # no event read: every hour came from its counts
    assert report["failed_logins"]["total"] > 0 and report["errors"]["total"] > 0


def test_a_flush_retried_or_redelivered_is_counted_once(aws_mock, monkeypatch):
    from chalicelib.audit import logger

    client = aws.table("audit_events").meta.client
    real_write = client.transact_write_items

    def applied_twice(**kwargs):  # botocore retrying a write DynamoDB had applied (a timeout)
        real_write(**kwargs)
        return real_write(**kwargs)

    def refused(**kwargs):
        raise client.exceptions.TransactionCanceledException(
            {"Error": {"Code": "TransactionCanceledException", "Message": "throttled"}}, "TransactWriteItems"
        )

    monkeypatch.setattr(client, "transact_write_items", applied_twice)
    _audit_events([DAY_START + 10 * i for i in range(10)])
    # then DynamoDB refuses everything: the events go to the audit queue, delivered twice
    monkeypatch.setattr(client, "transact_write_items", refused)
    monkeypatch.setattr(logger, "sleep", lambda seconds: None)
    _audit_events([DAY_START + 200 + i for i in range(5)])
    monkeypatch.setattr(client, "transact_write_items", real_write)
    sqs = aws.client("sqs")
    messages = sqs.receive_message(QueueUrl=aws.queue_url("audit"), MaxNumberOfMessages=10)["Messages"]
    assert messages
    for message in messages + messages:
        with_clock(DAY_START + 300, lambda m=message: logger.process_fallback_message(m["Body"]))
    now = DAY_START + 3 * 3600
    _seal_and_count(now)
    report = _report(DAY_START, now - 3600, now)
    assert report == _raw_report(DAY_START, now - 3600)
    assert report["total"] == 15


def test_a_category_past_its_retention_leaves_the_report_as_its_events_do(aws_mock):
    _audit_events([DAY_START + i for i in range(10)])
    now = DAY_START + 2 * 3600
    _seal_and_count(now)
    later = DAY_START + 91 * 86400  # article events (90 days) are gone; system (180) and auth (365) kept
    report = _report(DAY_START, DAY_START + 3600, later)
    assert set(report["by_category"]) == {"auth", "system"}
    assert report["total"] == sum(1 for n in range(10) if not ACTIONS[n % len(ACTIONS)].startswith("article."))
    assert report["errors"]["total"] == 2  # the two auth.lockout (error); article.generation_failed is gone


def test_a_seal_out_of_time_says_more_and_continues_in_a_follow_up_job(aws_mock):
    from chalicelib.audit import seal_jobs as audit_jobs
    from chalicelib.audit import sealer
    from chalicelib.jobs import service
    from chalicelib.jobs.processor import JobContext

    _audit_events([DAY_START + 1800 * i for i in range(6)])
    now = DAY_START + 4 * 3600
    calls = iter([10.0, 0.0])
    first = with_clock(now, lambda: sealer.seal(now, lambda: next(calls)))
    assert (first["sealed"], first["more"]) == (1, True)
    job = {"id": "seal-1", "queue": "cleanup", "type": "audit_digest", "payload": {}}
    ctx = JobContext(job, 1, False, lambda percent: None, remaining=lambda: 0.0)
    result = with_clock(now, lambda: _invoke(lambda: audit_jobs.audit_digest(job, ctx)))
    assert result["sealed"] == 0 and result["more"] is True
    follow_up = service.get(result["continued_by"])
    assert (follow_up["type"], follow_up["payload"]["continues"]) == ("audit_digest", "seal-1")
    rest = with_clock(now, lambda: sealer.seal(now))
    assert rest["more"] is False and rest["sealed"] > 0
    assert _report(DAY_START, now - 3600, now) == _raw_report(DAY_START, now - 3600)


# --- a user's summary from the digests' per-user counts --------------------------------------------

ADMIN = {"role": "admin", "id": "admin-1"}


def _raw_summary(user_id, days, now):
    from chalicelib.audit import api as audit_api
    from chalicelib.audit import store

    source = store.Source("by_user", "user_id", [(user_id, [user_id])])
    bounds = store.sort_key_bounds(now - days * 86400, now)
    items, cut = audit_api.events_store().all_of(source, bounds, store.MAX_SUMMARY_EVENTS)
    return store.summarize_user(user_id, items, days, cut)


def _summary(user_id, days, now):
    from chalicelib.audit import api as audit_api

    return with_clock(now, lambda: _invoke(lambda: audit_api.user_summary(ADMIN, user_id, {"days": str(days)})))


def test_the_user_summary_from_sealed_counts_equals_the_one_from_events_across_hours_and_days(audit_reads, monkeypatch):
    _full_genesis(monkeypatch)  # events two days back: the product's 48 hours
    times = [DAY_START - 7200 + 37 * i for i in range(40)] + [DAY_START - 0.001, DAY_START, DAY_START + 3599.999]
    times += [DAY_START + 3600, DAY_START + 3600.001] + [DAY_START + 3600 + 61 * i for i in range(30)]
    times += [DAY_START - 86400 * 2 + 1800.5 + 600 * i for i in range(10)]  # two days back, mid-hour
    _audit_events(sorted(times))
    sealed_at = DAY_START + 4 * 3600
    assert _seal_and_count(sealed_at)["sealed"] > 0
    _audit_events([sealed_at - 30, sealed_at + 20, sealed_at + 40])  # after the last count: read as events
    for now in (sealed_at + 60, DAY_START + 86400 - 0.0005, DAY_START + 2 * 86400 - 1800.5 + 1200):
        for user in ("u-0", "u-1", "u-2", "u-9"):
            for days in (1, 2, 3):
                expected = _raw_summary(user, days, now)
                assert _summary(user, days, now) == expected, (now, user, days)
    assert _raw_summary("u-1", 3, sealed_at + 60)["total"] > 20
    audit_reads.clear()
    summary = _summary("u-0", 1, sealed_at + 60)  # its range starts after the chain's genesis
    assert sum(audit_reads) == 1  # u-0's one event after the last count; the hours' came as counts
    assert summary["total"] == _raw_summary("u-0", 1, sealed_at + 60)["total"] > 10


def test_a_seal_failed_and_run_again_then_counted_counts_each_of_many_users_once(aws_mock, monkeypatch):
    from botocore.exceptions import ClientError

    from chalicelib import audit

    many = [DAY_START + 10 + i for i in range(45)]  # 45 users in one hour
    for n, at in enumerate(many):
        with_clock(at, lambda n=n: _invoke(lambda: audit.record("article.create", details={}, user_id=f"m-{n}")))
    _audit_events([DAY_START + 100 + 7 * i for i in range(12)])
    client = aws.table("audit_digests").meta.client
    real = client.transact_write_items
    failures = []

    def fail_once(**kwargs):
        if not failures:
            failures.append(kwargs)
            raise ClientError({"Error": {"Code": "InternalServerError"}}, "TransactWriteItems")
        return real(**kwargs)

    monkeypatch.setattr(client, "transact_write_items", fail_once)
    now = DAY_START + 3 * 3600
    with pytest.raises(ClientError):
        _seal(now)
    assert _seal(now)["sealed"] > 0
    assert _seal(now + 3600)["sealed"] == 2  # nothing new: the rest of an hour and most of the next
    _tally(now + 3600)
    assert _tally(now + 3600)["minutes"] == 0
    for user in ("m-0", "m-44", "u-0", "u-1", "u-2"):
        assert _summary(user, 1, now + 3600) == _raw_summary(user, 1, now + 3600), user
    assert _summary("u-0", 1, now + 3600)["total"] == 4


# --- minute counts: a range starting inside a final hour, and the minutes not final yet ------------


def _tally(now):
    from chalicelib.audit import seal_jobs as audit_jobs
    from chalicelib.jobs.processor import JobContext

    job = {"id": f"tally-{now}", "queue": "cleanup", "type": "audit_tally", "payload": {}}
    ctx = JobContext(job, 1, False, lambda percent: None, remaining=lambda: 300.0)
    return with_clock(now, lambda: _invoke(lambda: audit_jobs.audit_tally(job, ctx)))


def _minute_edges(start, minutes):
    """Events on both sides of minute boundaries, to the millisecond, from `start` on."""
    out = []
    for m in range(minutes):
        edge = start + 60 * m
        out += [edge - 0.001, edge, edge + 17.25]
    return out


def test_a_report_reads_counts_but_for_its_first_partial_minute_and_the_last_minutes(audit_reads):
    sealed_at = DAY_START + 2 * 3600 + 30  # seals up to 01:59 (a minute before, on the minute)
    times = _minute_edges(DAY_START - 1800, 50) + _minute_edges(DAY_START + 3600 - 600, 20)
    _audit_events(sorted(times))
    assert _seal(sealed_at)["until"] == timeutil.iso_ms(DAY_START + 2 * 3600 - 60)
    tail = _minute_edges(DAY_START + 2 * 3600 - 60, 14)  # from the seal's end on (-0.001: sealed already)
    _audit_events(sorted(t for t in tail if DAY_START + 2 * 3600 - 60 <= t < sealed_at + 300))
    now = DAY_START + 2 * 3600 + 12 * 60 + 5
    first = _tally(now - 200)
    assert _tally(now - 200)["minutes"] == 0  # run again: nothing left to count, nothing counted twice
    assert _tally(now)["minutes"] > 0 and first["minutes"] > 0
    assert _tally(now)["minutes"] == 0
    for since, until in [
        (DAY_START - 1500.5, now),  # mid-minute in a sealed hour, across midnight, into the tail
        (DAY_START + 3600 - 300.0005, DAY_START + 3600 + 420.25),  # inside sealed hours, both ends mid-minute
        (DAY_START + 2 * 3600 - 119.999, now),  # inside the last sealed minutes, then the tail
        (DAY_START - 0.001, DAY_START + 0.001),
    ]:
        expected = _raw_report(since, until)
        assert expected["total"] > 0
        assert _report(since, until, now + 1) == expected, (since, until)
    audit_reads.clear()
    _report(DAY_START - 1500.5, now, now + 1)
    # the events of 00:34:59.500-00:35 and of the minutes after the tally's cut (12:04-12:05, none)
    assert sum(audit_reads) == 1
    # a seal and a count after: the final hours take over, the same report
    later = now + 3600
    _seal_and_count(later)
    assert _report(DAY_START - 1500.5, now, later) == _raw_report(DAY_START - 1500.5, now)


def test_a_tally_that_died_half_way_counts_once_when_run_again(aws_mock, monkeypatch):
    from chalicelib.audit import counts, tally

    _audit_events([DAY_START + 10.5 * i for i in range(30)])
    _seal(DAY_START + 61)  # the chain starts: sealed up to 00:00, from GENESIS hours before
    table = aws.table("audit_digests")
    real_put = table.put_item
    calls = []

    def dies(**kwargs):  # the users' minutes of 00:00 were written, the hour's not: the job fails
        if kwargs["Item"]["hour"] == counts.minutes_key("2026-11-24"):
            calls.append(kwargs)
            raise RuntimeError("the Lambda died")
        return real_put(**kwargs)

    monkeypatch.setattr(table, "put_item", dies)
    now = DAY_START + 600
    with pytest.raises(RuntimeError):
        with_clock(now, lambda: tally.count(now))
    monkeypatch.setattr(table, "put_item", real_put)
    assert calls and _tally(now)["minutes"] == GENESIS * 60 + 9  # to 00:09, counted from their events again
    assert _tally(now)["minutes"] == 0
    assert _report(DAY_START + 5, now, now + 1) == _raw_report(DAY_START + 5, now)
    for user in ("u-0", "u-1", "u-2"):
        assert _summary(user, 1, now) == _raw_summary(user, 1, now), user


def test_a_user_summary_reads_counts_but_for_its_first_partial_minute_and_the_last_minutes(audit_reads):
    from chalicelib import audit

    times = _minute_edges(DAY_START - 86400 + 3000, 30) + _minute_edges(DAY_START + 600, 30)
    _audit_events(sorted(times))
    for at in (DAY_START - 86400 + 3 * 3600 + 5, DAY_START - 8 * 3600 + 5, DAY_START - 3 * 3600 + 5):
        with_clock(at, lambda: _invoke(lambda: audit.record("article.create", details={}, user_id="u-sparse")))
    sealed_at = DAY_START + 3600 + 30
    _seal(sealed_at)
    _audit_events(sorted(_minute_edges(DAY_START + 3600 - 60, 8))[1:])  # from the seal's end (00:59) on
    now = DAY_START + 86400 - 3000 + 30.5  # a day back from now starts in the middle of 23:10
    _tally(DAY_START + 3600 + 600)
    for at in (now, DAY_START + 86400 + 1800, DAY_START + 3600 + 540.5):
        for user in ("u-0", "u-1", "u-2", "u-7"):
            assert _summary(user, 1, at) == _raw_summary(user, 1, at), (at, user)
    assert _raw_summary("u-1", 1, now)["total"] > 30
    audit_reads.clear()
    _summary("u-1", 1, now)
    assert sum(audit_reads) <= 1  # at most u-1's event in the first partial minute; the rest as counts
    # the sealed hours without an event of the user count nothing: no query for them either
    at = DAY_START + 3600 + 540.5  # u-sparse active in three sealed hours of the day before
    expected = _raw_summary("u-sparse", 1, at)
    audit_reads.clear()
    assert _summary("u-sparse", 1, at) == expected and expected["total"] == 3
    assert len(audit_reads) <= 2  # the first partial minute's events and those of `until`'s millisecond


def test_an_event_written_into_a_sealed_minute_after_its_seal_is_counted_by_the_next_tally(audit_reads):
    from chalicelib.audit import chain

    _audit_events(sorted(_minute_edges(DAY_START + 3600 - 600, 12)))
    sealed_at = DAY_START + 3600 + 30  # sealed up to 00:59
    _seal_and_count(sealed_at)
    # a write that took long (retried): keyed at 00:57:30 and 00:58:59.999, stored after the seal
    _audit_events([DAY_START + 3600 - 150, DAY_START + 3600 - 60.001])
    now = sealed_at + 240
    verified = with_clock(now, lambda: chain.digests().verify(DAY_START, now, now))
    assert verified["valid"] and len([n for n in verified["notes"] if "after its period was sealed" in n]) == 2
    since = DAY_START + 3600 - 500.5
    assert _report(since, now, now + 1) != _raw_report(since, now)  # the counts miss them until...
    assert _tally(now)["recounted"] == 2  # ...the count reads the last sealed minutes again
    assert _tally(now + 1)["recounted"] == 0  # run again: nothing differs, nothing added
    for a, b in [(since, now), (DAY_START, now), (DAY_START + 3600 - 150.5, DAY_START + 3600 - 60)]:
        assert _report(a, b, now + 1) == _raw_report(a, b), (a, b)
    for user in ("u-0", "u-1", "u-2"):
        assert _summary(user, 1, now + 1) == _raw_summary(user, 1, now + 1), user
    _seal_and_count(now + 3600)  # later seals and counts change nothing of it
    assert _report(since, now, now + 3600) == _raw_report(since, now)
    for user in ("u-0", "u-1", "u-2"):
        assert _summary(user, 1, now + 3600) == _raw_summary(user, 1, now + 3600), user


def test_an_event_landing_after_its_minute_was_counted_is_counted_once_the_minute_is_sealed(aws_mock):
    _audit_events([DAY_START + 60 * i + 5 for i in range(20)])
    _seal(DAY_START + 61)  # the chain starts: sealed up to 00:00
    _tally(DAY_START + 12 * 60)  # counts up to 00:11
    # a write that took long: keyed at 00:10:30, stored at 00:20 (after its minute was counted)
    _audit_events([DAY_START + 630.5])
    assert _tally(DAY_START + 20 * 60)["recounted"] == 0  # not sealed yet: its minute is not read again
    assert _report(DAY_START, DAY_START + 1500, DAY_START + 1800)["total"] == 20  # one short, for now
    sealed_at = DAY_START + 3600 + 300
    _seal(sealed_at)  # its digest lists 21 events of 00:00-01:00, the minutes count 20
    assert _tally(sealed_at)["recounted"] == 60  # the period's minutes, from their events again
    assert _report(DAY_START, DAY_START + 1500, sealed_at) == _raw_report(DAY_START, DAY_START + 1500)
    assert _raw_report(DAY_START, DAY_START + 1500)["total"] == 21
    later = sealed_at + 3600
    _seal_and_count(later)
    assert _report(DAY_START, later - 1800, later) == _raw_report(DAY_START, later - 1800)
    assert _summary("u-2", 1, later) == _raw_summary("u-2", 1, later)


def test_the_seal_writes_no_counts_and_the_count_nothing_of_the_chain(aws_mock, monkeypatch):
    """Each minute's counts have one place (`counts-minutes#<day>`, and per user
    `counts-minutes-user#<user_id>`) and one writer (`counts.count`, the 5-minute job)."""
    from chalicelib.audit import counts

    table = aws.table("audit_digests")
    client = table.meta.client
    writes: list[str] = []

    def spy(real):
        def call(**kwargs):
            ops = [next(iter(op.values())) for op in kwargs.get("TransactItems", [])] or [kwargs]
            for op in ops:
                if op.get("TableName") == table.name:
                    writes.append((op.get("Item") or op["Key"])["hour"])
            return real(**kwargs)

        return call

    for name in ("put_item", "update_item", "delete_item", "transact_write_items", "batch_write_item"):
        monkeypatch.setattr(client, name, spy(getattr(client, name)))
    assert not hasattr(client, "batch_writer")  # (a table's batch writer calls batch_write_item: spied too)

    def written(fn):
        writes.clear()
        fn()
        return set(writes)

    _audit_events([DAY_START + 37 * i for i in range(150)])
    by_seal, by_count = set(), set()
    for now in (DAY_START + 3600 + 30, DAY_START + 2 * 3600 + 30):
        by_seal |= written(lambda now=now: _seal(now))
        by_count |= written(lambda now=now: _tally(now))
        _audit_events([now - 45])  # late into a sealed minute: the next count counts it again
        by_count |= written(lambda now=now: _tally(now + 600))
    assert by_seal and by_count
    chain_partitions = {k for k in by_seal if k == "chain" or model_hour(k)}
    assert by_seal == chain_partitions  # the seal: digests and the chain head only
    assert all(any(k.startswith(layer) for layer in counts.LAYERS) for k in by_count), by_count
    minute_layer = {k for k in by_seal | by_count if "minute" in k or k.startswith(("tail", "minutes"))}
    assert minute_layer and all(k.startswith(("counts-minutes#", "counts-minutes-user#")) for k in minute_layer)
    assert minute_layer <= by_count and not minute_layer & by_seal


def model_hour(partition):
    from chalicelib.audit import model

    return any(partition == model.hour_of(t) for t in (DAY_START - 2 * 86400 + 3600 * h for h in range(24 * 3)))


def test_a_count_out_of_time_says_more_and_the_next_run_goes_on(aws_mock, monkeypatch):
    from chalicelib.audit import tally

    _audit_events([DAY_START + 100 * i for i in range(20)])
    now = DAY_START + 3600 + 30
    _seal(now)
    monkeypatch.setattr(tally, "MAX_HOURS_PER_RUN", 1)  # GENESIS hours and 59 minutes from the genesis
    calls = iter([10.0, 0.0])
    first = with_clock(now, lambda: tally.count(now, lambda: next(calls, 0.0)))
    assert (first["minutes"], first["more"]) == (60, True)  # one hour, then out of time
    runs = [with_clock(now, lambda: tally.count(now)) for _ in range(GENESIS)]
    assert [r["more"] for r in runs] == [True] * (GENESIS - 1) + [False]
    assert sum(r["minutes"] for r in runs) + 60 == GENESIS * 60 + 59
    assert _report(DAY_START, now - 60, now) == _raw_report(DAY_START, now - 60)
