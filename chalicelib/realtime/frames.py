"""Client frames, validated with pydantic: `subscribe`, `unsubscribe`, `ping`, `resume` (the
contract) and `rooms` (an addition: the connection's rooms with their current seq, so a client
knows where to resume from after a reconnect). A bad frame is a `BadFrame` naming what is wrong,
answered with an error frame.
"""

from __future__ import annotations

import json
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from chalicelib.realtime.protocol import MAX_FRAME_BYTES, SEQ_MAX


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
    after: int = Field(ge=0, le=SEQ_MAX, strict=True)


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
    try:
        raw = body.encode() if isinstance(body, str) else body
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") is no UTF-8 text
        raise BadFrame("frames must be UTF-8 text") from None
    if len(raw) > MAX_FRAME_BYTES:
        raise BadFrame(f"frames must be at most {MAX_FRAME_BYTES} bytes")
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise BadFrame("frames must be JSON objects") from None
    except RecursionError:  # 32 KB of '{"a":' nests deeper than the parser goes
        raise BadFrame("frames must be JSON objects, nested less deeply") from None
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
