"""Fairness on the articles queue: ten users with ten generations each, alone and then behind a
user with a thousand, in the same run.

Jobs' messages are sent as `jobs.enqueue` sends them (`service._send`: the articles queue is
fair, so each message's MessageGroupId is its user; the job records, which delivery never reads,
are left out) on moto in-process, with SQS fair queues emulated as the local stack emulates them
(`local.fair_sqs`). A consumer as Lambda's event source mapping runs them: up to the queue's
maximum concurrency at once (one receive of that many per tick), each job taking one tick of a
virtual clock. A job's wait is the tick it starts at (all are queued at tick 0).
Printed: the small users' p95 wait with the noisy user against their p95 wait without it (the
issue's limit: at most 2x), the same with moto's arrival order (no fair delivery) for contrast,
and that every job ran exactly once.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from typing import Any

NOISY_JOBS = 1000
SMALL_USERS = 10
SMALL_JOBS = 10


def _environment() -> None:
    os.environ.update(
        {
            "INKWELL_STAGE": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
        }
    )
    os.environ.pop("INKWELL_AWS_ENDPOINT", None)


def p95(values: list[int]) -> float:
    ordered = sorted(values)
    return float(ordered[max(0, -(-95 * len(ordered) // 100) - 1)])


def run_queue(jobs_by_user: dict[str, int]) -> tuple[dict[str, list[int]], int]:
    """Enqueue the jobs, consume them all; (user -> the ticks their jobs started at, jobs run)."""
    import uuid

    from chalicelib import aws, catalog
    from chalicelib.jobs import service

    queue, queues = catalog.queue("articles"), service.queues()
    for user, count in jobs_by_user.items():  # the noisy user, when there is one, queues first
        for _ in range(count):  # the message as `jobs.enqueue` sends it (its record is not needed)
            record = {"id": uuid.uuid4().hex, "queue": "articles", "type": "generate", "run": 1, "user_id": user}
            service._send(queues, record)
    sqs, url = aws.client("sqs"), aws.queue_url("articles")
    started: dict[str, list[int]] = {}
    seen: Counter[str] = Counter()
    tick = 0
    remaining = sum(jobs_by_user.values())
    while remaining:
        # free slots: one invocation each (one receive of that many per tick); all that is left
        # is visible at a tick's start (the previous tick's jobs were deleted)
        batch = sqs.receive_message(
            QueueUrl=url,
            MaxNumberOfMessages=min(queue.concurrency, remaining, 10),
            WaitTimeSeconds=1,
            MessageSystemAttributeNames=["MessageGroupId"],
        ).get("Messages", [])
        if not batch:
            break  # lost: counted below
        remaining -= len(batch)
        for message in batch:
            seen[json.loads(message["Body"])["job_id"]] += 1
            user = message["Attributes"]["MessageGroupId"]  # the job's user (the articles queue is fair)
            started.setdefault(user, []).append(tick)
        if batch:  # the invocations end after one tick
            entries = [{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)]
            sqs.delete_message_batch(QueueUrl=url, Entries=entries)
        tick += 1
    runs = sum(seen.values())
    assert all(n == 1 for n in seen.values()), "a job ran twice"
    return started, runs


def measure(fair: bool) -> dict[str, Any]:
    import time

    import moto.sqs.models as sqs_models
    from moto import mock_aws

    from chalicelib import aws, config
    from infra import provision
    from local import fair_sqs

    # moto reads its clock through datetime conversions, millions of times for a 1,000-message
    # queue: the plain clock instead (what the job tests' SQS clock does too)
    sqs_models.unix_time = lambda *a: time.time()  # type: ignore[assignment]
    sqs_models.unix_time_millis = lambda *a: time.time() * 1000.0  # type: ignore[assignment]
    (fair_sqs.install if fair else fair_sqs.uninstall)()
    config.reset()
    aws.reset()
    small = {f"user-{i:02d}": SMALL_JOBS for i in range(SMALL_USERS)}
    with mock_aws():
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        alone, runs_alone = run_queue(small)
        crowded, runs_crowded = run_queue({"noisy": NOISY_JOBS, **small})
    base = p95([t for user, ticks in alone.items() for t in ticks])
    with_noisy = p95([t for user, ticks in crowded.items() if user != "noisy" for t in ticks])
    expected = SMALL_USERS * SMALL_JOBS * 2 + NOISY_JOBS
    return {
        "alone": base,
        "with_noisy": with_noisy,
        "ratio": with_noisy / base if base else float("inf"),
        "lost": expected - runs_alone - runs_crowded,
    }


def main() -> None:
    _environment()
    from chalicelib import catalog

    print(
        f"fairness: articles queue (concurrency {catalog.queue('articles').concurrency}, one tick a job); "
        f"{SMALL_USERS} users x {SMALL_JOBS} jobs, alone and behind one user with {NOISY_JOBS}"
    )
    for fair, label in ((False, "arrival order (no fair delivery)"), (True, "fair queue (MessageGroupId = user)")):
        found = measure(fair)
        print(
            f"  {label:36} small users' p95 wait {found['with_noisy']:6.1f} ticks vs {found['alone']:4.1f} alone: "
            f"{found['ratio']:5.2f}x, lost {found['lost']}"
        )
    verdict = "OK" if found["ratio"] <= 2 and found["lost"] == 0 else "OVER"
    print(f"  fairness ratio: {found['ratio']:.2f}x (limit 2x), lost {found['lost']} {verdict}")


if __name__ == "__main__":
    main()
