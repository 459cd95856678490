"""Scheduled runs through the real job machinery on moto: the deployed schedule handlers, the
jobs table and SQS, and the shared worker driven with SQS-shaped events."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import catalog, jobs
from chalicelib.jobs import records
from chalicelib.schedules import service as schedules
from tests.functional.schedules.conftest import cw_event


@pytest.fixture
def handlers(aws_mock):
    import app as app_module

    return app_module


def queued(queue: str) -> list[dict[str, Any]]:
    return [job for state in records.STATES for job in jobs.list_page(queue, state, {})["items"]]


def test_a_duplicated_scheduled_event_enqueues_exactly_one_job(handlers, poller):
    for _ in range(3):
        handlers.daily_analytics(cw_event("2026-11-28T02:00:00Z"), None)
    [job] = queued("analytics")
    assert job["payload"]["date"] == "2026-11-27"
    assert len(poller.receive("analytics")) == 1


def test_a_late_event_for_an_old_slot_enqueues_one_job_for_that_slot(handlers, poller):
    handlers.session_cleanup(cw_event("2026-11-28T10:00:00Z"), None)
    handlers.session_cleanup(cw_event("2026-11-28T09:00:00Z"), None)  # an hour late
    handlers.session_cleanup(cw_event("2026-11-28T09:00:00Z"), None)
    slots = sorted(job["payload"]["slot"] for job in queued("cleanup"))
    assert slots == ["2026-11-28T09:00:00Z", "2026-11-28T10:00:00Z"]
    assert len(poller.receive("cleanup")) == 2


def test_a_scheduled_jobs_outcome_becomes_the_schedules_last_status(handlers, poller, register):
    register("cleanup", "sessions", lambda job, ctx: {"removed": 3})
    handlers.session_cleanup(cw_event("2026-11-28T10:00:00Z"), None)
    assert schedules.runs().get("session-cleanup")["last_status"] == "waiting"
    poller.drain("cleanup")
    state = schedules.runs().get("session-cleanup")
    assert state["last_status"] == "completed"
    assert "lease_job" not in state


def test_a_cancelled_scheduled_job_leaves_its_schedule_cancelled(handlers, poller, register):
    ran: list[str] = []
    register("cleanup", "sessions", lambda job, ctx: ran.append(job["id"]) or {})
    handlers.session_cleanup(cw_event("2026-11-28T10:00:00Z"), None)
    [job] = queued("cleanup")
    jobs.cancel(job["id"])
    assert schedules.runs().get("session-cleanup")["last_status"] == "cancelled"
    poller.drain("cleanup")
    assert ran == [] and schedules.runs().get("session-cleanup")["last_status"] == "cancelled"


def test_a_run_does_not_overlap_the_previous_run_of_its_schedule(handlers, poller, register, clock, monkeypatch):
    ran: list[str] = []
    register("cleanup", "sessions", lambda job, ctx: ran.append(job["payload"]["slot"]) or {})
    monkeypatch.setattr(schedules, "sleep", clock.advance)
    previous = handlers.session_cleanup(cw_event("2026-11-28T09:00:00Z"), None)
    held = [j for j in queued("cleanup") if j["payload"]["slot"] == "2026-11-28T09:00:00Z"][0]
    assert previous is None  # the handler only enqueues
    # GIVEN the 09:00 run is active (its worker holds the lease) and 10:00 fires
    assert schedules.runs().acquire("session-cleanup", held["id"], clock.now(), 300) is None
    poller.sqs.purge_queue(QueueUrl=poller.url("cleanup"))
    handlers.session_cleanup(cw_event("2026-11-28T10:00:00Z"), None)
    # WHEN the worker gets the 10:00 job, THEN it waits, and retries later instead of running
    response = poller.run_once("cleanup")
    assert response is not None and len(response["batchItemFailures"]) == 1
    assert ran == []
    current = schedules.runs().get("session-cleanup")
    assert current["last_status"] == "delayed"
    [job] = [j for j in queued("cleanup") if j["payload"]["slot"] == "2026-11-28T10:00:00Z"]
    assert job["state"] == "delayed"
    assert job["error"]["kind"] == "schedule_busy"
    # WHEN the 09:00 run ends, THEN the 10:00 one runs
    schedules.runs().release("session-cleanup", held["id"])
    poller.drain("cleanup", step=5)
    assert ran == ["2026-11-28T10:00:00Z"]
    assert schedules.runs().get("session-cleanup")["last_status"] == "completed"


def test_every_schedules_job_type_is_one_its_queue_accepts():
    for schedule in catalog.SCHEDULES.values():
        assert schedule.job_type in catalog.queue(schedule.queue).job_types


def test_the_orphan_cleanup_schedule_enqueues_the_orphans_job_and_it_does_its_work(handlers, poller, clock, api):
    from chalicelib import aws, timeutil
    from tests.conftest import body

    api.token("admin")
    # GIVEN an article and a deleted one, each with analytics events and a finished job,
    article = body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))["id"]
    gone = "f" * 32
    today = timeutil.day(clock.t)
    with aws.table("analytics_events").batch_writer() as writer:
        for i, article_id in enumerate([article, gone, gone]):
            writer.put_item(Item={"day": today, "sk": f"{today}T10:00:00.000Z#{i}", "article_id": article_id})
    kept, orphan = (jobs.enqueue("articles", "archive", {"article_id": a}) for a in (article, gone))
    poller.drain("articles")
    # AND a WebSocket connection record past its TTL
    aws.table("ws_connections").put_item(
        Item={"connection_id": "old", "user_id": "u", **timeutil.ttl_fields(clock.t - 60)}
    )
    # WHEN the weekly schedule fires
    handlers.orphan_cleanup(cw_event("2026-11-29T07:00:00Z"), None)
    [job] = queued("cleanup")
    assert (job["type"], job["payload"]["schedule"], job["payload"]["slot"]) == (
        "orphans",
        "orphan-cleanup",
        "2026-11-29T07:00:00Z",
    )
    poller.drain("cleanup")
    # THEN the job removed what belonged to the deleted article, and the expired connection
    done = jobs.get(job["id"])
    assert done["state"] == "completed", done["error"]
    assert (done["result"]["jobs"], done["result"]["analytics_events"]) == (1, 2)
    assert jobs.get(orphan["id"]) is None and jobs.get(kept["id"]) is not None
    remaining = aws.table("analytics_events").query(
        KeyConditionExpression="#d = :d",
        ExpressionAttributeNames={"#d": "day"},
        ExpressionAttributeValues={":d": today},
    )["Items"]
    assert [e["article_id"] for e in remaining] == [article]
    assert "Item" not in aws.table("ws_connections").get_item(Key={"connection_id": "old"})
    assert schedules.runs().get("orphan-cleanup")["last_status"] == "completed"
