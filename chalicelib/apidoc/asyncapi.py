"""The AsyncAPI 3.0 document of the WebSocket API, built from the client frames' pydantic models
(`realtime.frames`) and the server's catalogue (`realtime.protocol.EVENTS`, `REPLIES`)."""

from __future__ import annotations

from typing import Any

from pydantic.json_schema import models_json_schema

from chalicelib.realtime import frames, protocol

CLIENT_FRAMES = (frames.Subscribe, frames.Unsubscribe, frames.Ping, frames.Resume, frames.Rooms)
ENVELOPE = ("type", "room", "seq", "ts", "data")


def build(ws_url: str | None = None) -> dict[str, Any]:
    _, top = models_json_schema([(m, "validation") for m in CLIENT_FRAMES], ref_template="#/components/schemas/{model}")
    schemas: dict[str, Any] = dict(top.get("$defs", {}))
    messages: dict[str, Any] = {}
    for m in CLIENT_FRAMES:
        messages[m.__name__] = {
            "name": m.__name__.lower(),
            "title": f'{{"action": "{m.__name__.lower()}"}}',
            "payload": {"$ref": f"#/components/schemas/{m.__name__}"},
        }
    for name, (answers, fields) in protocol.REPLIES.items():
        key = "reply_" + name
        required = ["type"] + [f for f in fields if name != "error" or f in ("code", "message")]
        schemas[key] = {
            "type": "object",
            "properties": {"type": {"const": name}, **fields},
            "required": required,
        }
        messages[key] = {
            "name": name,
            "title": f'{{"type": "{name}"}}',
            "summary": f"answers {answers}",
            "payload": {"$ref": f"#/components/schemas/{key}"},
        }
    for name, event in protocol.EVENTS.items():
        key = "event_" + name.replace(".", "_")
        data = {
            "type": "object",
            "properties": event.data,
            "required": [f for f in event.data if f not in event.optional],
        }
        schemas[key] = {
            "type": "object",
            "properties": {
                "type": {"const": name},
                "room": {"type": "string", "description": event.rooms},
                "seq": {"type": "integer", "minimum": 1},
                "ts": {"type": "string", "format": "date-time"},
                "data": data,
            },
            "required": list(ENVELOPE),
        }
        messages[key] = {
            "name": name,
            "title": name,
            "summary": f"{event.meaning}; rooms: {event.rooms}",
            "payload": {"$ref": f"#/components/schemas/{key}"},
        }
    refs = {k: {"$ref": f"#/channels/connection/messages/{k}"} for k in messages}
    client = [k for k in messages if not k.startswith(("reply_", "event_"))]
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Inkwell WebSocket API",
            "version": "1",
            "description": "Connect with `?ticket=<ticket>` (POST /api/realtime/ticket) or `?token=<JWT>`. "
            "Every connection joins `user:<its user id>`; admins also join `admin`; `article:<id>` is joined "
            "by subscribing (the article's author and admins). Events carry a per-room `seq`, increasing by "
            "one; `resume` replays a room's events after a seq (kept at least 24 h).",
        },
        "servers": {"local": {"host": (ws_url or "127.0.0.1:8001").split("://")[-1], "protocol": "ws"}},
        "channels": {
            "connection": {
                "address": "/",
                "messages": {k: {"$ref": f"#/components/messages/{k}"} for k in messages},
            }
        },
        "operations": {
            "send": {
                "action": "receive",
                "channel": {"$ref": "#/channels/connection"},
                "summary": "frames a client sends",
                "messages": [refs[k] for k in client],
            },
            "reply": {
                "action": "send",
                "channel": {"$ref": "#/channels/connection"},
                "summary": "the server's replies",
                "messages": [refs[k] for k in messages if k.startswith("reply_")],
            },
            "events": {
                "action": "send",
                "channel": {"$ref": "#/channels/connection"},
                "summary": "events to the rooms a connection is in",
                "messages": [refs[k] for k in messages if k.startswith("event_")],
            },
        },
        "components": {"schemas": schemas, "messages": messages},
    }
