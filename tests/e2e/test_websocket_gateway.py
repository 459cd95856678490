"""The WebSocket gateway emulator on its own, over real sockets, with plain handler functions:
event shapes, refusals with the handler's status, and API Gateway's idle and age limits (made
short here)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from local.websocket import WebSocketGateway
from tests.e2e.conftest import eventually


class Recorder:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def connect(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        wanted = (event.get("queryStringParameters") or {}).get("status", "200")
        return {"statusCode": int(wanted), "body": json.dumps({"message": f"status {wanted}"})}

    def message(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        if event["body"] == "crash":
            raise RuntimeError("handler crashed")
        return {"statusCode": 200}

    def disconnect(self, event: dict[str, Any], context: Any) -> dict[str, Any]:
        self.events.append(event)
        return {"statusCode": 200}

    def route(self, key: str) -> list[dict[str, Any]]:
        return [e for e in self.events if e["requestContext"]["routeKey"] == key]


@pytest.fixture
def gateway() -> Iterator[tuple[WebSocketGateway, Recorder]]:
    recorder = Recorder()
    handlers = {"$connect": recorder.connect, "$default": recorder.message, "$disconnect": recorder.disconnect}
    gw = WebSocketGateway(handlers, 0, idle_timeout=0.6, max_age=1.2, stage="test")
    gw.start()
    yield gw, recorder
    gw.stop()


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 10))


@pytest.mark.parametrize("status", [401, 403, 429])
def test_a_non_2xx_connect_answer_refuses_the_handshake_with_that_status(gateway: Any, status: int) -> None:
    gw, recorder = gateway

    async def attempt() -> int:
        try:
            async with connect(f"ws://127.0.0.1:{gw.port}/?status={status}"):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert run(attempt()) == status
    assert gw.connection_count == 0 and recorder.route("$disconnect") == []


def test_events_are_shaped_as_api_gateway_sends_them(gateway: Any) -> None:
    gw, recorder = gateway

    async def session() -> None:
        async with connect(f"ws://127.0.0.1:{gw.port}/?a=1&a=2&b=x", additional_headers={"X-Probe": "yes"}) as ws:
            await ws.send("hello")
            await ws.send(b"\x00\x01")
            eventually(lambda: len(recorder.route("$default")) == 2, timeout=5)

    run(session())
    connect_event = recorder.route("$connect")[0]
    ctx = connect_event["requestContext"]
    assert connect_event["queryStringParameters"] == {"a": "2", "b": "x"}
    assert connect_event["multiValueQueryStringParameters"] == {"a": ["1", "2"], "b": ["x"]}
    assert connect_event["headers"]["X-Probe"] == "yes"
    assert (ctx["eventType"], ctx["stage"], ctx["identity"]["sourceIp"]) == ("CONNECT", "test", "127.0.0.1")
    text, binary = recorder.route("$default")
    assert text["body"] == "hello" and text["isBase64Encoded"] is False and text["requestContext"]["messageId"]
    assert binary["body"] == "AAE=" and binary["isBase64Encoded"] is True
    assert {e["requestContext"]["connectionId"] for e in recorder.events} == {ctx["connectionId"]}
    disconnect = eventually(lambda: recorder.route("$disconnect"), timeout=5)[0]
    assert disconnect["requestContext"]["disconnectStatusCode"] == 1000


def test_a_failing_message_handler_sends_api_gateways_error_frame_and_keeps_the_connection(gateway: Any) -> None:
    gw, _ = gateway

    async def session() -> dict[str, Any]:
        async with connect(f"ws://127.0.0.1:{gw.port}/") as ws:
            await ws.send("crash")
            frame = json.loads(await ws.recv())
            await ws.send("fine")  # still open
            return frame

    frame = run(session())
    assert frame["message"] == "Internal server error" and frame["connectionId"] and frame["requestId"]


def test_an_idle_connection_is_closed_with_1001(gateway: Any) -> None:
    gw, recorder = gateway

    async def session() -> int | None:
        async with connect(f"ws://127.0.0.1:{gw.port}/") as ws:
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(session()) == 1001
    assert (
        eventually(lambda: recorder.route("$disconnect"), timeout=5)[0]["requestContext"]["disconnectStatusCode"]
        == 1001
    )


def test_an_active_connection_is_still_closed_at_its_maximum_age(gateway: Any) -> None:
    gw, _ = gateway

    async def session() -> tuple[int | None, float]:
        loop = asyncio.get_running_loop()
        started = loop.time()
        async with connect(f"ws://127.0.0.1:{gw.port}/") as ws:
            with pytest.raises(ConnectionClosed):
                while True:  # activity every 0.3 s keeps the idle timer (0.6 s) from firing
                    await ws.send("keepalive")
                    await asyncio.sleep(0.3)
            return ws.close_code, loop.time() - started

    code, lived = run(session())
    assert code == 1001 and 1.1 < lived < 2.5
