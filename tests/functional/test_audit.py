"""The audit trail through the REST API on moto: every contract action recorded with its actor,
buffered events flushed whatever happens, queries with pagination, summary, report, and who may
read what."""

from __future__ import annotations

import json
import time
import uuid

import pytest

from chalicelib import audit, aws, events, runtime, timeutil
from chalicelib.audit import logger
from tests.conftest import ROLE_PASSWORD, body
from tests.functional.audit_helpers import all_events
from tests.functional.audit_helpers import seed as _seed


def actions_of(items):
    return [i["action"] for i in items]


def test_contract_actions_are_recorded_with_actor_ip_user_agent_and_request_id(api):
    admin = api.user("admin")
    editor = api.user("editor")
    ua = {"user-agent": "audit-test/1.0"}
    api.post("/api/auth/login", {"email": editor["email"], "password": "wrong"}, headers=ua)
    token = body(api.post("/api/auth/login", {"email": editor["email"], "password": ROLE_PASSWORD}, headers=ua))[
        "token"
    ]
    created = api.post("/api/articles", {"title": "T", "topic": "x"}, token=token, headers=ua)
    assert created.status_code == 201
    api.put("/api/settings/site.name", {"value": "Inkwell"}, as_="admin", headers=ua)
    api.post(
        "/api/users", {"email": "new@example.com", "password": "long enough, really", "role": "viewer"}, as_="admin"
    )
    assert api.post("/api/auth/logout", token=token, headers=ua).status_code == 204

    items = all_events(api)
    seen = {i["action"]: i for i in items}
    for action in (
        "auth.login",
        "auth.login_failed",
        "auth.logout",
        "user.create",
        "article.create",
        "settings.update",
    ):
        assert action in seen, action
    login = next(i for i in items if i["action"] == "auth.login" and i["actor"]["user_id"] == editor["id"])
    assert login["actor"] == {
        "user_id": editor["id"],
        "email": editor["email"],
        "ip": "127.0.0.1",
        "user_agent": "audit-test/1.0",
    }
    assert login["category"] == "auth" and login["severity"] == "info" and login["request_id"]
    article = seen["article.create"]
    assert article["resource"] == {"type": "article", "id": body(created)["id"]}
    assert article["actor"]["user_id"] == editor["id"]
    assert seen["settings.update"]["actor"]["user_id"] == admin["id"]
    assert seen["settings.update"]["details"]["new"] == {"site.name": "Inkwell"}
    assert seen["auth.logout"]["actor"]["user_agent"] == "audit-test/1.0"
    assert set(seen["auth.login"]) == {
        "id",
        "ts",
        "action",
        "category",
        "severity",
        "actor",
        "resource",
        "details",
        "request_id",
    }


def test_passwords_and_tokens_never_reach_a_record(api):
    api.user("viewer")
    api.post("/api/auth/login", {"email": "x@example.com", "password": "hunter2-secret"})
    api.put("/api/settings/webhook_secret", {"value": "s3cr3t-value"}, as_="admin")
    audit.record("system.test", details={"password": "p4ss", "note": "Bearer abc.def.ghi", "ticket": "t-123"})
    audit.flush()
    raw = json.dumps(all_events(api))
    for secret in ("hunter2-secret", "s3cr3t-value", "p4ss", "abc.def.ghi", "t-123", ROLE_PASSWORD):
        assert secret not in raw


def _middleware() -> runtime.Middleware:
    import app  # at run time: app.py names its queues after the stage the test environment sets

    return app.middleware


def test_lockout_is_recorded_and_raises_an_alert(api):
    user = api.user("editor")
    alerts = []
    unsubscribe = events.subscribe(events.Alert, alerts.append)
    try:
        for _ in range(6):
            api.post("/api/auth/login", {"email": user["email"], "password": "bad"})
    finally:
        unsubscribe()
    items = all_events(api)
    assert actions_of(items).count("auth.lockout") == 1
    throttled = [i for i in items if i["action"] == "auth.login_throttled"]
    assert [i["details"]["count"] for i in throttled] == [1]
    assert any("auth.lockout" in a.message for a in alerts)


