"""The middleware app.py registers around every handler, on a small Chalice app of its own: the
invocation context, the REST error shape, and the buffers' end flushes on every kind of handler, in
their declared order."""

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
    failing = runtime.Buffer("failing", list, _failing_flush)
    recording = runtime.Buffer("recording", list, lambda: ended.append("flush"))
    app.register_middleware(runtime.Middleware(buffers=[failing, recording]), "all")

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


def _failing_flush() -> None:
    raise RuntimeError("a failing flush must not stop the others")


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


# --- buffers -------------------------------------------------------------------------------------


def _buffers(order: list[str]) -> list[runtime.Buffer[list[str]]]:
    """Buffers named a, b, c...: each end flush notes its name and what it took."""

    def flush_of(name: str):
        def flush() -> None:
            order.append(f"{name}:{','.join(buffers[name].take() or [])}")

        return flush

    buffers = {name: runtime.Buffer(name, list, flush_of(name)) for name in "abc"}
    return list(buffers.values())


def test_buffers_are_flushed_in_the_declared_order_each_taking_its_own_content():
    order: list[str] = []
    a, b, c = _buffers(order)

    def handler() -> None:
        c.get().append("3")
        a.get().append("1")

    runtime.Middleware(buffers=[c, a, b]).run(runtime.Invocation(kind="sqs", request_id="r"), handler)
    assert order == ["c:3", "a:1", "b:"]


def test_a_flush_fills_a_buffer_flushed_after_it_and_a_late_write_is_an_error(logged_errors):
    order: list[str] = []
    first = runtime.Buffer("first", list, lambda: (first.take(), second.get().append("from first")))
    second = runtime.Buffer("second", list, lambda: order.extend(second.take() or []))

    runtime.Middleware(buffers=[first, second]).run(runtime.Invocation(kind="sqs", request_id="r"), first.get)
    assert order == ["from first"]  # the declared order: the write reached the second's flush
    assert logged_errors == []

    order.clear()
    runtime.Middleware(buffers=[second, first]).run(runtime.Invocation(kind="sqs", request_id="r"), first.get)
    assert order == []  # the wrong order: written after the second's flush ...
    assert logged_errors == ["buffer second was written after its end flush (lost): flush it later"]  # ... said so


def test_a_failing_handler_still_flushes_every_buffer():
    order: list[str] = []
    buffers = _buffers(order)

    def handler() -> None:
        buffers[1].get().append("kept")
        raise KeyError("boom")

    with pytest.raises(KeyError):
        runtime.Middleware(buffers=buffers).run(runtime.Invocation(kind="sqs", request_id="r"), handler)
    assert order == ["a:", "b:kept", "c:"]


def test_two_buffers_of_one_name_are_refused():
    with pytest.raises(ValueError, match="share a name"):
        runtime.Middleware(buffers=[runtime.Buffer("x", list, print), runtime.Buffer("x", dict, print)])


def test_a_buffer_defers_only_inside_an_invocation_that_flushes_it_and_until_its_flush_begins():
    seen: list[object] = []
    waiting = runtime.Buffer("waiting", list, lambda: seen.append(("at its flush", waiting.deferred())))
    other = runtime.Buffer("other", list, lambda: None)
    assert waiting.deferred() is None  # a script: nothing flushes it
    runtime.Middleware(buffers=[other]).run(
        runtime.Invocation(kind="sqs", request_id="r"), lambda: seen.append(waiting.deferred())
    )
    runtime.Middleware(buffers=[waiting]).run(
        runtime.Invocation(kind="sqs", request_id="r"), lambda: seen.append(waiting.deferred())
    )
    assert seen == [None, [], ("at its flush", None)]


def test_get_makes_the_content_once_and_take_removes_it():
    inv = runtime.Invocation(kind="sqs", request_id="r")
    buffer = runtime.Buffer("numbers", list, lambda: None)

    def handler() -> object:
        buffer.get().append(1)
        buffer.get().append(2)
        return buffer.take(), buffer.take(), buffer.get()

    assert runtime.Middleware().run(inv, handler) == ([1, 2], None, [])
