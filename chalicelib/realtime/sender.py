"""Posting to WebSocket connections through the API Gateway management API.

Chalice's `websocket_api.send` only works inside a WebSocket event and only over https; this
sender works from any handler (REST, SQS, schedule) against the endpoint in configuration
(`INKWELL_WS_MANAGEMENT_ENDPOINT`: API Gateway's `https://{api}.execute-api.{region}.amazonaws.com/{stage}`,
or the local gateway emulator's URL).

A broadcast posts to a room's connections concurrently in a bounded thread pool (a post is one
HTTPS round trip, so 1,000 sequential posts at 20 ms would take 20 s). A connection that answers
410 Gone is reported back so the caller can forget it; no failure stops the other posts.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from chalicelib import config, tracing
from chalicelib.observe import metrics
from chalicelib.realtime.protocol import dumps

log = logging.getLogger("inkwell.realtime")

SERVICE = "execute-api"  # the management API, as X-Ray names the service
FANOUT_WORKERS = 32


@dataclass
class BroadcastResult:
    sent: int = 0
    gone: list[str] = field(default_factory=list)
    failed: list[str] = field(default_factory=list)


def is_gone(exc: Exception) -> bool:
    """A GoneException, whatever raised it (botocore's modeled class, a bare 410 ClientError)."""
    response = getattr(exc, "response", None) or {}
    code = (response.get("Error") or {}).get("Code")
    status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
    return code == "GoneException" or status == 410


class Sender:
    def __init__(self, client: Any, workers: int = FANOUT_WORKERS) -> None:
        self._client = client
        self.workers = workers

    def post(self, connection_id: str, message: Any) -> bool:
        """Send one frame; False when the connection is gone (410). Other errors propagate."""
        with tracing.subsegment(SERVICE, "PostToConnection"):
            posted = self._post(connection_id, message)
        metrics.count("WebSocketPosts" if posted else "WebSocketGone")
        return posted

    def _post(self, connection_id: str, message: Any) -> bool:
        """`post` without metrics: the fan-out's threads post, the caller's thread counts."""
        data = message if isinstance(message, (bytes, str)) else dumps(message)
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except Exception as exc:
            if is_gone(exc):
                return False
            raise
        return True

    def close(self, connection_id: str, code: int | None = None) -> None:
        """Close the connection (API Gateway then runs `$disconnect`); a gone one is left alone.
        API Gateway's DeleteConnection takes no close code (its clients see 1000, aws/chalice#2060);
        `code` (1008 for a connection closed for its frame rate) reaches the local gateway only."""
        try:
            with tracing.subsegment(SERVICE, "DeleteConnection"):
                if code is None:
                    self._client.delete_connection(ConnectionId=connection_id)
                else:
                    self._client.delete_connection(ConnectionId=connection_id, CloseCode=code)
        except Exception as exc:
            if not is_gone(exc):
                raise

    def broadcast(self, connection_ids: Iterable[str], message: Any) -> BroadcastResult:
        """Post `message` to every connection, at most `workers` at a time."""
        data = message if isinstance(message, (bytes, str)) else dumps(message)
        ids = list(dict.fromkeys(connection_ids))
        result = BroadcastResult()
        if not ids:
            return result
        with tracing.subsegment(SERVICE, "PostToConnection") as traced:
            if len(ids) == 1:
                outcomes = [self._post_quietly(ids[0], data)]
            else:
                outcomes = list(_pool(self.workers).map(lambda cid: self._post_quietly(cid, data), ids))
            traced.update(posts=len(ids), connections=len(ids))
        for cid, outcome in zip(ids, outcomes, strict=True):
            if outcome == "sent":
                result.sent += 1
            elif outcome == "gone":
                result.gone.append(cid)
            else:
                result.failed.append(cid)
        _count(result)
        return result

    def broadcast_many(self, connection_ids: Iterable[str], messages: list[Any]) -> BroadcastResult:
        """Post every message, in order, to every connection: the connections concurrently (at
        most `workers` at a time), each one's messages one after another, so that each hears them
        in order. A connection that answers 410 gets no more; `sent` counts posts."""
        datas = [m if isinstance(m, (bytes, str)) else dumps(m) for m in messages]
        ids = list(dict.fromkeys(connection_ids))
        result = BroadcastResult()
        if not ids or not datas:
            return result

        def deliver(cid: str) -> tuple[int, str]:
            sent, outcome = 0, "sent"
            for data in datas:
                posted = self._post_quietly(cid, data)
                if posted == "gone":
                    return sent, "gone"
                if posted == "sent":
                    sent += 1
                else:
                    outcome = "failed"  # the others still go: a client resumes over the gap
            return sent, outcome

        with tracing.subsegment(SERVICE, "PostToConnection") as traced:
            outcomes = [deliver(ids[0])] if len(ids) == 1 else list(_pool(self.workers).map(deliver, ids))
            traced.update(posts=len(ids) * len(datas), connections=len(ids))
        for cid, (sent, outcome) in zip(ids, outcomes, strict=True):
            result.sent += sent
            if outcome == "gone":
                result.gone.append(cid)
            elif outcome == "failed":
                result.failed.append(cid)
        _count(result)
        return result

    def _post_quietly(self, connection_id: str, data: str | bytes) -> str:
        try:
            return "sent" if self._post(connection_id, data) else "gone"
        except Exception:
            log.warning("posting to connection %s failed", connection_id, exc_info=True)
            return "failed"


def _count(result: BroadcastResult) -> None:
    if result.sent:
        metrics.count("WebSocketPosts", result.sent)
    if result.gone:
        metrics.count("WebSocketGone", len(result.gone))


@functools.cache
def _pool(workers: int) -> ThreadPoolExecutor:
    # One pool per container, reused across invocations (a warm Lambda keeps its threads).
    return ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ws-fanout")


def endpoint_from_event(event_dict: dict[str, Any]) -> str | None:
    rc = event_dict.get("requestContext") or {}
    if not rc.get("domainName"):
        return None
    return f"https://{rc['domainName']}/{rc.get('stage', '')}".rstrip("/")


def management_client(url: str) -> Any:
    """The management API's client for `url` (tests replace this with a fake): the light one of
    `management` (botocore's `apigatewaymanagementapi` client spent ~3x the CPU per post)."""
    from chalicelib.realtime import management

    return management.client(url)


def sender(endpoint: str | None = None) -> Sender:
    url = config.get().ws_management_endpoint or endpoint
    if not url:
        raise config.ConfigError(f"{config.WS_MANAGEMENT_ENDPOINT} is not set")
    return Sender(management_client(url))
