"""What a scheduled event and `GET /api/schedules` spend on pure computation: the slot of an
event (the previous fire time) and the next run of every catalogue schedule, in UTC and in a
time zone; and how many AWS requests a job delayed past SQS's 15 minutes costs (on moto
in-process, counted by a botocore `before-call` hook): a one-time schedule whatever the delay,
against the 15-minute hops it replaced (one SendMessage per 15 minutes)."""

from __future__ import annotations

import os
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

from chalicelib import catalog, cron
from chalicelib.schedules import slots


def _per_call_us(fn, repeat: int) -> float:
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat * 1e6


def main() -> None:
    moment = datetime(2026, 12, 31, 23, 59, 30, tzinfo=UTC)
    print("schedules: slot of an event / next run, microseconds per call")
    for schedule in catalog.SCHEDULES.values():
        slot = _per_call_us(lambda s=schedule: slots.slot_of(s.expression, moment), 50)
        nxt = _per_call_us(lambda s=schedule: cron.next_run(s.expression, moment), 50)
        print(f"  {schedule.name:24} slot {slot:8.0f}   next_run {nxt:8.0f}")
    late = moment + timedelta(hours=20)
    worst = _per_call_us(lambda: slots.slot_of(catalog.SCHEDULES["analytics-data-cleanup"].expression, late), 20)
    print(
        f"  listing (all next runs): {_per_call_us(lambda: [cron.next_run(s.expression, moment) for s in catalog.SCHEDULES.values()], 20):.0f} us"
    )
    print(f"  monthly slot, event 20 h late: {worst:.0f} us")
    paris = _per_call_us(lambda: cron.next_run("cron(0 9 * * ? *)", moment, timezone="Europe/Paris"), 50)
    print(f"  next_run of cron(0 9 * * ? *) in Europe/Paris: {paris:.0f} us")
    long_delays()


def long_delays() -> None:
    """AWS requests of `jobs.enqueue` with a delay past 15 minutes (the issue's limit: <= 3)."""
    os.environ.update(
        {
            "INKWELL_STAGE": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    os.environ.pop("INKWELL_AWS_ENDPOINT", None)
    from moto import mock_aws

    from chalicelib import aws, config, jobs
    from infra import provision

    config.reset()
    aws.reset()
    with mock_aws():
        counted: Counter[str] = Counter()
        counting = {"on": False}

        def hook(model: Any, **_: Any) -> None:
            if counting["on"]:
                counted[f"{model.service_model.service_name}.{model.name}"] += 1

        aws.session().events.register("before-call", hook)  # before any client is made
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        aws.client("scheduler").create_schedule_group(Name=config.physical_name(config.get().stage))
        counting["on"] = True
        print("long delays: AWS requests per delayed job (enqueue), one-time schedule vs 15-minute hops")
        worst = 0
        for label, seconds in (("16 minutes", 960), ("1 day", 86400), ("1 year", 365 * 86400)):
            for run in ("cold", "warm"):
                if run == "cold":
                    aws.queue_url.cache_clear()
                counted.clear()
                jobs.enqueue("emails", "send", {}, delay_seconds=seconds)
                total = sum(counted.values())
                worst = max(worst, total)
                hops = -(-seconds // 900)
                calls = ", ".join(f"{k} {v}" for k, v in sorted(counted.items()))
                print(f"  {label:10} {run}: {total} requests ({calls}); hops would send {hops} messages")
        print(f"  long-delay requests, worst: {worst} (limit 3) {'OK' if worst <= 3 else 'OVER'}")


if __name__ == "__main__":
    main()