def test_buffered_events_are_flushed_after_the_handler_raises(api):
    api.user("admin")

    def handler():
        for n in range(30):  # one automatic flush at 24 (and its manifest), the rest at the end
            audit.record("article.status_changed", resource=("article", f"a{n}"), details={"n": n})
        assert audit.pending() == 30 - (logger.BATCH_SIZE - 1)
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        _middleware().run(runtime.Invocation(kind="sqs", request_id="req-crash"), handler)
    items = all_events(api, action="article.status_changed")
    assert sorted(i["details"]["n"] for i in items) == list(range(30))
    assert {i["request_id"] for i in items} == {"req-crash"}


@pytest.fixture
def published(monkeypatch):
    """Each AuditRecorded published, as (its events, how many of them still waited to be written)."""
    seen = []
    monkeypatch.setitem(
        events._listeners,
        events.AuditRecorded,
        [*events._listeners[events.AuditRecorded], lambda e: seen.append((list(e.events), audit.pending()))],
    )
    return seen


def test_every_event_is_published_once_after_it_is_written(api, published):
    api.token("admin")
    published.clear()
    api.post("/api/articles", {"title": "T", "topic": "x"}, as_="admin")  # buffered
    api.put("/api/settings/site.name", {"value": 1}, as_="admin")  # critical
    batches = list(published)
    assert [([e["action"] for e in batch], waiting) for batch, waiting in batches] == [
        (["article.create"], 0),
        (["settings.update"], 0),
    ]
    assert batches[1][0][0]["details"]["new"] == {"site.name": 1}
    stored = {i["id"]: i for i in all_events(api)}
    assert [stored[batch[0]["id"]] for batch, _ in batches] == [batch[0] for batch, _ in batches]


def test_an_invocation_publishes_its_events_in_order_once_whatever_was_written_when(api, published):
    api.user("admin")

    def handler():
        ids = []
        for n in range(30):  # buffered, 24 of them written before the end
            if n == 12:  # written at once
                ids.append(audit.record("queue.pause", resource=("queue", "emails"))["id"])
            ids.append(audit.record("article.status_changed", details={"n": n})["id"])
        return ids

    ids = _middleware().run(runtime.Invocation(kind="sqs", request_id="r"), handler)
    [(batch, waiting)] = published
    assert waiting == 0
    assert [e["id"] for e in batch] == ids and len(ids) == 31  # all of them, in the order recorded
    _middleware().run(runtime.Invocation(kind="sqs", request_id="r2"), audit.flush)
    assert len(published) == 1  # nothing twice


def test_an_explicit_flush_publishes_what_was_recorded_so_far(api, published):
    api.user("admin")

    def handler():
        audit.record("article.status_changed", details={"n": 1})
        audit.flush()
        audit.record("article.status_changed", details={"n": 2})

    _middleware().run(runtime.Invocation(kind="sqs", request_id="r"), handler)
    assert [[e["details"]["n"] for e in batch] for batch, _ in published] == [[1], [2]]


def test_a_long_invocation_publishes_every_activity_batch_events(api, published, monkeypatch):
    api.user("admin")
    count = 2 * logger.ACTIVITY_BATCH + 7

    def handler():
        for n in range(count):
            audit.record("article.status_changed", details={"n": n})
        assert len(published) == 2  # before the end: memory and latency stay bounded

    _middleware().run(runtime.Invocation(kind="sqs", request_id="r"), handler)
    assert [len(batch) for batch, _ in published] == [logger.ACTIVITY_BATCH, logger.ACTIVITY_BATCH, 7]
    assert [e["details"]["n"] for batch, _ in published for e in batch] == list(range(count))
    assert all(waiting == 0 for _, waiting in published)


