"""The Python client's access token: refreshed before it expires and after a 401 (then the ticket
is asked for again), one refresh at a time, and a refused refresh stops the client."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from inkwell_realtime.client import AuthError, RealtimeClient

NOW = 1_800_000_000.0


def iso(epoch: float) -> str:
    from datetime import UTC, datetime

    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class FakeApi:
    """The two REST calls the client makes: a ticket for a valid token, and refresh rotation."""

    def __init__(self, valid: set[str]) -> None:
        self.valid = valid
        self.calls: list[tuple[str, Any, str | None]] = []
        self.refreshes = 0
        self.used: set[str] = set()
        self.lock = threading.Lock()

    def post(self, path: str, body: dict[str, Any] | None, token: str | None) -> tuple[int, Any]:
        with self.lock:
            self.calls.append((path, body, token))
            if path == "/api/realtime/ticket":
                return (200, {"ticket": f"ticket-for-{token}"}) if token in self.valid else (401, None)
            assert body is not None
            if body["refresh_token"] in self.used or not body["refresh_token"].startswith("r"):
                return 401, None
            self.used.add(body["refresh_token"])
            self.refreshes += 1
            token = f"fresh-{self.refreshes}"
            self.valid.add(token)
            return 200, {"token": token, "expires_at": iso(NOW + 900), "refresh_token": f"r{self.refreshes + 1}"}


def client(api: FakeApi, token: str, expires_in: float | None = 600, **kw: Any) -> RealtimeClient:
    rt = RealtimeClient(
        "http://api",
        token,
        refresh_token=kw.pop("refresh_token", "r1"),
        expires_at=iso(NOW + expires_in) if expires_in is not None else None,
        clock=lambda: NOW,
        **kw,
    )
    rt._post = api.post  # type: ignore[method-assign]
    return rt


def test_a_token_due_within_a_minute_is_refreshed_before_the_ticket_is_asked_for():
    api = FakeApi({"old"})
    seen: list[dict[str, Any]] = []
    rt = client(api, "old", expires_in=59, on_tokens=seen.append)
    assert rt._fetch_ticket() == {"ticket": "ticket-for-fresh-1"}
    assert [c[0] for c in api.calls] == ["/api/auth/refresh", "/api/realtime/ticket"]
    assert api.calls[0][1] == {"refresh_token": "r1"}
    assert [s["refresh_token"] for s in seen] == ["r2"]


def test_a_token_not_yet_due_is_used_as_it_is():
    api = FakeApi({"current"})
    rt = client(api, "current", expires_in=600)
    assert rt._fetch_ticket() == {"ticket": "ticket-for-current"}
    assert api.refreshes == 0


def test_after_a_401_it_refreshes_and_asks_for_a_ticket_again():
    api = FakeApi(set())
    rt = client(api, "revoked-or-expired", expires_in=600)
    assert rt._fetch_ticket() == {"ticket": "ticket-for-fresh-1"}
    assert [(c[0], c[2]) for c in api.calls] == [
        ("/api/realtime/ticket", "revoked-or-expired"),
        ("/api/auth/refresh", None),
        ("/api/realtime/ticket", "fresh-1"),
    ]


def test_the_refresh_token_rotates_with_each_refresh():
    api = FakeApi(set())
    rt = client(api, "a", expires_in=0)
    rt._fetch_ticket()
    rt._expires_at = NOW  # due again
    rt._fetch_ticket()
    assert [c[1]["refresh_token"] for c in api.calls if c[0] == "/api/auth/refresh"] == ["r1", "r2"]


def test_concurrent_callers_share_one_refresh():
    api = FakeApi(set())
    rt = client(api, "due", expires_in=0)
    barrier = threading.Barrier(4)
    got: list[str] = []

    def ask() -> None:
        barrier.wait()
        got.append(rt._fresh_token())

    threads = [threading.Thread(target=ask) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert api.refreshes == 1 and got == ["fresh-1"] * 4


def test_a_refused_refresh_stops_the_client_with_an_auth_error():
    api = FakeApi(set())
    rt = client(api, "expired", refresh_token="not-issued")
    with pytest.raises(AuthError, match="refresh refused"):
        rt._fetch_ticket()


def test_without_a_refresh_token_a_401_is_an_auth_error_as_before():
    api = FakeApi(set())
    rt = client(api, "expired", refresh_token=None)
    with pytest.raises(AuthError, match="ticket refused"):
        rt._fetch_ticket()
    assert api.refreshes == 0


def test_access_token_answers_a_fresh_token_for_rest_calls():
    import asyncio

    api = FakeApi(set())
    rt = client(api, "due", expires_in=10)
    assert asyncio.run(rt.access_token()) == "fresh-1"
    assert asyncio.run(rt.access_token()) == "fresh-1"  # not due any more
