"""Functional tests run the system as app.py wires it: its event listeners, for every test (a unit
test of the same session may have set them aside)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def wired(clean_env: None) -> None:
    import app  # in the test environment: app.py names its queues after the stage
    from chalicelib import events

    events.subscribe_all(app.LISTENERS)