def test_job_failures_and_article_status_changes_are_recorded_from_events(api):
    job = {"id": "job-1", "queue": "articles", "type": "generate", "attempts": 3}

    def processor():
        events.publish(events.JobEvent("failed", job, {"message": "webhook 400"}))
        events.publish(events.ArticleStatusChanged("art-1", "DRAFT", "author-1", "job-1"))

    _middleware().run(runtime.Invocation(kind="sqs", request_id="r"), processor)
    failed = all_events(api, resource_type="job", resource_id="job-1")
    assert actions_of(failed) == ["job.failed"] and failed[0]["severity"] == "error"
    assert actions_of(all_events(api, resource_type="article", resource_id="art-1")) == ["article.status_changed"]


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"user_id": "u-1"},
        {"action": "article.status_changed"},
        {"category": "article"},
        {"user_id": "u-1", "category": "article"},
    ],
)
def test_pagination_walks_every_event_once_newest_first_through_each_index(api, query, monkeypatch):
    now = time.time()
    monkeypatch.setattr(timeutil, "now", lambda: now)
    # 57 events spread over three hours, so pages cross hour and shard boundaries
    _seed(57, now - 3 * 3600, step=3 * 3600 / 57)
    seen, cursor = [], None
    for _ in range(30):
        params = dict(query, limit="7", since=timeutil.iso(now - 4 * 3600))
        if cursor:
            params["cursor"] = cursor
        page = body(api.get("/api/audit?" + "&".join(f"{k}={v}" for k, v in params.items()), as_="admin"))
        seen += [i for i in page["items"] if i["action"] == "article.status_changed"]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert [i["details"]["n"] for i in seen] == list(range(56, -1, -1))


def test_time_range_limits_the_listing(api, monkeypatch):
    now = time.time()
    monkeypatch.setattr(timeutil, "now", lambda: now)
    _seed(10, now - 10 * 3600, step=3600)
    since, until = timeutil.iso(now - 6.5 * 3600), timeutil.iso(now - 2.5 * 3600)
    items = all_events(api, action="article.status_changed", since=since, until=until)
    assert [i["details"]["n"] for i in items] == [7, 6, 5, 4]


@pytest.mark.parametrize(
    "query, field",
    [
        ("category=nope", "category"),
        ("action=DROP TABLE", "action"),
        ("resource_type=article", "resource_id"),
        ("since=yesterday", "since"),
        ("since=2026-11-28T00:00:00Z&until=2026-11-27T00:00:00Z", "since"),
        ("since=0001-01-01T00:00:00%2B14:00", "since"),  # before year 1 in UTC
        ("until=9999-12-31T23:59:59-23:59", "until"),  # after year 9999 in UTC
        ("limit=0", "limit"),
        ("cursor=!!!", "cursor"),
        ("cursor=eyJwIjogIjE5OTktMDEiLCAicyI6ICIifQ", "cursor"),
        ("cursor=eyJwIjogInUtMSIsICJzIjogIlx1MDAwMCJ9&user_id=u-1", "cursor"),
        ("cursor=eyJwIjogInUtMSIsICJzIjogIngifQ&user_id=u-1", "cursor"),
    ],
)
def test_bad_query_parameters_are_400_with_the_field(api, query, field):
    response = api.get("/api/audit?" + query, as_="admin")
    assert response.status_code == 400
    assert body(response)["Errors"][0]["field"] == field


@pytest.mark.parametrize(
    "query",
    [
        "user_id=u-1&since=1990-01-01T00:00:00Z&until=1990-01-02T00:00:00Z",
        "user_id=u-1&until=1990-01-02T00:00:00Z",
        "since=9999-12-30T00:00:00Z&until=9999-12-31T00:00:00Z",
        "action=auth.login&since=0001-01-01T00:00:00Z",
        "resource_type=article&resource_id=x&since=2026-01-01",
    ],
)
def test_ranges_outside_the_retention_answer_an_empty_list_not_an_error(api, query):
    response = api.get("/api/audit?" + query, as_="admin")
    assert response.status_code == 200, response.body
    assert all(i["action"] == "auth.login" for i in body(response)["items"])


def test_reading_the_audit_log_is_itself_audited(api):
    api.get("/api/audit?category=auth", as_="admin")
    api.get("/api/audit/report", as_="admin")
    items = all_events(api)
    read = [i for i in items if i["action"] == "audit.read"]
    assert any(i["details"]["filters"] == {"category": "auth"} for i in read)
    assert "analytics.export" in actions_of(items)


def test_user_summary_counts_a_users_actions(api, monkeypatch):
    editor = api.user("editor")
    api.token("editor")
    api.post("/api/articles", {"title": "A", "topic": "x"}, as_="editor")
    api.post("/api/articles", {"title": "B", "topic": "x"}, as_="editor")
    response = api.get(f"/api/audit/users/{editor['id']}/summary?days=7", as_="editor")
    assert response.status_code == 200
    summary = body(response)
    assert summary["user_id"] == editor["id"]
    assert summary["by_action"]["article.create"] == 2 and summary["by_action"]["auth.login"] == 1
    assert summary["total"] == sum(summary["by_action"].values())
    assert summary["first"] <= summary["last"]


