"""Helpers for the WebSocket tests: API Gateway-shaped events, a fake management API (moto's
`post_to_connection` never raises GoneException), and a gateway that drives the app's handlers."""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections import defaultdict
from typing import Any

from botocore.exceptions import ClientError

DOMAIN = "abc123.execute-api.us-east-1.amazonaws.com"


def gone_error() -> ClientError:
    return ClientError(
        {"Error": {"Code": "GoneException", "Message": "gone"}, "ResponseMetadata": {"HTTPStatusCode": 410}},
        "PostToConnection",
    )


class FakeManagement:
    """`apigatewaymanagementapi` as far as the sender uses it: records posts, answers 410 for
    connections marked gone, optionally takes `delay` seconds per post."""

    def __init__(self, delay: float = 0.0) -> None:
        self.delay = delay
        self.posts: dict[str, list[Any]] = defaultdict(list)
        self.gone: set[str] = set()
        self.failing: set[str] = set()
        self.deleted: list[str] = []  # connections closed through the management API
        self.close_codes: dict[str, int] = {}  # the close code each was deleted with (AWS: always 1000)
        self.calls = 0
        self.in_flight = 0
        self.max_in_flight = 0
        self._lock = threading.Lock()

    def post_to_connection(self, ConnectionId: str, Data: Any) -> dict[str, Any]:  # noqa: N803 (boto3's names)
        with self._lock:
            self.calls += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if self.delay:
                time.sleep(self.delay)
            if ConnectionId in self.gone:
                raise gone_error()
            if ConnectionId in self.failing:
                raise ClientError({"Error": {"Code": "InternalServerError", "Message": "boom"}}, "PostToConnection")
            with self._lock:
                self.posts[ConnectionId].append(json.loads(Data))
            return {}
        finally:
            with self._lock:
                self.in_flight -= 1

    def delete_connection(self, ConnectionId: str, CloseCode: int | None = None) -> dict[str, Any]:  # noqa: N803
        with self._lock:
            self.calls += 1
            if ConnectionId in self.gone:
                raise gone_error()
            self.deleted.append(ConnectionId)
            self.close_codes[ConnectionId] = CloseCode or 1000
            self.gone.add(ConnectionId)
        return {}

    def take(self, connection_id: str) -> list[Any]:
        """The frames posted to a connection since the last take."""
        with self._lock:
            frames = self.posts.pop(connection_id, [])
        return frames


class Context:
    aws_request_id = "req-1"
    function_name = "inkwell-websocket"


def ws_event(
    route: str, connection_id: str, *, query: dict[str, str] | None = None, body: Any = None
) -> dict[str, Any]:
    event_type = {"$connect": "CONNECT", "$disconnect": "DISCONNECT"}.get(route, "MESSAGE")
    event: dict[str, Any] = {
        "requestContext": {
            "routeKey": route,
            "eventType": event_type,
            "connectionId": connection_id,
            "domainName": DOMAIN,
            "stage": "api",
            "apiId": "abc123",
            "requestId": uuid.uuid4().hex,
            "connectedAt": int(time.time() * 1000),
            "identity": {"sourceIp": "203.0.113.9", "userAgent": "pytest"},
        },
        "isBase64Encoded": False,
    }
    if route == "$disconnect":
        event["requestContext"].update(disconnectStatusCode=1001, disconnectReason="Going away")
    if route == "$connect":
        event["queryStringParameters"] = query
        event["headers"] = {"Host": DOMAIN, "User-Agent": "pytest"}
    if body is not None:
        event["body"] = body if isinstance(body, str) else json.dumps(body)
    return event


class Gateway:
    """Drives the app's WebSocket handlers (`app.ws_connect`, ... of the app module) as API
    Gateway would."""

    def __init__(self, app: Any, management: FakeManagement) -> None:
        self.app = app
        self.management = management

    def connect(self, *, ticket: str | None = None, token: str | None = None, connection_id: str | None = None) -> Any:
        cid = connection_id or uuid.uuid4().hex[:16]
        query = {k: v for k, v in (("ticket", ticket), ("token", token)) if v is not None} or None
        response = self.app.ws_connect(ws_event("$connect", cid, query=query), Context())
        return cid, response

    def send(self, connection_id: str, frame: Any) -> list[Any]:
        """Send one frame; returns what was posted back to that connection."""
        self.management.take(connection_id)
        self.app.ws_message(ws_event("$default", connection_id, body=frame), Context())
        return self.management.take(connection_id)

    def disconnect(self, connection_id: str) -> None:
        self.app.ws_disconnect(ws_event("$disconnect", connection_id), Context())
