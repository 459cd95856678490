"""What a scheduled event and `GET /api/schedules` spend on pure computation: the slot of an
event (the previous fire time) and the next run of every catalogue schedule."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

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


if __name__ == "__main__":
    main()
