"""Dashboard fixtures: the jobs tests' clock, poller and processor registry, plus what
`chalice deploy` (and the local stack) create for the queue handlers: a Lambda function and an
SQS event source mapping each, in moto, and Lambda's pollers obeying the mappings' state."""

from __future__ import annotations

from typing import Any

import pytest

from tests.functional.jobs.conftest import Clock, clock, generator, job_events, poller, register  # noqa: F401


class Consumers:
    """The local stack's SQS pollers, stepped by hand: a disabled mapping delivers nothing."""

    def __init__(self, app: Any, clk: Clock) -> None:
        import threading

        from chalicelib import aws, config
        from local.emulated_aws import EmulatedAws
        from local.sources import sqs_sources
        from local.sqs_lambda import SqsPoller

        self.clock = clk
        sources = sqs_sources(app)
        EmulatedAws(0).deploy(sources, [])
        region = config.get().region
        self.pollers = {
            s.name.removeprefix("jobs_"): SqsPoller(
                s, aws.client("sqs"), aws.client("lambda"), region, threading.Event(), clock=clk.now
            )
            for s in sources
        }

    def step(self, queue: str, rounds: int = 10) -> int:
        """Poll `queue` like Lambda does (while its mapping is enabled); deliveries made."""
        lam = self.pollers[queue]
        delivered = 0
        for _ in range(rounds):
            self.clock.advance(1.1)  # past the poller's cache of the mapping state
            if not lam.mapping_state()[0]:
                break
            if lam.poll_once(wait_seconds=0) is None:
                break
            delivered += 1
        return delivered


@pytest.fixture
def consumers(app: Any, clock: Clock) -> Consumers:  # noqa: F811 (the imported fixture)
    return Consumers(app, clock)
