"""Flow control on moto: each queue's maximum concurrency (catalogue, mapping, local stack), and
`PUT /api/queues/{queue}/limits` with what stats show of it."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import aws, catalog, config
from chalicelib.jobs import ratelimit
from tests.conftest import body


def mapping(queue: str) -> dict[str, Any]:
    found = aws.client("lambda").list_event_source_mappings(FunctionName=config.function_name(f"jobs_{queue}"))
    return found["EventSourceMappings"][0]


def test_the_local_stacks_mappings_carry_and_obey_the_catalogues_maximum_concurrency(consumers):
    for queue in catalog.job_queues():
        assert mapping(queue)["ScalingConfig"] == {"MaximumConcurrency": catalog.queue(queue).concurrency}
        poller = consumers.pollers[queue]
        poller.mapping_state()
        assert poller.concurrency == catalog.queue(queue).concurrency


@pytest.fixture(autouse=True)
def _fresh_limits() -> Iterator[None]:
    ratelimit.forget()
    yield
    ratelimit.forget()


def stats_of(api: Any, queue: str) -> dict[str, Any]:
    response = api.get("/api/queues/stats", as_="admin")
    assert response.status_code == 200, response.body
    return body(response)["queues"][queue]


def test_stats_show_each_queues_concurrency_and_no_rate_limit_at_first(api, consumers):
    for queue in catalog.job_queues():
        numbers = stats_of(api, queue)
        assert (numbers["concurrency"], numbers["rate_limit"]) == (catalog.queue(queue).concurrency, None)


def test_put_limits_sets_the_mappings_concurrency_and_the_rate_limit_and_is_audited(api, consumers):
    api.token("admin")  # before the pollers move the clock
    # WHEN an admin sets both limits of the articles queue
    limits = {"concurrency": 20, "rate_limit": {"max": 30, "duration_seconds": 60}}
    response = api.put("/api/queues/articles/limits", limits, as_="admin")
    # THEN the answer, the mapping, the local stack's poller, the worker's limit and stats agree
    assert (response.status_code, body(response)) == (200, {"queue": "articles", **limits})
    assert mapping("articles")["ScalingConfig"] == {"MaximumConcurrency": 20}
    consumers.clock.advance(1.1)
    consumers.pollers["articles"].mapping_state()
    assert consumers.pollers["articles"].concurrency == 20
    assert ratelimit.limit_of("articles") == ratelimit.RateLimit(30, 60)
    numbers = stats_of(api, "articles")
    assert (numbers["concurrency"], numbers["rate_limit"]) == (20, {"max": 30, "duration_seconds": 60})
    assert stats_of(api, "emails")["rate_limit"] is None
    # AND the change is in the audit trail
    (event,) = body(api.get("/api/audit?action=queue.limits", as_="admin"))["items"]
    assert event["actor"]["user_id"] == api.user("admin")["id"]
    assert (event["resource"]["type"], event["resource"]["id"]) == ("queue", "articles")
    assert event["details"] == limits
    # WHEN only the rate limit is removed (null), the concurrency stays
    response = api.put("/api/queues/articles/limits", {"rate_limit": None}, as_="admin")
    assert body(response) == {"queue": "articles", "concurrency": 20, "rate_limit": None}
    assert ratelimit.limit_of("articles") is None
    # AND an empty body changes nothing and answers the limits in force
    response = api.put("/api/queues/articles/limits", {"rate_limit": {"max": 2, "duration_seconds": 0.5}}, as_="admin")
    response = api.put("/api/queues/articles/limits", {}, as_="admin")
    assert body(response) == {"queue": "articles", "concurrency": 20, "rate_limit": {"max": 2, "duration_seconds": 0.5}}


def test_a_queue_without_a_mapping_refuses_a_concurrency_with_409_and_changes_nothing(api):
    response = api.put(
        "/api/queues/emails/limits", {"concurrency": 3, "rate_limit": {"max": 1, "duration_seconds": 1}}, as_="admin"
    )
    assert response.status_code == 409, response.body
    assert "event source mapping" in body(response)["Message"]
    assert ratelimit.settings().get("emails") is None


@pytest.mark.parametrize(
    ("limits", "field"),
    [
        ({"concurrency": 1}, "concurrency"),
        ({"concurrency": 1001}, "concurrency"),
        ({"concurrency": None}, "concurrency"),
        ({"concurrency": "5"}, "concurrency"),
        ({"concurrency": 5.5}, "concurrency"),
        ({"rate_limit": {"max": 0, "duration_seconds": 1}}, "rate_limit.max"),
        ({"rate_limit": {"max": True, "duration_seconds": 1}}, "rate_limit.max"),
        ({"rate_limit": {"max": 1, "duration_seconds": 0}}, "rate_limit.duration_seconds"),
        ({"rate_limit": {"max": 1, "duration_seconds": "1"}}, "rate_limit.duration_seconds"),
        ({"rate_limit": {"max": 1}}, "rate_limit.duration_seconds"),
        ({"rate_limit": {"max": 1, "duration_seconds": 1, "burst": 2}}, "rate_limit.burst"),
        ({"rate_limit": {"max": 1000, "duration_seconds": 1}}, "rate_limit"),  # above the documented 500/s
        ({"rate_limit": 5}, "rate_limit"),
    ],
)
def test_bad_limits_are_400_naming_the_field(api, limits, field):
    response = api.put("/api/queues/articles/limits", limits, as_="admin")
    assert response.status_code == 400, response.body
    assert field in [e["field"] for e in body(response)["Errors"]], body(response)


def test_the_audit_queue_and_unknown_queues_have_no_limits(api):
    for queue in ("audit", "nope"):
        assert api.put(f"/api/queues/{queue}/limits", {}, as_="admin").status_code == 404


def test_the_page_shows_each_queues_limits_and_can_change_them():
    from chalicelib.dashboard import page

    script = (page.STATIC / "dashboard.js").read_text()
    assert "s.concurrency" in script and "s.rate_limit" in script
    assert 'api("PUT", `/api/queues/${queue}/limits`' in script
