"""Emitters and fan-out on moto with a fake management API: envelopes, rooms, seq, stale
connections, size limits, and the listeners wired to `chalicelib.events`."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from chalicelib import config, events, runtime, timeutil
from chalicelib.realtime import delivery, emitters, live, protocol
from chalicelib.realtime import sender as sender_module
from tests.functional.ws_support import FakeManagement

ARTICLE = "a" * 32


@pytest.fixture
def management(aws_mock, monkeypatch: pytest.MonkeyPatch) -> FakeManagement:
    fake = FakeManagement()
    urls: list[str] = []
    monkeypatch.setattr(sender_module, "management_client", lambda url: urls.append(url) or fake)
    fake.urls = urls  # type: ignore[attr-defined]
    return fake


def join(connection_id: str, *rooms: str, user_id: str = "u1", role: str = "editor", endpoint: str = "https://gw/api"):
    user = {"id": user_id, "email": f"{user_id}@example.com", "role": role, "jti": "jti"}
    return live.connections().open(connection_id, user, list(rooms), endpoint)


def test_article_status_goes_to_the_article_the_author_and_admins_with_a_seq_per_room(management):
    # GIVEN a follower of the article, its author and an admin
    join("follower", f"article:{ARTICLE}", user_id="admin-1", role="admin")
    join("author", "user:author-1", user_id="author-1")
    join("admin", "admin", user_id="admin-2", role="admin")
    # WHEN the status changes twice
    first = emitters.emit_article_status(ARTICLE, "PROCESSING", "author-1", "job-1")
    second = emitters.emit_article_status(ARTICLE, "PUBLISHED", "author-1", "job-1")
    # THEN each room got both, in order, with seq rising by one
    assert first == {f"article:{ARTICLE}": 1, "user:author-1": 1, "admin": 1}
    assert second == {f"article:{ARTICLE}": 2, "user:author-1": 2, "admin": 2}
    for cid, room in (("follower", f"article:{ARTICLE}"), ("author", "user:author-1"), ("admin", "admin")):
        frames = management.take(cid)
        assert [(f["room"], f["seq"], f["data"]["status"]) for f in frames] == [
            (room, 1, "PROCESSING"),
            (room, 2, "PUBLISHED"),
        ]
        assert set(frames[0]) == {"type", "room", "seq", "ts", "data"}
        assert frames[0]["type"] == "article.status"
        assert frames[0]["data"] == {"article_id": ARTICLE, "status": "PROCESSING", "job_id": "job-1"}
        assert timeutil.parse_iso(frames[0]["ts"]) == pytest.approx(time.time(), abs=5)


def test_a_connection_in_several_rooms_hears_the_event_once_per_room(management):
    join("both", "admin", "user:author-1", user_id="author-1", role="admin")
    emitters.emit_article_status(ARTICLE, "PUBLISHED", "author-1")
    assert sorted(f["room"] for f in management.take("both")) == ["admin", "user:author-1"]


def test_a_gone_connection_is_removed_and_the_others_still_hear(management, monkeypatch):
    for cid in ("a", "stale", "b"):
        join(cid, "admin", role="admin", user_id=cid)
    management.gone.add("stale")
    later = time.time() + live.GONE_GRACE_SECONDS + 1
    monkeypatch.setattr(timeutil, "now", lambda: later)
    emitters.emit_system_alert("warning", "disk")
    assert [f["data"]["message"] for f in management.take("a")] == ["disk"]
    assert [f["data"]["message"] for f in management.take("b")] == ["disk"]
    assert live.connections().get("stale") is None
    assert sorted(live.connections().members("admin")) == ["a", "b"]


def test_a_failing_post_does_not_stop_the_others_nor_drop_the_connection(management):
    for cid in ("a", "flaky", "b"):
        join(cid, "admin", role="admin", user_id=cid)
    management.failing.add("flaky")
    emitters.emit_system_alert("info", "hello")
    assert management.take("a") and management.take("b")
    assert live.connections().get("flaky") is not None


def test_a_payload_over_128_kb_is_refused_before_a_seq_is_taken(management):
    join("admin", "admin", role="admin")
    with pytest.raises(protocol.PayloadTooLarge, match="131072 bytes"):
        emitters.emit_system_alert("info", "x" * (128 * 1024))
    assert management.calls == 0
    assert live.event_log().current(["admin"]) == {"admin": 0}
    assert emitters.emit_system_alert("info", "small") == {"admin": 1}


def test_the_configured_management_endpoint_wins(management, monkeypatch):
    monkeypatch.setenv(config.WS_MANAGEMENT_ENDPOINT, "http://127.0.0.1:8001/mgmt")
    config.reset()
    join("a", "admin", role="admin")
    emitters.emit_system_alert("info", "x")
    assert management.urls == ["http://127.0.0.1:8001/mgmt"]


def test_without_configuration_posts_go_to_the_endpoint_each_connection_came_through(management):
    join("a", "admin", role="admin", endpoint="https://one/api")
    join("b", "admin", role="admin", user_id="u2", endpoint="https://two/api")
    emitters.emit_system_alert("info", "x")
    assert sorted(management.urls) == ["https://one/api", "https://two/api"]


def test_events_are_stored_for_resume_when_nobody_listens_now_but_someone_joined_before(management):
    join("gone", f"article:{ARTICLE}", "admin", role="admin")
    live.connections().close("gone")
    emitters.emit_job_progress("job-1", "articles", 40, ARTICLE)
    for room in (f"article:{ARTICLE}", "admin"):
        replayed, more = live.event_log().replay(room, 0, 10)
        assert [seq for seq, _ in replayed] == [1] and more is False
    assert management.calls == 0


def test_an_event_to_rooms_nobody_ever_joined_is_neither_stored_nor_posted_for_one_read(management, dynamodb_calls):
    # GIVEN only the author's room was ever joined
    join("author", "user:author-1", user_id="author-1")
    dynamodb_calls.clear()
    # WHEN the article's status goes to its three rooms
    seqs = emitters.emit_article_status(ARTICLE, "PUBLISHED", "author-1")
    # THEN one read found which rooms exist; only the author's room took a seq and stored it
    assert seqs == {"user:author-1": 1}
    assert [c[:2] for c in dynamodb_calls] == [
        ("BatchGetItem", "ws_events"),
        ("UpdateItem", "ws_events"),
        ("BatchWriteItem", "ws_events"),
        ("Query", "ws_members"),
    ]
    for room in (f"article:{ARTICLE}", "admin"):
        assert live.event_log().replay(room, 0, 10) == ([], False)
        assert live.event_log().current([room]) == {room: 0}
    assert [f["room"] for f in management.take("author")] == ["user:author-1"]


def test_an_event_to_one_room_nobody_ever_joined_costs_one_request(management, dynamodb_calls):
    assert emitters.emit_system_alert("info", "nobody hears") == {}
    assert emitters.emit_activities([{"id": "e1"}, {"id": "e2"}]) == []
    assert [c[:2] for c in dynamodb_calls] == [("UpdateItem", "ws_events"), ("UpdateItem", "ws_events")]
    assert live.event_log().replay("admin", 0, 10) == ([], False)


def test_a_room_joined_after_events_were_skipped_starts_at_seq_one_without_a_gap(management):
    emitters.emit_job_progress("job-1", "articles", 10, ARTICLE)  # nobody ever joined: skipped
    join("late", f"article:{ARTICLE}")
    assert live.event_log().current([f"article:{ARTICLE}"]) == {f"article:{ARTICLE}": 0}
    emitters.emit_job_progress("job-1", "articles", 90, ARTICLE)
    assert [(f["seq"], f["data"]["progress"]) for f in management.take("late")] == [(1, 90)]
    replayed, _ = live.event_log().replay(f"article:{ARTICLE}", 0, 10)
    assert [seq for seq, _ in replayed] == [1]


# --- listeners ------------------------------------------------------------------------------------------


def job(**overrides: Any) -> dict[str, Any]:
    return {
        "id": "job-1",
        "queue": "articles",
        "type": "generate",
        "state": "active",
        "attempts": 1,
        "max_attempts": 3,
        "progress": 50,
        "payload": {"article_id": ARTICLE},
        "user_id": "author-1",
        **overrides,
    }


def rooms_heard(management: FakeManagement, *cids: str) -> dict[str, list[tuple[str, str]]]:
    return {cid: [(f["type"], f["room"]) for f in management.take(cid)] for cid in cids}


@pytest.fixture
def listeners(management):
    join("follower", f"article:{ARTICLE}", user_id="author-1")
    join("author", "user:author-1", user_id="author-1")
    join("admin", "admin", user_id="admin-1", role="admin")
    return management


def test_job_progress_reaches_the_article_and_admins(listeners):
    events.publish(events.JobEvent("progress", job(progress=60)))
    heard = rooms_heard(listeners, "follower", "author", "admin")
    assert heard == {
        "follower": [("job.progress", f"article:{ARTICLE}")],
        "author": [],
        "admin": [("job.progress", "admin")],
    }


def test_progress_of_a_job_about_no_article_reaches_admins_only(listeners):
    events.publish(events.JobEvent("progress", job(queue="analytics", payload={"date": "2026-11-27"})))
    assert rooms_heard(listeners, "follower", "admin") == {"follower": [], "admin": [("job.progress", "admin")]}


def test_job_completion_and_failure_reach_admins_and_the_user_who_caused_it(listeners):
    events.publish(events.JobEvent("completed", job(state="completed", attempts=2)))
    events.publish(events.JobEvent("failed", job(state="failed", attempts=3), {"message": "webhook 500"}))
    frames = listeners.take("author")
    assert [(f["type"], f["data"]) for f in frames] == [
        ("job.completed", {"job_id": "job-1", "queue": "articles", "attempts": 2}),
        ("job.failed", {"job_id": "job-1", "queue": "articles", "attempts": 3, "error": {"message": "webhook 500"}}),
    ]
    heard = [f["type"] for f in listeners.take("admin")]  # with the audit's activity and alert
    assert [t for t in heard if t.startswith("job.")] == ["job.completed", "job.failed"]
    assert listeners.take("follower") == []


def test_job_activity_and_retries_are_not_broadcast(listeners):
    events.publish(events.JobEvent("active", job()))
    events.publish(events.JobEvent("retrying", job()))
    assert listeners.calls == 0


def test_article_status_changes_are_broadcast(listeners):
    events.publish(events.ArticleStatusChanged(ARTICLE, "PROCESSING", "author-1", "job-1"))
    heard = rooms_heard(listeners, "follower", "author", "admin")
    assert heard == {
        "follower": [("article.status", f"article:{ARTICLE}")],
        "author": [("article.status", "user:author-1")],
        "admin": [("article.status", "admin")],
    }


def test_alerts_reach_admins_with_their_details(listeners):
    events.publish(events.Alert("critical", "queue articles is failing", {"queue": "articles", "level": "spoof"}))
    frames = listeners.take("admin")
    assert frames[0]["type"] == "system.alert"
    assert frames[0]["data"] == {"level": "critical", "message": "queue articles is failing", "queue": "articles"}


def test_every_audit_event_reaches_admins_as_activity(listeners):
    events.publish(
        events.AuditRecorded(({"id": "e1", "action": "settings.update"}, {"id": "e2", "action": "article.create"}))
    )
    frames = listeners.take("admin")
    assert [(f["type"], f["seq"], f["data"]["id"]) for f in frames] == [("activity", 1, "e1"), ("activity", 2, "e2")]
    assert rooms_heard(listeners, "follower", "author") == {"follower": [], "author": []}


@pytest.fixture
def dynamodb_calls(aws_mock) -> Any:
    """Every DynamoDB request, as (operation, logical table, items or count): batch writes and transactions carry
    their item count, an UpdateItem its ADD value."""
    from chalicelib import aws, catalog

    names = {config.get().resource_name(name): name for name in catalog.TABLES}
    calls: list[tuple[str, str, Any]] = []

    def hook(model: Any, params: dict[str, Any], **_: Any) -> None:
        if "RequestItems" in params:
            for name, requests in params["RequestItems"].items():
                calls.append((model.name, names.get(name, name), len(requests)))
        elif "TransactItems" in params:
            tables = {op["TableName"] for item in params["TransactItems"] for op in item.values()}
            calls.append((model.name, "/".join(sorted(names.get(t, t) for t in tables)), len(params["TransactItems"])))
        else:
            added = (params.get("ExpressionAttributeValues") or {}).get(":n")
            if isinstance(added, dict):  # serialized already ({"N": "60"})
                added = int(added["N"])
            calls.append((model.name, names.get(params.get("TableName", ""), "?"), added))

    client = aws.table("ws_events").meta.client  # every table's resource shares this client
    client.meta.events.register("before-parameter-build.dynamodb", hook)
    yield calls
    client.meta.events.unregister("before-parameter-build.dynamodb", hook)


def test_a_flush_of_60_audit_events_costs_five_requests_and_each_arrives_as_activity(listeners, dynamodb_calls):
    from chalicelib import audit

    join("admin-b", "admin", user_id="admin-2", role="admin")
    recorded: list[dict[str, Any]] = []

    def handler() -> None:  # 58 buffered events and 2 critical ones (written at once), interleaved
        for n in range(60):
            if n in (10, 40):
                recorded.append(audit.record("settings.update", resource=("setting", f"k{n}")))
            else:
                recorded.append(audit.record("article.status_changed", resource=("article", f"a{n}")))
        dynamodb_calls.clear()  # count the end of the invocation: the audit flush

    _invoke(runtime.Invocation(kind="sqs", request_id="req-60"), handler)

    realtime = [c for c in dynamodb_calls if c[1] != "audit_events"]
    assert realtime == [
        ("UpdateItem", "ws_events", 60),  # one reservation of 60 seqs for the admin room
        ("BatchWriteItem", "ws_events", 25),  # their envelopes, 25 per request
        ("BatchWriteItem", "ws_events", 25),
        ("BatchWriteItem", "ws_events", 10),
        ("Query", "ws_members", None),  # one read of the admin room's members
    ]
    # the last of the flush's requests: 10 events (24 a request before) and their flush manifest
    assert [c for c in dynamodb_calls if c[1] == "audit_events"] == [("TransactWriteItems", "audit_events", 11)]
    for cid in ("admin", "admin-b"):
        frames = listeners.take(cid)
        assert [f["type"] for f in frames] == ["activity"] * 60
        assert [f["seq"] for f in frames] == list(range(1, 61))
        assert [f["data"] for f in frames] == recorded
    assert rooms_heard(listeners, "follower", "author") == {"follower": [], "author": []}
    # resume replays exactly the reserved seqs, in order, byte for byte as sent
    replayed, more = live.event_log().replay("admin", 0, 500)
    assert [seq for seq, _ in replayed] == list(range(1, 61)) and more is False
    assert [json.loads(b)["data"] for _, b in replayed] == recorded


def test_activity_seqs_follow_other_admin_events_without_a_gap(listeners):
    from chalicelib import audit

    emitters.emit_system_alert("info", "before")
    _invoke(
        runtime.Invocation(kind="sqs", request_id="r"),
        lambda: [audit.record("article.status_changed", resource=("article", f"a{n}")) for n in range(3)],
    )
    emitters.emit_system_alert("info", "after")
    frames = listeners.take("admin")
    assert [(f["seq"], f["type"]) for f in frames] == [
        (1, "system.alert"),
        (2, "activity"),
        (3, "activity"),
        (4, "activity"),
        (5, "system.alert"),
    ]


class FlakyBatches:
    """The DynamoDB client, refusing half of each of the first `fail` BatchWriteItem requests as
    UnprocessedItems (moto never does) and checking BatchWriteItem's limit of 25 (moto does not)."""

    def __init__(self, real: Any, fail: int) -> None:
        self._real, self.fail, self.sizes = real, fail, []

    def batch_write_item(self, RequestItems: dict[str, Any]) -> dict[str, Any]:  # noqa: N803 (boto3's name)
        ((name, requests),) = RequestItems.items()
        self.sizes.append(len(requests))
        assert len(requests) <= 25, "BatchWriteItem takes at most 25 requests"
        if len(self.sizes) <= self.fail:
            half = len(requests) // 2
            if half:
                self._real.batch_write_item(RequestItems={name: requests[:half]})
            return {"UnprocessedItems": {name: requests[half:]}}
        return self._real.batch_write_item(RequestItems=RequestItems)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def test_unprocessed_envelopes_are_retried_until_stored_before_anything_is_posted(listeners, monkeypatch):
    from chalicelib import aws
    from chalicelib.realtime import store

    sleeps: list[float] = []
    monkeypatch.setattr(store, "sleep", sleeps.append)
    table = aws.table("ws_events")
    flaky = FlakyBatches(table.meta.client, fail=3)
    monkeypatch.setattr(live, "event_log", lambda: store.EventLog(table, client=flaky))
    audit_events = [{"id": f"e{n}", "action": "article.create"} for n in range(30)]
    events.publish(events.AuditRecorded(tuple(audit_events)))
    assert flaky.sizes[:2] == [25, 13] and len(sleeps) >= 2
    replayed, _ = store.EventLog(table).replay("admin", 0, 500)
    assert [seq for seq, _ in replayed] == list(range(1, 31))
    assert [f["data"]["id"] for f in listeners.take("admin")] == [e["id"] for e in audit_events]


