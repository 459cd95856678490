"""Unit tests do no I/O: the worker holds registered by capabilities (the dashboard's pause hold
reads DynamoDB, and is registered whenever `chalicelib.dashboard` has been imported, e.g. by a
functional test of the same session) are taken away here."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def no_worker_holds(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib.jobs import worker

    monkeypatch.setattr(worker, "_holds", [])


@pytest.fixture(autouse=True)
def no_event_listeners(monkeypatch: pytest.MonkeyPatch) -> None:
    """Likewise the capabilities' event listeners (the realtime emitters and the audit trail write
    to DynamoDB), subscribed at import by whatever module a functional test loaded first; a unit
    test subscribes what it means to observe."""
    from collections import defaultdict

    from chalicelib import events

    monkeypatch.setattr(events, "_listeners", defaultdict(list))
