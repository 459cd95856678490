"""The issue's "done when": "run now" on daily-analytics produces yesterday's report."""

from __future__ import annotations

from chalicelib import timeutil
from chalicelib.content import analytics
from tests.conftest import body


def test_run_now_on_daily_analytics_produces_yesterdays_report(api, poller, clock):
    # GIVEN two views and a share recorded yesterday, and a view today
    admin_token = api.token("admin")
    article = body(api.post("/api/articles", {"title": "t", "topic": "t"}, as_="editor"))
    today = clock.t
    clock.t = today - 86400
    for kind in ("view", "view", "share"):
        analytics.events().record(analytics.NewEvent(article_id=article["id"], type=kind), None)
    yesterday = timeutil.day()
    clock.t = today
    analytics.events().record(analytics.NewEvent(article_id=article["id"], type="view"), None)
    assert api.get(f"/api/analytics/reports/daily?date={yesterday}", token=admin_token).status_code == 404

    # WHEN an admin runs the schedule now and the analytics queue's Lambda runs the job
    response = api.post("/api/schedules/daily-analytics/run", token=admin_token)
    assert response.status_code == 202
    poller.drain("analytics")

    # THEN yesterday's report exists and counts yesterday's events only
    report = api.get(f"/api/analytics/reports/daily?date={yesterday}", token=admin_token)
    assert report.status_code == 200
    data = body(report)
    assert data["date"] == yesterday
    assert (data["total"]["view"], data["total"]["share"], data["total"]["events"]) == (2, 1, 3)
