"""The middleware app.py registers around every handler, on a small Chalice app of its own: the
invocation context, the REST error shape, and the end hooks on every kind of handler."""

from __future__ import annotations

import json

import pytest
from chalice import BadRequestError, Chalice
from chalice.test import Client

from chalicelib import errors, runtime


@pytest.fixture
def probe():
    ended: list[str] = []
    seen: list[runtime.Invocation] = []
    app = Chalice(app_name="probe")
    app.experimental_feature_flags.update(["WEBSOCKETS"])
    app.register_middleware(runtime.Middleware(at_end=[lambda: ended.append("flush"), _failing_hook]), "all")

    @app.route("/ok")
    def ok() -> dict:
        seen.append(runtime.current())
        return {"ok": True}

    @app.route("/refused")
    def refused() -> dict:
        raise errors.Conflict("not now")

    @app.route("/throttled")
    def throttled() -> dict:
        raise errors.Throttled("slow down", 3)

    @app.route("/bug")
    def bug() -> dict:
        raise KeyError("secret detail")

    @app.route("/chalice")
    def chalice_error() -> dict:
        raise BadRequestError("chalice's own")

    @app.on_sqs_message(queue="q")
    def consume(event) -> None:
        seen.append(runtime.current())
        raise RuntimeError("boom")

    @app.on_ws_message()
    def message(event) -> None:
        seen.append(runtime.current())

    return app, ended, seen


def _failing_hook() -> None:
    raise RuntimeError("a failing hook must not stop the others")


def test_a_route_runs_as_a_rest_invocation_and_the_hooks_run_after_it(probe):
    app, ended, seen = probe
    with Client(app) as client:
        response = client.http.get("/ok", headers={"User-Agent": "probe/1"})
    assert response.status_code == 200
    [inv] = seen
    assert (inv.kind, inv.user_agent, inv.headers["user-agent"]) == ("rest", "probe/1", "probe/1")
    assert ended == ["flush"]


@pytest.mark.parametrize(
    "path, status, body",
    [
        ("/refused", 409, {"Code": "ConflictError", "Message": "not now"}),
        ("/throttled", 429, {"Code": "TooManyRequestsError", "Message": "slow down"}),
        ("/chalice", 400, {"Code": "BadRequestError", "Message": "chalice's own"}),
        ("/bug", 500, {"Code": "InternalServerError", "Message": "An internal server error occurred."}),
    ],
)
def test_refusals_answer_in_the_contract_shape_and_bugs_with_a_bare_500(probe, path, status, body):
    app, ended, _ = probe
    with Client(app) as client:
        response = client.http.get(path)
    assert response.status_code == status
    assert json.loads(response.body) == body
    assert ended == ["flush"]


def test_the_throttled_answer_says_when_to_come_back(probe):
    app, _, _ = probe
    with Client(app) as client:
        assert client.http.get("/throttled").headers["Retry-After"] == "3"


def test_event_handlers_run_as_their_kind_and_the_hooks_run_even_when_they_raise(probe):
    app, ended, seen = probe
    with Client(app) as client, pytest.raises(RuntimeError, match="boom"):
        client.lambda_.invoke("consume", client.events.generate_sqs_event(queue_name="q", message_bodies=["x"]))
    assert [inv.kind for inv in seen] == ["sqs"]
    assert ended == ["flush"]


def test_a_websocket_frame_runs_as_a_websocket_invocation_with_its_request_id(probe):
    app, ended, seen = probe
    event = {
        "requestContext": {
            "routeKey": "$default",
            "connectionId": "c1",
            "domainName": "example.com",
            "stage": "api",
            "apiId": "abc",
            "requestId": "ws-req-1",
            "identity": {"sourceIp": "10.0.0.9", "userAgent": "agent/2"},
            "eventType": "MESSAGE",
        },
        "body": "{}",
    }
    app.handler_map["message"](event, None)
    [inv] = seen
    assert (inv.kind, inv.request_id, inv.ip, inv.user_agent) == ("websocket", "ws-req-1", "10.0.0.9", "agent/2")
    assert ended == ["flush"]


def test_outside_any_handler_the_invocation_is_a_script():
    assert runtime.current().kind == "script"
