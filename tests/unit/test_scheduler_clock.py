"""The local EventBridge emulator's clock: it may start at any time and run faster than real time."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from local.scheduler import fast_clock


def test_a_fast_clock_starts_where_it_is_told_and_runs_speed_times_faster():
    real = [1000.0]
    clock = fast_clock("2026-11-28T01:59:57Z", 60, real=lambda: real[0])
    start = datetime(2026, 11, 28, 1, 59, 57, tzinfo=UTC).timestamp()
    assert clock() == start
    real[0] += 3
    assert clock() == start + 180


def test_without_a_start_the_clock_is_real_time():
    real = [1000.0]
    clock = fast_clock(real=lambda: real[0])
    real[0] += 2
    assert clock() == 1002.0


@pytest.mark.parametrize("speed", [0, -1])
def test_a_clock_must_move_forward(speed):
    with pytest.raises(ValueError):
        fast_clock(None, speed)
