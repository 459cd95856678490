"""The per-minute job metrics without AWS: the duration histogram, its percentiles' error bound,
and the tally a JobEvent adds to the running invocation."""

from __future__ import annotations

import math
import random

import pytest

from chalicelib import events, runtime, timeutil
from chalicelib.jobs import timeline


def nearest_rank(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[max(1, math.ceil(p * len(ordered))) - 1]


def histogram(values: list[float]) -> dict[int, int]:
    counts: dict[int, int] = {}
    for v in values:
        counts[timeline.bucket(v)] = counts.get(timeline.bucket(v), 0) + 1
    return counts


@pytest.mark.parametrize(
    ("ms", "index"),
    [(0, 0), (0.99, 0), (1, 1), (1.18, 1), (1.19, 2), (2, 5), (1000, 40), (10**9, timeline.BUCKETS - 1)],
)
def test_buckets_are_four_per_doubling_from_one_millisecond(ms, index):
    assert timeline.bucket(ms) == index


def test_a_bucket_s_value_lies_inside_it():
    for i in range(1, timeline.BUCKETS - 1):
        assert timeline.bucket(timeline.bucket_value(i)) == i


def test_the_error_bound_is_an_eighth_of_a_doubling():
    assert pytest.approx(0.0905, abs=1e-4) == timeline.RELATIVE_ERROR


@pytest.mark.parametrize("seed", range(5))
def test_percentiles_from_the_histogram_are_within_the_bound(seed):
    rng = random.Random(seed)
    values = [rng.lognormvariate(6, 1.5) + 1 for _ in range(rng.randint(1, 400))]
    for p in (0.5, 0.95):
        exact = nearest_rank(values, p)
        estimate = timeline.percentile(histogram(values), p)
        assert estimate is not None
        assert abs(estimate - exact) <= exact * timeline.RELATIVE_ERROR


def test_no_durations_no_percentile():
    assert timeline.percentile({}, 0.5) is None


def job(queue: str, started: float, finished: float) -> dict:
    return {
        "id": "j",
        "queue": queue,
        "started_at": timeutil.iso_ms(started),
        "finished_at": timeutil.iso_ms(finished),
        "updated_at": timeutil.iso_ms(finished),
    }


def test_finished_jobs_are_tallied_per_queue_and_minute_on_the_invocation():
    inv = runtime.Invocation(kind="sqs", request_id="r")
    t0 = 1_800_000_000.0  # a minute boundary

    def run() -> dict:
        timeline.on_job_event(events.JobEvent("completed", job("emails", t0 + 1, t0 + 1.25)))
        timeline.on_job_event(events.JobEvent("failed", job("emails", t0 + 2, t0 + 2.003)))
        timeline.on_job_event(events.JobEvent("completed", job("emails", t0 + 59, t0 + 61)))
        timeline.on_job_event(events.JobEvent("progress", job("emails", t0, t0)))
        timeline.on_job_event(events.JobEvent("retrying", job("emails", t0, t0)))
        return timeline.BUFFER.get()

    tally = runtime.Middleware().run(inv, run)
    assert set(tally) == {("emails", int(t0)), ("emails", int(t0) + 60)}
    first = tally[("emails", int(t0))]
    assert (first["completed"], first["failed"]) == (1, 1)
    assert first[f"d{timeline.bucket(250)}"] == 1 and first[f"d{timeline.bucket(3)}"] == 1
    assert tally[("emails", int(t0) + 60)] == {"completed": 1, f"d{timeline.bucket(2000)}": 1}
