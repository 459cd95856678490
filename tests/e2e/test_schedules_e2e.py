"""The catalogue's schedules fired by the local stack's EventBridge emulator at their cron times,
on a clock that starts just before 02:00 UTC and runs 60 times faster than real time."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from tests.e2e.conftest import LocalStack, eventually, start_stack, stop_stack

START = "2026-11-28T01:59:57Z"


@pytest.fixture(scope="module")
def fast_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    process, handle = start_stack(
        tmp_path_factory.mktemp("fast-schedules"), INKWELL_SCHEDULER_START=START, INKWELL_SCHEDULER_SPEED="60"
    )
    try:
        yield handle
    finally:
        stop_stack(process)


def schedules(stack: LocalStack, token: str) -> dict[str, dict[str, Any]]:
    status, body, _ = stack.request("GET", "/api/schedules", token=token)
    assert status == 200, body
    return {item["name"]: item for item in body["items"]}


def test_the_emulator_fires_each_schedule_at_its_time_once_per_slot(fast_stack: LocalStack) -> None:
    token = fast_stack.login()

    def fired() -> dict[str, dict[str, Any]]:
        items = schedules(fast_stack, token)
        assert items["daily-analytics"]["last_run"] == "2026-11-28T02:00:00Z"
        assert items["session-cleanup"]["last_run"] == "2026-11-28T02:00:00Z"
        assert items["audit-tally"]["last_run"] is not None  # rate(5 minutes): 02:00, 02:05, ...
        return items

    first = eventually(fired, timeout=20)
    # not yet due on the emulator's clock (01:00 daily, Mondays, Sundays, the 1st of the month)
    not_due = (
        "login-attempts-cleanup",
        "weekly-report",
        "activity-log-cleanup",
        "orphan-cleanup",
        "analytics-data-cleanup",
    )
    for name in not_due:
        assert first[name]["last_run"] is None, name
    # a duplicate delivery of the 02:00 event (fired again within the slot) enqueues nothing new
    assert fast_stack.fire("daily_analytics")["status"] == "ok"
    again = schedules(fast_stack, token)
    assert again["daily-analytics"]["last_job_id"] == first["daily-analytics"]["last_job_id"]
    # five emulated minutes later the hourly audit digest (at :05) has fired
    digest = eventually(lambda: schedules(fast_stack, token)["audit-digest"]["last_run"], timeout=20)
    assert digest == "2026-11-28T02:05:00Z"


def test_the_jobs_of_fired_schedules_run_on_the_workers(fast_stack: LocalStack) -> None:
    token = fast_stack.login()

    def finished() -> str:
        status = schedules(fast_stack, token)["session-cleanup"]["last_status"]
        return status if status in ("completed", "failed") else ""

    # the worker ran the job through to an outcome (the outcome itself is the processor's business)
    assert eventually(finished, timeout=20)
