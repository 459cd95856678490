"""Functional tests run the system as app.py wires it (its event listeners among them)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def wired(clean_env: None) -> None:
    import app  # noqa: F401  (imported once, in the test environment: its wiring is then in place)
