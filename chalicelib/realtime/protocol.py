"""The server's side of the WebSocket wire format: event envelopes `{"type","room","seq","ts",
"data"}`, API Gateway's size limits, error frames. Pure, and light to import (the emitters load
it in every function; the pydantic frame models live in `frames`, loaded by the handlers).
"""

from __future__ import annotations

import json
from typing import Any, NamedTuple

MAX_FRAME_BYTES = 32 * 1024  # API Gateway's client frame limit
MAX_MESSAGE_BYTES = 128 * 1024  # API Gateway's message limit (server to client)
SEQ_MAX = 10**15  # as wide as any real seq, for size checks before a seq exists


class PayloadTooLarge(ValueError):
    """An event would exceed API Gateway's 128 KB message limit; it is refused, not truncated."""


def error(
    message: str, action: str | None = None, room: str | None = None, *, code: str | None = None
) -> dict[str, Any]:
    reply: dict[str, Any] = {"type": "error", "message": message}
    if code:
        reply["code"] = code
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


# --- the catalogue: what the server sends (the docs, `/docs` and `/api/asyncapi.json`, are built from it) ---

_STR = {"type": "string"}
_INT = {"type": "integer"}
_OBJ = {"type": "object"}


class EventType(NamedTuple):
    """An event type the emitters send, each to its rooms as `{"type","room","seq","ts","data"}`."""

    rooms: str
    data: dict[str, dict[str, Any]]
    meaning: str
    optional: tuple[str, ...] = ()


EVENTS: dict[str, EventType] = {
    "article.status": EventType(
        "article:<id>, user:<author>, admin",
        {"article_id": _STR, "status": _STR, "job_id": {"type": ["string", "null"]}},
        "an article's status changed",
    ),
    "job.progress": EventType(
        "article:<id> (a job about one), admin",
        {"job_id": _STR, "queue": _STR, "progress": {"type": "integer", "minimum": 0, "maximum": 100}},
        "a job's progress",
    ),
    "job.completed": EventType(
        "admin, user:<who caused it>", {"job_id": _STR, "queue": _STR, "attempts": _INT}, "a job completed"
    ),
    "job.failed": EventType(
        "admin, user:<who caused it>",
        {"job_id": _STR, "queue": _STR, "attempts": _INT, "error": {}},
        "a job failed for good",
        ("error",),
    ),
    "job.cancelled": EventType(
        "admin, user:<who caused it>",
        {"job_id": _STR, "queue": _STR, "attempts": _INT},
        "a waiting or delayed job was cancelled",
    ),
    "activity": EventType("admin", {"id": _STR, "action": _STR, "actor": _OBJ}, "an audit event, as GET /api/audit"),
    "analytics.update": EventType(
        "admin",
        {"article_id": _STR, "counts": _OBJ, "report": _OBJ},
        "an article's running counts (at most every 5 s), or a stored report",
        ("article_id", "counts", "report"),
    ),
    "system.alert": EventType(
        "admin",
        {"level": {"enum": ["info", "warning", "critical"]}, "message": _STR},
        "a system alert (queue health, lockouts, tampering, audit fallbacks)",
    ),
}

# The server's replies to client frames (`frames.ACTIONS`), and what each carries.
REPLIES: dict[str, tuple[str, dict[str, dict[str, Any]]]] = {
    "subscribed": ("subscribe", {"room": _STR, "seq": _INT}),
    "unsubscribed": ("unsubscribe", {"room": _STR}),
    "pong": ("ping", {}),
    "rooms": ("rooms", {"rooms": {"type": "object", "additionalProperties": _INT}}),
    "resumed": ("resume", {"room": _STR, "count": _INT, "complete": {"type": "boolean"}}),
    "error": ("any malformed or refused frame", {"message": _STR, "action": _STR, "room": _STR}),
}
