"""The job tests' fixtures (a shared clock for Inkwell and moto's SQS, a hand-driven SQS poller,
test processors), for scheduled runs through the real worker; and EventBridge's scheduled event."""

from __future__ import annotations

import uuid
from typing import Any

from tests.functional.jobs.conftest import clock, poller, register  # noqa: F401


def cw_event(time: str) -> dict[str, Any]:
    """The event EventBridge sends a schedule's Lambda."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": "123456789012",
        "time": time,
        "region": "us-east-1",
        "resources": ["arn:aws:events:us-east-1:123456789012:rule/inkwell-test-schedule"],
        "detail": {},
    }
