"""Unit tests do no I/O: the event listeners app.py wires (the realtime emitters and the audit
trail write to DynamoDB) are set aside while a unit test runs, whatever a functional test of the
same session imported; a unit test subscribes what it means to observe."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(autouse=True)
def no_event_listeners() -> Iterator[None]:
    from chalicelib import events

    wired = {event_type: events.listeners(event_type) for event_type in events.EVENT_TYPES}
    events.subscribe_all({})
    yield
    events.subscribe_all(wired)
