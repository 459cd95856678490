"""The WebSocket routes: `$connect` authenticates, `$default` answers frames, `$disconnect`.

First version (local-stack issue): a JWT in `?token=` is required; `ping` answers `pong`;
anything malformed gets an error frame and the connection stays open. The realtime issue adds
tickets, the connections table, rooms, subscribe/unsubscribe and resume on this base.
"""

from __future__ import annotations

import json
import logging
from typing import Any

from chalice import Response

from chalicelib.auth import service as auth
from chalicelib.http import HttpError
from chalicelib.realtime.sender import endpoint_from_event, sender

log = logging.getLogger("inkwell.realtime")

MAX_FRAME_BYTES = 32 * 1024


def connect(event: Any) -> Response | None:
    params = event.to_dict().get("queryStringParameters") or {}
    token = params.get("token")
    if not token:
        return Response(body={"message": "credentials required"}, status_code=401)
    try:
        auth.authenticate_token(token)
    except HttpError as exc:
        return Response(body={"message": exc.message}, status_code=exc.status)
    return None


def message(event: Any) -> None:
    raw = event.to_dict()
    reply = answer(event.body)
    sender(endpoint_from_event(raw)).post(event.connection_id, reply)


def answer(body: str | None) -> dict[str, Any]:
    """The reply to one client frame (pure)."""
    if body is None or len(body.encode()) > MAX_FRAME_BYTES:
        return {"type": "error", "message": f"frames must be at most {MAX_FRAME_BYTES} bytes"}
    try:
        frame = json.loads(body)
    except ValueError:
        return {"type": "error", "message": "frames must be JSON objects"}
    if not isinstance(frame, dict) or not isinstance(frame.get("action"), str):
        return {"type": "error", "message": "a frame needs an 'action' string"}
    if frame["action"] == "ping":
        return {"type": "pong"}
    return {"type": "error", "message": f"unknown action {frame['action'][:50]!r}"}


def disconnect(event: Any) -> None:
    return None
