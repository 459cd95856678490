"""Each WebSocket connection's frame limit (a token bucket on its connection item), on moto:
a burst is refused past the limit with `rate_limited` frames and then closed (1008), and what a
frame costs in DynamoDB requests."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import aws, limits, timeutil
from chalicelib.realtime import protocol
from chalicelib.realtime import sender as sender_module
from tests.conftest import body
from tests.functional.ws_support import FakeManagement, Gateway

limits_of = limits.limits

NOW = 1_900_000_000.0


@pytest.fixture
def management(monkeypatch: pytest.MonkeyPatch) -> FakeManagement:
    fake = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: fake)
    return fake


@pytest.fixture
def gw(app, management) -> Gateway:
    import app as app_module

    return Gateway(app_module, management)


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    now = [NOW]
    monkeypatch.setattr(timeutil, "now", lambda: now[0])
    return now


def connect(gw: Gateway, api: Any, role: str = "viewer") -> str:
    response = api.post("/api/realtime/ticket", as_=role)
    assert response.status_code == 200, response.body
    cid, answer = gw.connect(ticket=body(response)["ticket"])
    assert answer["statusCode"] == 200, answer
    return cid


def test_a_300_frame_burst_is_refused_past_the_limit_then_closed_with_1008(gw, api, management, clock):
    limits = limits_of()
    cid = connect(gw, api)
    replies: list[Any] = []
    sent = 0
    for _ in range(300):
        if cid in management.gone:  # closed: API Gateway takes no more frames from it
            break
        replies += gw.send(cid, {"action": "ping"})
        sent += 1
    pongs = [r for r in replies if r == {"type": "pong"}]
    refused = [r for r in replies if r.get("type") == "error"]
    assert len(pongs) == limits.ws_frame_burst  # the clock stands still: the burst, no refill
    assert len(refused) == limits.ws_refused_before_close
    assert {r["code"] for r in refused} == {"rate_limited"}
    assert "closing" in refused[-1]["message"] and "closing" not in refused[0]["message"]
    assert replies == pongs + refused  # nothing accepted once refusing began
    assert management.deleted == [cid] and management.close_codes[cid] == 1008
    assert sent == limits.ws_frame_burst + limits.ws_refused_before_close < 300


def test_the_bucket_refills_at_its_rate_and_an_accepted_frame_forgives_the_refused(gw, api, management, clock):
    limits = limits_of()
    cid = connect(gw, api)
    answers = [gw.send(cid, {"action": "ping"})[0] for _ in range(limits.ws_frame_burst + 5)]
    assert [a["type"] for a in answers].count("error") == 5
    clock[0] += 5 / limits.ws_frame_rate  # five frames' worth of time
    answers = [gw.send(cid, {"action": "ping"})[0] for _ in range(6)]
    assert [a["type"] for a in answers] == ["pong"] * 5 + ["error"]
    # refused in a row only: the accepted frames started the count again
    for _ in range(limits.ws_refused_before_close - 2):
        assert gw.send(cid, {"action": "ping"})[0]["code"] == "rate_limited"
    assert management.deleted == []


def test_a_frame_costs_the_dynamodb_requests_it_did_before(gw, api, clock):
    """Before the limit: GetItem of the connection and GetItem of the session per ping. After:
    the conditional UpdateItem (which returns the connection) and the session's GetItem."""
    cid = connect(gw, api)
    calls: list[str] = []

    def count(model: Any, **_: Any) -> None:
        calls.append(model.name)

    events = aws.table("ws_connections").meta.client.meta.events  # every table's (one resource a thread)
    events.register("before-call.dynamodb", count)
    try:
        assert gw.send(cid, {"action": "ping"}) == [{"type": "pong"}]
    finally:
        events.unregister("before-call.dynamodb", count)
    assert sorted(calls) == ["GetItem", "UpdateItem"]


def test_every_error_frame_carries_a_code(gw, api, management, clock):
    cid = connect(gw, api)
    bad = gw.send(cid, "not json")
    forbidden = gw.send(cid, {"action": "subscribe", "room": "admin"})
    unknown = gw.send("no-such-connection", {"action": "ping"})
    assert [bad[0]["code"], forbidden[0]["code"], unknown[0]["code"]] == ["invalid", "forbidden", "unknown_connection"]
    assert all(r["code"] in protocol.ERROR_CODES for r in bad + forbidden + unknown)
