"""Flow control on moto: each queue's maximum concurrency (catalogue, mapping, local stack), and
`PUT /api/queues/{queue}/limits` with what stats show of it."""

from __future__ import annotations

from typing import Any

from chalicelib import aws, catalog, config


def mapping(queue: str) -> dict[str, Any]:
    found = aws.client("lambda").list_event_source_mappings(FunctionName=config.function_name(f"jobs_{queue}"))
    return found["EventSourceMappings"][0]


def test_the_local_stacks_mappings_carry_and_obey_the_catalogues_maximum_concurrency(consumers):
    for queue in catalog.job_queues():
        assert mapping(queue)["ScalingConfig"] == {"MaximumConcurrency": catalog.queue(queue).concurrency}
        poller = consumers.pollers[queue]
        poller.mapping_state()
        assert poller.concurrency == catalog.queue(queue).concurrency
