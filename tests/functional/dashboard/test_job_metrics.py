"""Per-minute job metrics on moto: jobs of known durations run through app.py's SQS handler (its
middleware flushes the tally), and `GET /api/queues/{queue}/metrics` answers their points; one
UpdateItem per queue-minute per invocation; a failed write is late, not lost; 4xx cases."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib import aws, config, jobs, timeutil
from chalicelib.jobs import timeline
from chalicelib.jobs.errors import PermanentError
from tests.conftest import body
from tests.functional.jobs.test_handlers import long_lambda  # noqa: F401 (a fixture)

pytestmark = pytest.mark.usefixtures("long_lambda")


def timed(clock: Any) -> Any:
    """A processor that takes `payload.ms` of the test's clock, then fails if asked to."""

    def run(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
        clock.advance(job["payload"]["ms"] / 1000)
        if job["payload"].get("fail"):
            raise PermanentError("asked to fail")
        return {}

    return run


@pytest.fixture
def emails(register: Any, clock: Any) -> Any:
    register("emails", "send", timed(clock))
    return clock


@pytest.fixture
def metric_writes() -> Iterator[list[dict[str, Any]]]:
    """The UpdateItem requests on the job_metrics table (a botocore hook on this thread's client)."""
    writes: list[dict[str, Any]] = []
    name = config.get().resource_name(timeline.TABLE)

    def hook(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == name:
            writes.append(params)

    events = aws.table(timeline.TABLE).meta.client.meta.events
    events.register("before-parameter-build.dynamodb.UpdateItem", hook)
    yield writes
    events.unregister("before-parameter-build.dynamodb.UpdateItem", hook)


def run_batch(client: Any, poller: Any, payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """Enqueue one email job per payload and deliver them as one invocation of `jobs_emails`."""
    for payload in payloads:
        jobs.enqueue("emails", "send", payload)
    messages = poller.receive("emails")
    assert len(messages) == len(payloads)
    response = client.lambda_.invoke("jobs_emails", poller.event(messages, "emails")).payload
    failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
    for m in messages:
        if m["MessageId"] not in failed:
            poller.sqs.delete_message(QueueUrl=poller.url("emails"), ReceiptHandle=m["ReceiptHandle"])
    return response


def at_minute(clock: Any, offset: float = 1.0) -> int:
    """Move the clock to `offset` s into the next minute; that minute's epoch second."""
    minute = (int(clock.t) // 60 + 1) * 60
    clock.t = minute + offset
    return minute


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def assert_within_bound(estimate: float, exact: float) -> None:
    # the histogram's bound, plus 1 ms: job times are stored to the millisecond
    assert abs(estimate - exact) <= exact * timeline.RELATIVE_ERROR + 1, (estimate, exact)


def metrics(api: Any, query: str = "", queue: str = "emails") -> Any:
    return api.get(f"/api/queues/{queue}/metrics{query}", as_="admin")


def test_jobs_over_two_minutes_become_two_points_with_counts_and_percentiles(
    api, client, poller, emails, metric_writes
):
    first_ms = [50, 70, 120, 180, 260, 400, 650, 900, 1500, 3000]
    second_ms, failed_ms = [200, 450, 800], [60, 2500]
    first = at_minute(emails)
    run_batch(client, poller, [{"ms": ms} for ms in first_ms])
    assert len(metric_writes) == 1  # ten jobs, one minute: one write
    second = at_minute(emails)
    run_batch(client, poller, [{"ms": ms} for ms in second_ms] + [{"ms": ms, "fail": True} for ms in failed_ms])
    assert len(metric_writes) == 2

    response = metrics(api)  # default: the last hour
    assert response.status_code == 200, response.body
    answer = body(response)
    assert answer["queue"] == "emails" and answer["interval_seconds"] == 60
    points = answer["points"]
    assert [(p["ts"], p["completed"], p["failed"]) for p in points] == [
        (timeutil.iso(first), 10, 0),
        (timeutil.iso(second), 3, 2),
    ]
    for point, durations in zip(points, (first_ms, second_ms + failed_ms), strict=True):
        assert_within_bound(point["duration_p50_ms"], nearest_rank(durations, 0.5))
        assert_within_bound(point["duration_p95_ms"], nearest_rank(durations, 0.95))


def test_an_invocation_writes_once_per_minute_its_jobs_finished_in(api, client, poller, emails, metric_writes):
    minute = at_minute(emails, offset=59.85)  # three 100 ms jobs: one ends in this minute, two in the next
    run_batch(client, poller, [{"ms": 100}] * 3)
    assert sorted(int(w["Key"]["minute"]["N"]) for w in metric_writes) == [minute, minute + 60]
    points = body(metrics(api))["points"]
    assert [(p["ts"], p["completed"]) for p in points] == [(timeutil.iso(minute), 1), (timeutil.iso(minute + 60), 2)]


def test_an_invocation_without_finished_jobs_writes_nothing(api, client, poller, emails, metric_writes):
    assert metrics(api).status_code == 200  # a REST invocation: its flush has nothing to write
    assert metric_writes == []
    assert body(metrics(api))["points"] == []


def test_a_failed_write_is_added_to_the_next_flush(api, client, poller, emails):
    events = aws.table(timeline.TABLE).meta.client.meta.events
    refusals = []

    def throttled(params: dict[str, Any], **_: Any) -> None:
        if params.get("TableName") == config.get().resource_name(timeline.TABLE) and not refusals:
            refusals.append(1)
            raise RuntimeError("ProvisionedThroughputExceededException, after botocore's retries")

    events.register("before-parameter-build.dynamodb.UpdateItem", throttled)
    try:
        first = at_minute(emails)
        run_batch(client, poller, [{"ms": 100}] * 2)
        assert refusals and timeline.points("emails", first, first + 60) == []  # kept in the container ...
    finally:
        events.unregister("before-parameter-build.dynamodb.UpdateItem", throttled)
    second = at_minute(emails)
    run_batch(client, poller, [{"ms": 100}])  # ... and written by the next invocation's flush
    points = body(metrics(api))["points"]
    assert [(p["ts"], p["completed"]) for p in points] == [(timeutil.iso(first), 2), (timeutil.iso(second), 1)]


def test_a_redelivered_completed_job_is_not_counted_again(api, client, poller, emails):
    minute = at_minute(emails)
    jobs.enqueue("emails", "send", {"ms": 100})
    messages = poller.receive("emails")
    event = poller.event(messages, "emails")
    client.lambda_.invoke("jobs_emails", event)
    client.lambda_.invoke("jobs_emails", event)  # SQS delivers the same message twice
    points = body(metrics(api))["points"]
    assert [(p["ts"], p["completed"]) for p in points] == [(timeutil.iso(minute), 1)]


def test_since_and_until_select_the_minutes(api, client, poller, emails):
    first = at_minute(emails)
    run_batch(client, poller, [{"ms": 100}])
    second = at_minute(emails)
    run_batch(client, poller, [{"ms": 100}])
    only_second = metrics(api, f"?since={timeutil.iso(first + 30)}&until={timeutil.iso(second + 59)}")
    assert [p["ts"] for p in body(only_second)["points"]] == [timeutil.iso(second)]
    only_first = metrics(api, f"?since={timeutil.iso(first - 3600)}&until={timeutil.iso(first)}")
    assert [p["ts"] for p in body(only_first)["points"]] == [timeutil.iso(first)]


def test_points_across_midnight_come_from_both_days(api, client, poller, emails):
    emails.t = (int(emails.t) // 86400 + 1) * 86400 - 60 + 1  # 23:59:01 UTC
    run_batch(client, poller, [{"ms": 100}])
    at_minute(emails)
    run_batch(client, poller, [{"ms": 100}])
    points = body(metrics(api))["points"]
    assert [p["ts"][11:16] for p in points] == ["23:59", "00:00"]


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?since=yesterday", "since"),
        ("?until=2026-13-01T00:00:00Z", "until"),
        ("?since=2026-11-28T02:00:00Z&until=2026-11-28T01:00:00Z", "since"),
        ("?since=2026-11-25T00:00:00Z&until=2026-11-28T00:00:00Z", "since"),  # over the 48 h kept
    ],
)
def test_bad_times_are_a_400_naming_the_parameter(api, query, field):
    response = metrics(api, query)
    assert response.status_code == 400, response.body
    assert [e["field"] for e in body(response)["Errors"]] == [field]


@pytest.mark.parametrize("queue", ["audit", "nope", "emails-dlq"])
def test_an_unknown_queue_is_a_404(api, queue):
    assert metrics(api, queue=queue).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        "?since=2026-11-28T02:00:00.5Z&until=2026-11-28T02:00:00.5Z",
        "?until=0001-01-01T00:00:00Z",  # the default since would be before year 1
    ],
)
def test_a_range_without_data_has_no_points(api, query):
    response = metrics(api, query)
    assert response.status_code == 200, response.body
    assert body(response)["points"] == []


def test_a_range_in_the_far_future_has_no_points(api):
    response = metrics(api, "?since=9999-12-31T22:00:00Z&until=9999-12-31T23:59:59Z")
    assert response.status_code == 200, response.body
    assert body(response)["points"] == []


def test_the_whole_retention_is_one_range(api):
    response = metrics(api, "?since=2026-11-26T00:00:00Z&until=2026-11-28T00:00:00Z")
    assert response.status_code == 200, response.body
