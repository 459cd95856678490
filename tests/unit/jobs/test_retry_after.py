"""Retry-After as a generator sends it: delta seconds or an HTTP date."""

from __future__ import annotations

import pytest

from chalicelib import timeutil
from chalicelib.content.generator import retry_after


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"Retry-After": "30"}, 30.0),
        ({"retry-after": " 0 "}, 0.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:28:30 GMT"}, 30.0),
        ({"Retry-After": "Wed, 21 Oct 2015 07:27:00 GMT"}, 0.0),  # in the past: at once
        ({"Retry-After": "-5"}, None),
        ({"Retry-After": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after(monkeypatch: pytest.MonkeyPatch, headers: dict[str, str], seconds: float | None) -> None:
    monkeypatch.setattr(timeutil, "now", lambda: 1445412480.0)  # 2015-10-21T07:28:00Z
    assert retry_after(headers) == seconds
