"""The server's side of the WebSocket wire format: event envelopes `{"type","room","seq","ts",
"data"}`, API Gateway's size limits, error frames. Pure, and light to import (the emitters load
it in every function; the pydantic frame models live in `frames`, loaded by the handlers).
"""

from __future__ import annotations

import json
from typing import Any

MAX_FRAME_BYTES = 32 * 1024  # API Gateway's client frame limit
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's message limit (server to client)
SEQ_MAX = 10**15  # as wide as any real seq, for size checks before a seq exists


class PayloadTooLarge(ValueError):
    """An event would exceed API Gateway's 128 KB message limit; it is refused, not truncated."""


def error(message: str, action: str | None = None, room: str | None = None) -> dict[str, Any]:
    reply: dict[str, Any] = {"type": "error", "message": message}
    if action:
        reply["action"] = action
    if room:
        reply["room"] = room
    return reply


def dumps(message: Any) -> str:
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False)


def envelope(event_type: str, room: str, seq: int, ts: str, data: dict[str, Any]) -> dict[str, Any]:
    return {"type": event_type, "room": room, "seq": seq, "ts": ts, "data": data}


def check_size(event_type: str, rooms: list[str], ts: str, data: dict[str, Any]) -> None:
    """Raise PayloadTooLarge when the event, sent to the longest of `rooms`, would not fit in one
    API Gateway message. Runs before any seq is taken, so a refused event leaves no gap."""
    room = max(rooms, key=len)
    size = len(dumps(envelope(event_type, room, SEQ_MAX, ts, data)).encode())
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"{event_type} event is {size} bytes; WebSocket messages are limited to {MAX_MESSAGE_BYTES} bytes"
        )
