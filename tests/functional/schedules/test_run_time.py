"""Schedules changed at run time (`PUT /api/schedules/{name}`) on moto's EventBridge Scheduler:
roles, validation, audit, the deployed schedule, the listing, once per slot across a change."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from chalicelib import aws, timeutil
from chalicelib.schedules import remote
from chalicelib.schedules import service as schedules
from tests.conftest import body
from tests.functional.schedules.test_schedules import FakeJobs, audited

SUMMER = datetime(2026, 7, 1, 6, 0, tzinfo=UTC).timestamp()
WINTER = datetime(2026, 12, 1, 6, 0, tzinfo=UTC).timestamp()


@pytest.fixture
def jobs(monkeypatch) -> FakeJobs:
    fake = FakeJobs()
    monkeypatch.setattr(schedules, "_enqueue", lambda: fake.enqueue)
    return fake


def deployed(name: str) -> dict:
    return aws.client("scheduler").get_schedule(Name=name, GroupName=remote.group_name())


def listed(api, name: str) -> dict:
    items = body(api.get("/api/schedules", as_="admin"))["items"]
    return next(i for i in items if i["name"] == name)


def test_the_listing_carries_zone_and_state_and_the_deployed_schedule_is_the_catalogue(api):
    item = listed(api, "daily-analytics")
    assert (item["timezone"], item["enabled"], item["expression"]) == ("UTC", True, "cron(0 2 * * ? *)")
    found = deployed("daily-analytics")
    assert found["ScheduleExpressionTimezone"] == "UTC"
    assert found["FlexibleTimeWindow"] == {"Mode": "OFF"}
    assert found["Target"]["Arn"].endswith(":function:inkwell-test-daily_analytics")


def test_an_admin_moves_a_schedule_to_nine_in_paris_and_aws_and_the_listing_follow(api, monkeypatch):
    monkeypatch.setattr(timeutil, "now", lambda: SUMMER)
    response = api.put(
        "/api/schedules/daily-analytics",
        {"expression": "cron(0 9 * * ? *)", "timezone": "Europe/Paris"},
        as_="admin",
    )
    assert response.status_code == 200, response.body
    assert body(response)["next_run"] == "2026-07-01T07:00:00Z"  # 09:00 CEST
    found = deployed("daily-analytics")
    assert (found["ScheduleExpression"], found["ScheduleExpressionTimezone"]) == ("cron(0 9 * * ? *)", "Europe/Paris")
    assert found["Target"]["Arn"].endswith(":function:inkwell-test-daily_analytics")  # the target is kept
    monkeypatch.setattr(timeutil, "now", lambda: WINTER)
    assert listed(api, "daily-analytics")["next_run"] == "2026-12-01T08:00:00Z"  # 09:00 CET


def test_disabling_reaches_aws_and_a_firing_that_raced_it_enqueues_nothing(api, jobs):
    response = api.put("/api/schedules/session-cleanup", {"enabled": False}, as_="admin")
    assert response.status_code == 200, response.body
    assert (body(response)["enabled"], body(response)["next_run"]) == (False, None)
    assert deployed("session-cleanup")["State"] == "DISABLED"
    assert schedules.fire("session-cleanup", "2026-11-28T10:00:00Z", scheduled=True) is None
    assert jobs.enqueued == []
    api.put("/api/schedules/session-cleanup", {"enabled": True}, as_="admin")
    assert schedules.fire("session-cleanup", "2026-11-28T10:00:00Z", scheduled=True) is not None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"expression": "cron(0 9 * * *)"}, "expression"),
        ({"expression": "every day"}, "expression"),
        ({"timezone": "Mars/Olympus"}, "timezone"),
        ({"timezone": "../../etc/passwd"}, "timezone"),
        ({"enabled": "yes"}, "enabled"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_a_bad_change_is_a_400_naming_the_field_and_changes_nothing(api, change, field):
    response = api.put("/api/schedules/daily-analytics", change, as_="admin")
    assert response.status_code == 400, response.body
    assert field in response.body.decode()
    assert deployed("daily-analytics")["ScheduleExpression"] == "cron(0 2 * * ? *)"
    assert audited(api, "schedule.update") == []


@pytest.mark.parametrize("role", ["editor", "viewer"])
def test_only_an_admin_changes_a_schedule(api, role):
    assert api.put("/api/schedules/daily-analytics", {"enabled": False}, as_=role).status_code == 403
    assert api.put("/api/schedules/daily-analytics", {"enabled": False}).status_code == 401
    assert deployed("daily-analytics")["State"] == "ENABLED"


def test_an_unknown_schedule_is_a_404(api):
    assert api.put("/api/schedules/nope", {"enabled": False}, as_="admin").status_code in (400, 404)


def test_a_change_is_audited_with_what_changed_and_who(api):
    api.put("/api/schedules/weekly-report", {"timezone": "America/New_York"}, as_="admin")
    [event] = audited(api, "schedule.update")
    assert event["actor"]["user_id"] == api.user("admin")["id"]
    assert (event["resource"]["type"], event["resource"]["id"]) == ("schedule", "weekly-report")
    assert event["details"] == {"timezone": {"from": "UTC", "to": "America/New_York"}}


def test_scheduler_down_is_a_503_and_nothing_is_stored(api, monkeypatch):
    def down(schedule):
        raise ConnectionError("no route")

    monkeypatch.setattr(remote, "update", down)
    response = api.put("/api/schedules/daily-analytics", {"enabled": False}, as_="admin")
    assert response.status_code == 503
    assert listed(api, "daily-analytics")["enabled"] is True
    assert audited(api, "schedule.update") == []


def test_once_per_slot_holds_across_a_change(api, jobs):
    # 09:00 Paris fires for 07:00Z; the admin moves it to UTC; Scheduler then delivers the
    # 07:00Z firing again (at least once): its slot is its scheduled time, not the new expression's
    api.put(
        "/api/schedules/daily-analytics", {"expression": "cron(0 9 * * ? *)", "timezone": "Europe/Paris"}, as_="admin"
    )
    first = schedules.fire("daily-analytics", "2026-07-01T07:00:00Z", scheduled=True)
    api.put("/api/schedules/daily-analytics", {"timezone": "UTC"}, as_="admin")
    again = schedules.fire("daily-analytics", "2026-07-01T07:00:00Z", scheduled=True)
    assert first is not None and again is not None and again["id"] == first["id"]
    later = schedules.fire("daily-analytics", "2026-07-01T09:00:00Z", scheduled=True)
    assert later is not None and later["id"] != first["id"]
    assert len(jobs.enqueued) == 2
    # an event without Scheduler's scheduled time is placed by the current expression and zone
    placed = schedules.fire("daily-analytics", "2026-07-01T09:00:41Z")
    assert placed is not None and placed["id"] == later["id"]


def test_the_lambda_takes_scheduler_s_input_and_its_scheduled_time_is_the_slot(client, jobs):
    text = remote.fire_input("session-cleanup")
    for placeholder, value in (
        ("<aws.scheduler.scheduled-time>", "2026-11-28T10:00:00Z"),
        ("<aws.scheduler.execution-id>", "e1"),
        ("<aws.scheduler.schedule-arn>", "arn:aws:scheduler:us-east-1:123456789012:schedule/inkwell-test/x"),
    ):
        text = text.replace(placeholder, value)
    for _ in range(2):  # delivered twice
        client.lambda_.invoke("session_cleanup", json.loads(text))
    [job] = jobs.enqueued
    assert job["payload"]["slot"] == "2026-11-28T10:00:00Z"
