"""The edges when AWS still refuses after the SDK's retries (contract: "When AWS fails"): a REST
request answers 503 with Retry-After and the error shape, never 500; a WebSocket frame gets an
error frame with code `unavailable`."""

from __future__ import annotations

import pytest

from chalicelib import config
from chalicelib.realtime import sender as sender_module
from tests.conftest import body
from tests.faults import INTERNAL, OUTLAST, THROTTLE, TIMEOUT
from tests.functional.ws_support import FakeManagement, Gateway


def _table(name: str) -> str:
    return f'"{config.get().resource_name(name)}"'


@pytest.mark.parametrize("code", [THROTTLE, "ProvisionedThroughputExceededException", INTERNAL, TIMEOUT])
def test_a_read_that_aws_keeps_refusing_answers_503_with_retry_after(api, faults, code):
    api.token("editor")
    faults.fail("Query", times=OUTLAST, code=code, match=_table("articles"))
    response = api.get("/api/articles", as_="editor")
    assert response.status_code == 503, response.body
    assert int(response.headers["Retry-After"]) >= 1
    assert body(response)["Code"] == "ServiceUnavailableError"
    assert faults.met["Query"] == OUTLAST
    assert api.get("/api/articles", as_="editor").status_code == 200  # and it passes


def test_a_write_that_aws_keeps_refusing_answers_503(api, faults):
    api.token("editor")
    faults.fail("PutItem", times=OUTLAST, match=_table("articles"))
    response = api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor")
    assert response.status_code == 503, response.body
    assert "Retry-After" in response.headers


def test_a_fault_the_sdk_retries_through_is_invisible(api, faults):
    api.token("editor")
    faults.fail("Query", times=3, match=_table("articles"))
    assert api.get("/api/articles", as_="editor").status_code == 200


def test_a_bug_is_still_a_500_not_a_503(api, monkeypatch):
    from chalicelib.content import articles

    api.token("editor")
    monkeypatch.setattr(articles, "list_page", lambda params: 1 / 0)
    assert api.get("/api/articles", as_="editor").status_code == 500


@pytest.fixture
def gw(app, monkeypatch):
    import app as app_module

    fake = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: fake)
    return Gateway(app_module, fake)


def test_a_websocket_frame_aws_keeps_refusing_gets_an_unavailable_error_frame(api, gw, faults):
    ticket = body(api.post("/api/realtime/ticket", as_="viewer"))["ticket"]
    cid, response = gw.connect(ticket=ticket)
    assert response["statusCode"] == 200
    faults.fail("UpdateItem", times=OUTLAST, match=_table("ws_connections"))  # the frame limit's token
    [reply] = gw.send(cid, {"action": "ping"})
    assert (reply["type"], reply["code"], reply["action"]) == ("error", "unavailable", "ping")
    assert gw.send(cid, {"action": "ping"}) == [{"type": "pong"}]  # the connection stayed open


def test_a_websocket_connect_aws_keeps_refusing_answers_503(api, gw, faults):
    ticket = body(api.post("/api/realtime/ticket", as_="viewer"))["ticket"]
    faults.fail("UpdateItem", times=OUTLAST, match=_table("ws_tickets"))
    faults.fail("DeleteItem", times=OUTLAST, match=_table("ws_tickets"))
    _, response = gw.connect(ticket=ticket)
    assert response["statusCode"] == 503
