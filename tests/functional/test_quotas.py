"""Per-user quotas on what a user can create without bound (WebSocket tickets, analytics events,
delayed jobs): past a quota, 429 with `Retry-After` and the error shape naming the quota."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import config, timeutil
from tests.conftest import body

NOW = 1_900_004_400.0  # the start of a minute and of an hour


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [NOW]
    monkeypatch.setattr(timeutil, "now", lambda: now[0])
    return now


def refused(response: Any, quota: str) -> int:
    """The Retry-After of a 429 naming `quota`."""
    assert response.status_code == 429, response.body
    answer = body(response)
    assert answer["Code"] == "TooManyRequestsError" and quota in answer["Message"]
    assert answer["Errors"] == [{"field": "quota", "message": quota}]
    return int(response.headers["Retry-After"])


def test_websocket_tickets_a_minute(api, clock, monkeypatch):
    monkeypatch.setenv(config.QUOTA_TICKETS, "3")
    clock[0] += 20
    for _ in range(3):
        assert api.post("/api/realtime/ticket", as_="viewer").status_code == 200
    assert refused(api.post("/api/realtime/ticket", as_="viewer"), "tickets_per_minute") == 40
    assert api.post("/api/realtime/ticket", as_="editor").status_code == 200  # per user
    clock[0] += 40  # the next minute
    assert api.post("/api/realtime/ticket", as_="viewer").status_code == 200


def test_analytics_events_a_minute_and_an_hour(api, clock, monkeypatch):
    monkeypatch.setenv(config.QUOTA_EVENTS_MINUTE, "2")
    monkeypatch.setenv(config.QUOTA_EVENTS_HOUR, "3")
    article = body(api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor"))["id"]
    event = {"article_id": article, "type": "view"}
    for _ in range(2):
        assert api.post("/api/analytics/events", event, as_="viewer").status_code == 202
    assert refused(api.post("/api/analytics/events", event, as_="viewer"), "events_per_minute") == 60
    clock[0] += 60
    assert api.post("/api/analytics/events", event, as_="viewer").status_code == 202
    assert refused(api.post("/api/analytics/events", event, as_="viewer"), "events_per_hour") == 3600 - 60


def test_delayed_jobs_waiting_at_once(api, clock, monkeypatch):
    monkeypatch.setenv(config.QUOTA_DELAYED_JOBS, "2")
    articles = [body(api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor"))["id"] for _ in range(4)]
    delayed = {"delay_seconds": 3600}
    jobs = [body(api.post(f"/api/articles/{a}/generate", delayed, as_="editor"))["job_id"] for a in articles[:2]]
    refused(api.post(f"/api/articles/{articles[2]}/generate", delayed, as_="editor"), "delayed_jobs")
    assert body(api.get(f"/api/articles/{articles[2]}", as_="editor"))["status"] == "DRAFT"  # left as it was
    assert api.post(f"/api/articles/{articles[3]}/generate", as_="editor").status_code == 202  # not delayed: no quota
    # a delayed job that stops waiting frees its place
    assert api.post(f"/api/jobs/{jobs[0]}/cancel", as_="admin").status_code == 200
    assert api.post(f"/api/articles/{articles[2]}/generate", delayed, as_="editor").status_code == 202
