"""The WebSocket wire format: client frames (validated with pydantic) and server envelopes.

Client to server: `subscribe`, `unsubscribe`, `ping`, `resume` (the contract) and `rooms` (an
addition: the connection's rooms with their current seq, so a client knows where to resume
from after a reconnect). Server to client: `{"type","room","seq","ts","data"}` for events, and
small replies (`subscribed`, `pong`, `resumed`, `error`, ...). Everything here is pure.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

MAX_FRAME_BYTES = 32 * 1024  # API Gateway's client frame limit
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's message limit (server to client)
_SEQ_PLACEHOLDER = 10**15  # as wide as any real seq, for size checks before a seq exists


class PayloadTooLarge(ValueError):
    """An event would exceed API Gateway's 128 KB message limit; it is refused, not truncated."""


class _Frame(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Subscribe(_Frame):
    action: Literal["subscribe"]
    room: str = Field(min_length=1, max_length=100)


class Unsubscribe(_Frame):
    action: Literal["unsubscribe"]
    room: str = Field(min_length=1, max_length=100)


class Ping(_Frame):
    action: Literal["ping"]


class Rooms(_Frame):
    action: Literal["rooms"]


class Resume(_Frame):
    action: Literal["resume"]
    room: str = Field(min_length=1, max_length=100)
    after: int = Field(ge=0, le=_SEQ_PLACEHOLDER, strict=True)


Frame = Annotated[Subscribe | Unsubscribe | Ping | Rooms | Resume, Field(discriminator="action")]
_frame_adapter: TypeAdapter[Any] = TypeAdapter(Frame)
ACTIONS = ("subscribe", "unsubscribe", "ping", "resume", "rooms")


class BadFrame(ValueError):
    """A frame the server cannot act on; its message goes back in an error frame."""

    def __init__(self, message: str, action: str | None = None) -> None:
        super().__init__(message)
        self.action = action


def parse_frame(body: str | bytes | None) -> Subscribe | Unsubscribe | Ping | Rooms | Resume:
    """The client frame in `body`, or BadFrame naming what is wrong."""
    if body is None:
        raise BadFrame("empty frame")
    raw = body.encode() if isinstance(body, str) else body
    if len(raw) > MAX_FRAME_BYTES:
        raise BadFrame(f"frames must be at most {MAX_FRAME_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadFrame("frames must be JSON objects") from None
    if not isinstance(data, dict):
        raise BadFrame("frames must be JSON objects")
    action = data.get("action")
    if not isinstance(action, str):
        raise BadFrame("a frame needs an 'action' string")
    if action not in ACTIONS:
        raise BadFrame(f"unknown action {action[:50]!r}: expected one of {', '.join(ACTIONS)}")
    try:
        return _frame_adapter.validate_python(data)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc'][1:]) or 'frame'}: {err['msg']}" for err in exc.errors()
        )
        raise BadFrame(f"invalid {action} frame: {problems}", action) from None


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
    size = len(dumps(envelope(event_type, room, _SEQ_PLACEHOLDER, ts, data)).encode())
    if size > MAX_MESSAGE_BYTES:
        raise PayloadTooLarge(
            f"{event_type} event is {size} bytes; WebSocket messages are limited to {MAX_MESSAGE_BYTES} bytes"
        )