@pytest.mark.parametrize("days", ["0", "366", "x"])
def test_summary_rejects_bad_days(api, days):
    user = api.user("admin")
    response = api.get(f"/api/audit/users/{user['id']}/summary?days={days}", as_="admin")
    assert response.status_code == 400


def test_report_counts_by_category_action_hour_failed_logins_top_users_and_errors(api):
    user = api.user("viewer")
    for _ in range(3):
        api.post("/api/auth/login", {"email": user["email"], "password": "bad"})
    api.token("viewer")
    audit.record("job.failed", resource=("job", "j"), details={"error": "x"})
    audit.flush()
    report = body(api.get("/api/audit/report", as_="admin"))
    assert report["by_action"]["auth.login_failed"] == 3
    assert report["failed_logins"]["total"] == 3
    assert report["failed_logins"]["by_email"] == {user["email"]: 3}
    assert report["by_category"]["auth"] >= 4
    assert sum(report["by_hour"].values()) == report["total"]
    assert report["errors"]["total"] == 1 and report["errors"]["recent"][0]["action"] == "job.failed"
    assert report["top_users"][0]["events"] >= 1


def test_report_range_is_bounded(api):
    response = api.get("/api/audit/report?since=2026-01-01T00:00:00Z&until=2026-11-28T00:00:00Z", as_="admin")
    assert response.status_code == 400


AUDIT_ROUTES = ["/api/audit", "/api/audit/report", "/api/audit/verify"]


@pytest.mark.parametrize("path", AUDIT_ROUTES)
@pytest.mark.parametrize("role, status", [("admin", 200), ("editor", 403), ("viewer", 403), (None, 401)])
def test_audit_routes_are_for_admins(api, path, role, status):
    assert api.get(path, as_=role).status_code == status


@pytest.mark.parametrize(
    "role, whose, status",
    [
        ("admin", "editor", 200),
        ("editor", "editor", 200),
        ("viewer", "editor", 403),
        ("editor-2", "editor", 403),
        (None, "editor", 401),
    ],
)
def test_user_summary_is_for_admins_or_that_user(api, role, whose, status):
    target = api.user(whose)
    assert api.get(f"/api/audit/users/{target['id']}/summary", as_=role).status_code == status


def test_a_refused_role_is_recorded_as_a_security_event(api):
    viewer = api.user("viewer")
    assert api.get("/api/audit", as_="viewer").status_code == 403
    refused = all_events(api, action="security.forbidden")
    assert len(refused) == 1 and refused[0]["actor"]["user_id"] == viewer["id"]
    assert refused[0]["details"] == {"needs": ["admin"], "role": "viewer"}


class FlakyClient:
    """The real DynamoDB client, refusing the first `fail` calls of each operation the way a
    throttled table does."""

    def __init__(self, real, fail):
        self._real, self.fail, self.calls = real, fail, {"put_item": 0, "transact_write_items": 0}

    def put_item(self, **kwargs):
        self.calls["put_item"] += 1
        if self.calls["put_item"] <= self.fail:
            raise self._real.exceptions.ProvisionedThroughputExceededException(
                {"Error": {"Code": "ProvisionedThroughputExceededException", "Message": "slow down"}}, "PutItem"
            )
        return self._real.put_item(**kwargs)

    def transact_write_items(self, TransactItems):
        self.calls["transact_write_items"] += 1
        if self.calls["transact_write_items"] <= self.fail:  # all or nothing: nothing written
            raise self._real.exceptions.TransactionCanceledException(
                {
                    "Error": {"Code": "TransactionCanceledException", "Message": "throttled"},
                    "CancellationReasons": [{"Code": "ThrottlingError"}] * len(TransactItems),
                },
                "TransactWriteItems",
            )
        return self._real.transact_write_items(TransactItems=TransactItems)


@pytest.fixture
def flaky(aws_mock, monkeypatch):
    """Install a throttled writer; `flaky(n)` sets how many calls fail. Sleeps are recorded."""
    sleeps = []
    monkeypatch.setattr(logger, "sleep", sleeps.append)
    table = aws.table("audit_events")
    holder = {}

    def make(fail):
        holder["client"] = FlakyClient(table.meta.client, fail)
        monkeypatch.setattr(
            logger,
            "writer",
            lambda: logger.Writer(holder["client"], table.name, aws.client("sqs"), lambda: aws.queue_url("audit")),
        )
        return holder["client"]

    make.sleeps = sleeps
    return make