def test_envelopes_that_cannot_be_stored_are_not_posted(listeners, monkeypatch):
    from chalicelib import aws
    from chalicelib.realtime import store

    monkeypatch.setattr(store, "sleep", lambda s: None)
    table = aws.table("ws_events")
    monkeypatch.setattr(live, "event_log", lambda: store.EventLog(table, client=FlakyBatches(table.meta.client, 10**6)))
    with pytest.raises(store.EventsNotStored):
        delivery.emit_many("activity", "admin", [{"id": "e1"}, {"id": "e2"}])
    assert listeners.calls == 0


def test_an_oversized_event_of_a_batch_is_left_out_and_the_others_go(listeners):
    seqs = delivery.emit_many("activity", "admin", [{"id": "e1"}, {"id": "big", "x": "x" * (128 * 1024)}, {"id": "e3"}])
    assert seqs == [1, 2]
    assert [(f["seq"], f["data"]["id"]) for f in listeners.take("admin")] == [(1, "e1"), (2, "e3")]


def test_a_failing_emitter_does_not_break_the_publisher(listeners):
    events.publish(events.Alert("info", "x" * (200 * 1024)))  # refused by the emitter, logged
    assert listeners.calls == 0


def test_analytics_ingestion_sends_at_most_one_update_per_article_every_few_seconds(api, listeners, monkeypatch):
    aid = body_id(api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor"))
    api.token("viewer")
    clock = [time.time()]
    monkeypatch.setattr(timeutil, "now", lambda: clock[0])

    def updates() -> list[dict[str, Any]]:  # the admin room also hears `activity` (audit)
        return [f for f in listeners.take("admin") if f["type"] == "analytics.update"]

    listeners.take("admin")
    for kind in ("view", "view", "click"):
        assert api.post("/api/analytics/events", {"article_id": aid, "type": kind}, as_="viewer").status_code == 202
    assert [f["data"] for f in updates()] == [{"article_id": aid, "counts": {"view": 1, "click": 0, "share": 0}}]
    clock[0] += emitters.ANALYTICS_UPDATE_SECONDS
    api.post("/api/analytics/events", {"article_id": aid, "type": "share"}, as_="viewer")
    assert [f["data"]["counts"] for f in updates()] == [{"view": 2, "click": 1, "share": 1}]


def test_the_throttle_is_per_article(listeners):
    from chalicelib.content import analytics

    for article_id in ("b" * 32, "c" * 32):
        analytics.ingest(analytics.NewEvent(article_id=article_id, type="view"), None)
    assert [f["data"]["article_id"] for f in listeners.take("admin")] == ["b" * 32, "c" * 32]


def test_two_ingestions_racing_for_the_same_update_send_one(listeners):
    from chalicelib.content import analytics

    counter = analytics.counts()
    analytics.events().record(analytics.NewEvent(article_id="d" * 32, type="view"), None)
    _, seen = counter.read("d" * 32)
    due = time.time() + 5
    assert counter.claim("d" * 32, seen, due) is True
    assert counter.claim("d" * 32, seen, due + 5) is False
    # the due time is stored exactly as given, and what `read` reads back claims the next one
    _, stored = counter.read("d" * 32)
    assert float(stored) == due
    assert counter.claim("d" * 32, stored, due + 5) is True


def body_id(response: Any) -> str:
    import json

    return json.loads(response.body)["id"]


def test_a_stored_analytics_report_reaches_admins_as_an_analytics_update(listeners):
    """Defect: ReportStored was published to no subscriber."""
    events.publish(events.ReportStored("daily", "analytics.daily.2026-11-27", {"view": 3, "click": 1}))
    frames = listeners.take("admin")
    assert [(f["type"], f["data"]) for f in frames] == [
        (
            "analytics.update",
            {"report": {"period": "daily", "key": "analytics.daily.2026-11-27", "total": {"view": 3, "click": 1}}},
        )
    ]
    assert listeners.take("follower") == [] and listeners.take("author") == []


def _invoke(inv: runtime.Invocation, fn: Any, *args: Any) -> Any:
    """Run `fn` as app.py's middleware runs a handler (its end flushes the audit log)."""
    import app

    return app.middleware.run(inv, fn, *args)


# --- the members count on the room's counter ----------------------------------------------------------------


def _reads_of_members(calls: list[tuple[str, str, Any]]) -> int:
    return sum(1 for c in calls if c[:2] == ("Query", "ws_members"))


def test_a_room_whose_connections_all_left_is_stored_without_reading_its_members(management, dynamodb_calls):
    join("a", "admin", role="admin", user_id="a")
    join("b", "admin", role="admin", user_id="b")
    live.connections().leave("a", "admin")
    live.connections().leave("a", "admin")  # twice (a retried frame): counted once
    dynamodb_calls.clear()
    emitters.emit_system_alert("info", "one left")
    assert _reads_of_members(dynamodb_calls) == 1
    assert [f["data"]["message"] for f in management.take("b")] == ["one left"]
    live.connections().close("b")
    live.connections().close("b")  # $disconnect after a 410 removed it: counted once
    dynamodb_calls.clear()
    assert emitters.emit_system_alert("info", "nobody") == {"admin": 2}
    assert emitters.emit_activities([{"id": "e1"}]) == [3]
    assert _reads_of_members(dynamodb_calls) == 0
    replayed, _ = live.event_log().replay("admin", 0, 10)
    assert [seq for seq, _ in replayed] == [1, 2, 3]
    join("c", "admin", role="admin", user_id="c")
    emitters.emit_system_alert("info", "back")
    assert [f["data"]["message"] for f in management.take("c")] == ["back"]


def test_a_connection_closed_after_leaving_a_room_leaves_the_others_heard(management):
    join("a", "admin", role="admin", user_id="a")
    join("b", "admin", role="admin", user_id="b")
    conns = live.connections()
    conns._remove_membership("admin", "a")  # a leave racing a close: its first half ran...
    conns.close("a")  # ...and the close still finds "admin" in the record, the membership gone
    emitters.emit_system_alert("info", "still here")
    assert [f["data"]["message"] for f in management.take("b")] == ["still here"]


def test_removing_a_membership_from_before_members_were_counted_leaves_the_count_alone(management):
    from chalicelib import aws

    join("live", "admin", role="admin", user_id="live")
    uncounted = {"room": "admin", "connection_id": "old", "ttl": int(time.time()) + 600, "expiry_day": "x"}
    aws.table("ws_members").put_item(Item=uncounted)
    aws.table("ws_connections").put_item(Item={"connection_id": "old", "rooms": {"admin"}, "ttl": 1, "user_id": "o"})
    live.connections().close("old")  # e.g. its 410: it was never counted in
    emitters.emit_system_alert("info", "still heard")
    assert [f["data"]["message"] for f in management.take("live")] == ["still heard"]


def test_a_counter_from_before_members_were_counted_still_reads_the_members(management):
    from chalicelib import aws

    aws.table("ws_events").put_item(Item={"room": "admin", "seq": 0, "last": 7})
    aws.table("ws_members").put_item(
        Item={
            "room": "admin",
            "connection_id": "old",
            "user_id": "u",
            "ttl": int(time.time()) + 600,
            "expiry_day": "2026-11-29",
            "endpoint": "https://gw/api",
        }
    )
    emitters.emit_system_alert("info", "hello")
    assert [(f["seq"], f["data"]["message"]) for f in management.take("old")] == [(8, "hello")]


def test_a_subscribe_retried_after_a_fault_midway_is_counted_and_heard(management, monkeypatch):
    from chalicelib.realtime import store

    conn = join("c", "user:u1")
    real = store.EventLog.open_room
    faults = iter([RuntimeError("throttled")])

    def flaky(self: Any, room: str, joined: int) -> None:
        fault = next(faults, None)
        if fault is not None:
            raise fault
        real(self, room, joined)

    monkeypatch.setattr(store.EventLog, "open_room", flaky)
    with pytest.raises(RuntimeError):
        live.connections().join(conn, "admin")  # the frame fails; the client subscribes again
    live.connections().join(conn, "admin")
    emitters.emit_system_alert("info", "heard")
    assert [f["data"]["message"] for f in management.take("c")] == ["heard"]


def test_a_resume_from_0_skips_the_expired_envelopes_without_reading_them(aws_mock, monkeypatch):
    from chalicelib import aws
    from chalicelib.realtime import store

    table = aws.table("ws_events")
    log = store.EventLog(table)
    start = 1_800_000_000.0
    monkeypatch.setattr(timeutil, "now", lambda: start)
    log.open_room("admin", 1)
    for n in range(600):  # one a minute for 10 h: the first ~270 expired 25 h later, not yet removed
        monkeypatch.setattr(timeutil, "now", lambda n=n: start + 60 * n)
        first, _ = log.reserve("admin", 1)
        log.append([("admin", first, json.dumps({"n": n}))])
    now = start + store.EVENT_RETENTION_SECONDS + 60 * 270 + 30
    monkeypatch.setattr(timeutil, "now", lambda: now)
    expected = [(int(i["seq"]), i["body"]) for i in _all(table, "admin") if int(i["ttl"]) > now and i["seq"] > 0]
    assert len(expected) == 329
    read: list[int] = []
    real_query = table.query

    def query(**kwargs):
        result = real_query(**kwargs)
        read.append(result["ScannedCount"])
        return result

    monkeypatch.setattr(table, "query", query)
    replayed, more = log.replay("admin", 0, 100)
    assert (replayed, more) == (expected[:100], True)
    assert sum(read) <= 1 + 12 + 101  # the oldest envelope, a search past the expired ones, the live page
    assert log.replay("admin", 400, 500) == ([e for e in expected if e[0] > 400], False)


def _all(table, room):
    from boto3.dynamodb.conditions import Key

    items, kwargs = [], {"KeyConditionExpression": Key("room").eq(room), "ConsistentRead": True}
    while True:
        result = table.query(**kwargs)
        items += result["Items"]
        if "LastEvaluatedKey" not in result:
            return items
        kwargs["ExclusiveStartKey"] = result["LastEvaluatedKey"]


# --- rooms nobody is in: their events wait for the end of the invocation ------------------------------------


def kept(*rooms_: str) -> None:
    """The rooms have a counter and no member: someone joined them and left."""
    join("gone", *rooms_, user_id="gone", role="admin")
    live.connections().close("gone")


def stored(room: str) -> list[tuple[int, str, Any]]:
    """(seq, type, data) of the room's kept events, as `resume` replays them."""
    replayed, _ = live.event_log().replay(room, 0, 500)
    return [(seq, json.loads(body)["type"], json.loads(body)["data"]) for seq, body in replayed]


def _sqs() -> runtime.Invocation:
    return runtime.Invocation(kind="sqs", request_id="job")


def test_a_jobs_events_to_rooms_nobody_is_in_are_stored_at_the_end_in_emit_order_for_two_reads(
    management, dynamodb_calls
):
    # GIVEN an admin and the author joined their rooms once and left; nobody ever followed the article
    kept("admin", "user:author-1")
    dynamodb_calls.clear()
    during: list[Any] = []

    def handler() -> None:  # the worker's events of one article job, then its audit flush's activity
        emitters.emit_job_progress("job-1", "articles", 10, ARTICLE)
        emitters.emit_job_progress("job-1", "articles", 90, ARTICLE)
        emitters.emit_job_finished("completed", "job-1", "articles", 1, "author-1")
        emitters.emit_article_status(ARTICLE, "PUBLISHED", "author-1", "job-1")
        emitters.emit_activities([{"id": "e1"}, {"id": "e2"}])
        counted = len(dynamodb_calls)
        during.extend(stored("admin") + stored("user:author-1"))
        del dynamodb_calls[counted:]  # the test's own reads

    # WHEN they run in one invocation
    _invoke(_sqs(), handler)
    calls = list(dynamodb_calls)
    # THEN nothing was stored while it ran; at its end each room took its seqs at once, in emit order
    assert during == []
    assert [(seq, kind) for seq, kind, _ in stored("admin")] == [
        (1, "job.progress"),
        (2, "job.progress"),
        (3, "job.completed"),
        (4, "article.status"),
        (5, "activity"),
        (6, "activity"),
    ]
    assert [data["progress"] for _, kind, data in stored("admin") if kind == "job.progress"] == [10, 90]
    assert [(seq, kind) for seq, kind, _ in stored("user:author-1")] == [(1, "job.completed"), (2, "article.status")]
    assert stored(f"article:{ARTICLE}") == []
    # AND it cost one read of the rooms' counters per room first met, one reservation per room, one write
    assert [c if c[0] != "BatchGetItem" else c[:2] for c in calls] == [
        ("BatchGetItem", "ws_events"),  # progress 10: the article's and the admin room
        ("BatchGetItem", "ws_events"),  # job.completed: the author's room
        ("UpdateItem", "ws_events", 6),
        ("UpdateItem", "ws_events", 2),
        ("BatchWriteItem", "ws_events", 8),
    ]
    assert management.calls == 0


def test_rooms_nobody_ever_joined_cost_one_read_an_invocation(management, dynamodb_calls):
    def handler() -> None:
        emitters.emit_article_status(ARTICLE, "PROCESSING", "author-1", "job-1")
        emitters.emit_job_progress("job-1", "articles", 10, ARTICLE)
        emitters.emit_activities([{"id": "e1"}])
        emitters.emit_system_alert("info", "nobody hears")

    _invoke(_sqs(), handler)
    assert [c[:2] for c in dynamodb_calls] == [("BatchGetItem", "ws_events")]
    assert stored("admin") == []


def test_a_room_with_a_member_hears_at_once_while_a_room_without_waits_for_the_end(management):
    kept("admin")
    join("author", "user:author-1", user_id="author-1")
    during: dict[str, Any] = {}

    def handler() -> None:
        emitters.emit_job_finished("completed", "job-1", "articles", 1, "author-1")
        during.update(author=[(f["seq"], f["type"]) for f in management.take("author")], admin=stored("admin"))

    _invoke(_sqs(), handler)
    assert during == {"author": [(1, "job.completed")], "admin": []}
    assert [(seq, kind) for seq, kind, _ in stored("admin")] == [(1, "job.completed")]


def completed(n: int = 1) -> None:
    """job.completed to the admin room and the author's, an event to two rooms (read together)."""
    emitters.emit_job_finished("completed", f"job-{n}", "articles", 1, "author-1")


def heard(management: FakeManagement, cid: str) -> list[tuple[int, str]]:
    return [(f["seq"], f["data"].get("job_id") or f["data"].get("message")) for f in management.take(cid)]


def test_a_member_joining_midway_hears_the_waiting_events_at_the_end(management):
    kept("admin", "user:author-1")

    def handler() -> list[Any]:
        completed(1)
        join("late", "admin", user_id="late", role="admin")
        emitters.emit_system_alert("info", "two")  # the room was read less than RECHECK_SECONDS ago
        return heard(management, "late")

    assert _invoke(_sqs(), handler) == []
    assert heard(management, "late") == [(1, "job-1"), (2, "two")]


def test_a_member_joining_a_long_invocation_hears_once_the_room_is_read_again(management, monkeypatch):
    kept("admin", "user:author-1")
    clock = [1000.0]
    monkeypatch.setattr(delivery, "monotonic", lambda: clock[0])

    def handler() -> list[Any]:
        completed(1)
        join("late", "admin", user_id="late", role="admin")
        clock[0] += delivery.RECHECK_SECONDS
        sent = emitters.emit_system_alert("info", "two")  # reads the room again: the waiting event goes first
        return [sent, heard(management, "late")]

    assert _invoke(_sqs(), handler) == [{"admin": 2}, [(1, "job-1"), (2, "two")]]
    assert heard(management, "late") == []


def test_a_failing_handler_still_stores_the_waiting_events(management):
    kept("admin", "user:author-1")
    during: list[Any] = []

    def handler() -> None:
        completed(1)
        during.extend(stored("admin"))
        raise RuntimeError("the handler dies")

    with pytest.raises(RuntimeError, match="the handler dies"):
        _invoke(_sqs(), handler)
    assert during == []
    assert [(seq, data["job_id"]) for seq, _, data in stored("admin")] == [(1, "job-1")]


def test_a_throttled_flush_retries_and_stores_each_event_once(management, monkeypatch, dynamodb_calls):
    from chalicelib import aws
    from chalicelib.realtime import store

    kept("admin", "user:author-1")
    monkeypatch.setattr(store, "sleep", lambda seconds: None)
    table = aws.table("ws_events")
    flaky = FlakyBatches(table.meta.client, fail=2)  # the flush's first two writes half refused
    monkeypatch.setattr(live, "event_log", lambda: store.EventLog(table, client=flaky))
    dynamodb_calls.clear()

    def handler() -> None:
        for n in range(30):
            completed(n)
        join("late", "admin", user_id="late", role="admin")

    _invoke(_sqs(), handler)
    assert [c for c in dynamodb_calls if c[0] == "UpdateItem" and c[2] is not None] == [
        ("UpdateItem", "ws_events", 30),
        ("UpdateItem", "ws_events", 30),
    ]
    assert flaky.sizes == [25, 13, 7, 25, 10]  # 60 envelopes; the first request retried twice
    for room in ("admin", "user:author-1"):
        assert [(seq, data["job_id"]) for seq, _, data in stored(room)] == [(n + 1, f"job-{n}") for n in range(30)]
        assert live.event_log().current([room]) == {room: 30}
    assert heard(management, "late") == [(n + 1, f"job-{n}") for n in range(30)]


def test_outside_an_invocation_whose_end_stores_them_events_are_stored_at_once(management):
    """A guard: only an invocation whose middleware runs the realtime flush keeps events waiting."""
    kept("admin")
    runtime.Middleware().run(_sqs(), emitters.emit_system_alert, "info", "no flush at the end")
    assert [data["message"] for _, _, data in stored("admin")] == ["no flush at the end"]


def test_at_most_waiting_max_events_wait(management, monkeypatch):
    kept("admin", "user:author-1")
    monkeypatch.setattr(delivery, "WAITING_MAX", 4)
    during: list[Any] = []

    def handler() -> None:
        for n in range(3):  # 2 rooms x 3 events: past 4 waiting, all are stored at once
            completed(n)
            during.append([(seq, data["job_id"]) for seq, _, data in stored("admin")])

    _invoke(_sqs(), handler)
    assert during == [[], [], [(1, "job-0"), (2, "job-1"), (3, "job-2")]]
