"""Pure rules of the job machinery: backoff, claim outcomes, the public shape, the job context."""

from __future__ import annotations

import pytest

from chalicelib.jobs import backoff, errors, records
from chalicelib.jobs.processor import JobContext


@pytest.mark.parametrize(("count", "expected"), [(1, 2), (2, 4), (3, 8), (4, 16)])
def test_backoff_doubles_from_two_seconds_without_jitter(count, expected):
    assert backoff.delay(count, 2.0, rng=lambda: 0.0) == expected


@pytest.mark.parametrize("rng", [0.0, 0.25, 0.5, 0.75, 0.999])
def test_backoff_gaps_always_grow_whatever_the_jitter(rng):
    low = [backoff.delay(n, 2.0, rng=lambda: 0.0) for n in (1, 2, 3)]
    high = [backoff.delay(n, 2.0, rng=lambda: 0.999) for n in (1, 2, 3)]
    assert all(high[i] + 1 < low[i + 1] for i in range(2))
    assert backoff.delay(1, 2.0, rng=lambda: rng) == 2


def test_backoff_jitter_spreads_delays():
    values = {backoff.delay(3, 2.0, rng=lambda r=r: r / 10) for r in range(10)}
    assert len(values) > 1
    assert min(values) == 8 and max(values) == 10


def test_backoff_is_capped_and_positive():
    assert backoff.delay(40, 2.0) == backoff.MAX_DELAY
    assert backoff.delay(0, 0.1, rng=lambda: 0.0) == 1


NOW = 1000.0


@pytest.mark.parametrize(
    ("old", "run", "expected"),
    [
        (None, 1, records.MISSING),
        ({"state": "waiting", "run": 2}, 1, records.STALE),
        ({"state": "completed", "run": 1}, 1, records.DONE),
        ({"state": "failed", "run": 1}, 1, records.DEAD),
        ({"state": "active", "run": 1, "lease_until": NOW + 10}, 1, records.BUSY),
        ({"state": "active", "run": 1, "lease_until": NOW - 1}, 1, records.CLAIMED),
        ({"state": "waiting", "run": 1}, 1, records.CLAIMED),
        ({"state": "delayed"}, 1, records.CLAIMED),
    ],
)
def test_claim_outcomes(old, run, expected):
    assert records.claim_outcome(old, run, NOW) == expected


def test_public_shape_hides_internals():
    job = records.public(
        {"id": "a", "queue": "q", "type": "t", "state": "active", "attempts": 1, "lease_owner": "x", "run": 2, "ttl": 5}
    )
    assert set(job) == set(records.PUBLIC_FIELDS)
    assert job["payload"] == {}
    assert job["max_attempts"] == 0


def test_errors_are_described_by_kind():
    assert errors.describe(errors.PermanentError("bad")) == {"message": "bad", "kind": "permanent"}
    assert errors.describe(errors.PermanentError("bad", kind="webhook_rejected"))["kind"] == "webhook_rejected"
    assert errors.describe(KeyError("k")) == {"message": "KeyError: 'k'", "kind": "error"}
    assert errors.is_permanent(errors.UnknownJobType("x"))
    assert not errors.is_permanent(errors.DeadlineExceeded("x"))


def test_job_context_reports_only_rising_progress_and_guards_the_deadline():
    reported = []
    left = [20.0]
    ctx = JobContext(
        job={"progress": 0}, attempt=1, final_attempt=False, report_progress=reported.append, remaining=lambda: left[0]
    )
    for pct in (10, 10, 5, 50, 150):
        ctx.progress(pct)
    assert reported == [10, 50, 100]
    assert ctx.time_left() == 15.0
    ctx.check_deadline(needed=10)
    left[0] = 5.0
    with pytest.raises(errors.DeadlineExceeded):
        ctx.check_deadline()