def _queued_bodies():
    sqs = aws.client("sqs")
    out = []
    while True:
        msgs = sqs.receive_message(QueueUrl=aws.queue_url("audit"), MaxNumberOfMessages=10, WaitTimeSeconds=0).get(
            "Messages", []
        )
        if not msgs:
            return out
        out += [m["Body"] for m in msgs]


def _stored_ids(api):
    return {i["id"] for i in all_events(api)}


def test_throttled_batch_writes_are_retried_with_backoff_and_lose_nothing(api, flaky):
    api.user("admin")
    client = flaky(3)
    ids = [audit.record("article.status_changed", details={"n": n})["id"] for n in range(60)]
    audit.flush()
    assert client.calls["transact_write_items"] > 3 and len(flaky.sleeps) >= 3
    assert all(0 < s <= logger.BACKOFF_CAP for s in flaky.sleeps)
    assert set(ids) <= _stored_ids(api)


def test_batches_dynamodb_keeps_refusing_go_to_the_queue_and_its_processor_stores_them_once(api, flaky):
    api.user("admin")
    flaky(10**6)
    ids = [audit.record("article.status_changed", details={"n": n})["id"] for n in range(20)]
    assert audit.flush() == {"dynamodb": 0, "queue": 20, "log": 0}
    bodies = _queued_bodies()
    assert bodies
    flaky(0)
    for message in bodies + bodies:  # delivered twice: still stored once
        audit.process_fallback_message(message)
    stored = [i for i in all_events(api, action="article.status_changed")]
    assert sorted(i["id"] for i in stored) == sorted(ids)


def test_throttled_critical_put_is_retried_then_queued_never_lost(api, flaky):
    api.user("admin")
    flaky(2)
    first = audit.record("queue.pause", resource=("queue", "articles"))
    assert first["id"] in _stored_ids(api)
    flaky(10**6)
    second = audit.record("queue.resume", resource=("queue", "articles"))
    bodies = _queued_bodies()
    assert len(bodies) == 1
    flaky(0)
    assert audit.process_fallback_message(bodies[0]) == 1
    assert audit.process_fallback_message(bodies[0]) == 0
    assert second["id"] in _stored_ids(api)


def test_the_audit_queue_handler_stores_fallback_events(app, client, flaky):
    flaky(10**6)
    event = audit.record("job.retry", resource=("job", "j-1"))
    bodies = _queued_bodies()
    flaky(0)
    sqs_event = client.events.generate_sqs_event(queue_name="inkwell-test-audit", message_bodies=bodies)
    client.lambda_.invoke("audit_fallback", sqs_event)
    item = aws.table("audit_events").get_item(Key={"hour": "id#" + event["id"], "sk": "id"}).get("Item")
    assert item is not None


def test_an_unknown_action_is_refused_at_the_call():
    with pytest.raises(audit.UnknownAction):
        audit.record("no-dots")
    with pytest.raises(audit.UnknownAction):
        audit.record("billing.charge")


def test_uncatalogued_actions_need_a_category(aws_mock):
    event = audit.record("billing.charge", "system", "warning", details={"amount": 3})
    assert event["category"] == "system" and event["severity"] == "warning"
    audit.flush()
    assert uuid.UUID(event["id"])


@pytest.mark.parametrize("path", ["/api/audit/report", "/api/audit/verify"])
@pytest.mark.parametrize(
    "query, status",
    [
        ("since=9999-12-30T00:00:00Z&until=9999-12-31T00:00:00Z", 200),
        ("since=1990-01-01T00:00:00Z&until=1990-01-02T00:00:00Z", 200),
        ("since=0001-01-01T00:00:00Z&until=0001-01-02T00:00:00Z", 200),
        ("since=2026-11-28&until=2026-11-27", 400),
        ("until=not-a-time", 400),
        ("since=0001-01-01T00:00:00%2B14:00&until=0001-01-01T00:00:00%2B14:00", 400),
    ],
)
def test_report_and_verify_take_any_range_without_a_server_error(api, path, query, status):
    response = api.get(f"{path}?{query}", as_="admin")
    assert response.status_code == status, response.body
