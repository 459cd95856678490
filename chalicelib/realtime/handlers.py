"""The WebSocket routes: `$connect` authenticates and joins the base rooms, `$default` answers
frames, `$disconnect` forgets the connection (disconnect.py).

`$connect` takes a single-use ticket (`?ticket=`) and refuses anything else (a JWT in `?token=`
included) with 401. Each frame gets its replies posted back through the management API; nothing a
client sends raises: a malformed frame, a refused room or an unexpected fault becomes an error
frame (each with its `code`, `protocol.ERROR_CODES`) and the connection stays open (AWS still refusing after the SDK's retries: `unavailable`; on
`$connect`, a 503).

Each frame first takes a token from its connection's bucket (`frame_limit`: one conditional
UpdateItem, which also reads the connection): past the limit the frame is answered
`rate_limited` and nothing else is done for it, and after `ws_refused_before_close` frames refused
in a row the connection is closed (policy violation, 1008; see `sender.Sender.close`).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chalice import Response

from chalicelib import audit, aws, errors, limits, runtime
from chalicelib.audit import floods
from chalicelib.content import articles
from chalicelib.realtime import frames, protocol, rooms, tickets
from chalicelib.realtime.disconnect import act_as
from chalicelib.realtime.frame_limit import FrameLimit
from chalicelib.realtime.live import connections, event_log, forget
from chalicelib.realtime.sender import endpoint_from_event, sender

log = logging.getLogger("inkwell.realtime")

MAX_ROOMS_PER_CONNECTION = 50
MAX_REPLAY = 500  # events per `resumed`; a client with more to catch up resumes again
UNKNOWN_CONNECTION = protocol.error("unknown connection; reconnect", code=protocol.UNKNOWN_CONNECTION)
SESSION_ENDED = protocol.error("session ended; log in again", code=protocol.SESSION_ENDED)
POLICY_VIOLATION = 1008  # the close code of a connection closed for going on past its frame limit


class Closing(dict[str, Any]):
    """The last reply to a connection that goes on past its frame limit: it is closed after it."""


def connect(event: Any) -> Response | None:
    raw = event.to_dict()
    params = raw.get("queryStringParameters") or {}
    via = "ticket" if params.get("ticket") else "token" if params.get("token") else "none"
    try:
        user = tickets.authenticate(params)
    except errors.Unauthenticated as exc:
        floods.note("realtime.refused", ("ip", runtime.current().ip or "-"), {"via": via, "reason": exc.message})
        return Response(body={"message": exc.message}, status_code=401)
    except Exception as exc:
        if not aws.unavailable(exc):
            raise
        log.warning("$connect: a dependency is unavailable: %s", exc)
        return Response(body={"message": "unavailable; try again shortly"}, status_code=503)
    runtime.current().user = user
    base = rooms.base_rooms(user["id"], user["role"])
    connections().open(event.connection_id, user, base, endpoint_from_event(raw))
    audit.record("realtime.connect", resource=("connection", event.connection_id), details={"via": via})
    return None


def message(event: Any) -> None:
    raw = event.to_dict()
    connection_id = event.connection_id
    out = sender(endpoint_from_event(raw))
    for reply in answer(connection_id, raw.get("body")):
        if not out.post(connection_id, reply):
            forget(connections(), connection_id)
            return
        if isinstance(reply, Closing):
            out.close(connection_id, code=POLICY_VIOLATION)
            return
        if reply is UNKNOWN_CONNECTION or reply is SESSION_ENDED:
            # Nothing reaches a connection without a record: close it, so the client reconnects.
            out.close(connection_id)
            if reply is SESSION_ENDED:
                connections().close(connection_id)
            return


def answer(connection_id: str, body: str | None) -> Iterator[dict[str, Any] | str]:
    """The replies to one client frame, in order (a resume yields every replayed envelope)."""
    frame: Any = None
    try:
        bad: frames.BadFrame | None = None
        try:
            frame = frames.parse_frame(body)
        except frames.BadFrame as exc:
            bad = exc  # refused after the frame's token is taken: malformed frames count too
        stage = limits.limits()
        verdict = FrameLimit(aws.table("ws_connections"), stage.ws_frame_rate, stage.ws_frame_burst).take(connection_id)
        if verdict.connection is None:
            yield UNKNOWN_CONNECTION
            return
        if verdict.refused:
            yield _rate_limited(verdict.refused, stage)
            return
        if bad is not None:
            yield protocol.error(str(bad), bad.action)
            return
        yield from _act(verdict.connection, frame)
    except rooms.RoomRefused as exc:
        room = getattr(frame, "room", None)
        actor = runtime.current().user
        floods.note(  # a count per user (or connection) and minute, not an event per frame
            "security.forbidden",
            ("user", actor["id"]) if actor else ("connection", connection_id),
            {"action": frame.action, "reason": str(exc)},
            resource=("room", str(room)[:256]) if room else None,
        )
        yield protocol.error(str(exc), frame.action, room, code=protocol.FORBIDDEN)
    except Exception as exc:
        from chalicelib.observe import tracking

        action = getattr(frame, "action", None)
        if aws.unavailable(exc):  # AWS still refusing after the SDK's retries: worth trying again
            log.warning(
                "WebSocket %s frame on connection %s: a dependency is unavailable: %s", action, connection_id, exc
            )
            yield protocol.error("a service is unavailable; try again shortly", action, code=protocol.UNAVAILABLE)
            return
        log.exception("WebSocket %s frame failed on connection %s", action or "a", connection_id)
        tracking.report(exc)  # answered with an error frame, so the middleware never sees it
        yield protocol.error("internal error; try again", action, code=protocol.INTERNAL)


def _rate_limited(refused: int, stage: limits.Limits) -> dict[str, Any]:
    """The answer to a frame refused by the connection's limit; the last one closes it."""
    limit = f"at most {stage.ws_frame_rate:g} frames a second (bursts of {stage.ws_frame_burst})"
    if refused >= stage.ws_refused_before_close:
        message = f"too many frames: {limit}; {refused} refused in a row, closing the connection"
        return Closing(protocol.error(message, code=protocol.RATE_LIMITED))
    return protocol.error(f"too many frames: {limit}; this one was refused", code=protocol.RATE_LIMITED)


def _act(conn: dict[str, Any], frame: Any) -> Iterator[dict[str, Any] | str]:
    connection_id = conn["connection_id"]
    members = connections()
    act_as(conn)
    if not _session_alive(conn):
        audit.record("realtime.refused", details={"reason": "session ended", "connection": connection_id})
        yield SESSION_ENDED
        return
    joined = set(conn.get("rooms") or ())
    if isinstance(frame, frames.Ping):
        yield {"type": "pong"}
    elif isinstance(frame, frames.Rooms):
        yield {"type": "rooms", "rooms": event_log().current(sorted(joined))}
    elif isinstance(frame, frames.Subscribe):
        _check(conn, frame.room)
        if frame.room not in joined:
            if len(joined) >= MAX_ROOMS_PER_CONNECTION:
                raise rooms.RoomRefused(f"a connection may be in at most {MAX_ROOMS_PER_CONNECTION} rooms")
            members.join(conn, frame.room)
            audit.record("realtime.subscribe", resource=("room", frame.room), details={"connection": connection_id})
        # The current seq tells the client where to resume from after a reconnect.
        yield {"type": "subscribed", "room": frame.room, "seq": event_log().current([frame.room])[frame.room]}
    elif isinstance(frame, frames.Unsubscribe):
        if not rooms.is_valid(frame.room):
            raise rooms.RoomRefused(f"unknown room {frame.room[:80]!r}")
        members.leave(connection_id, frame.room)
        yield {"type": "unsubscribed", "room": frame.room}
    elif isinstance(frame, frames.Resume):
        _check(conn, frame.room)
        replayed, more = event_log().replay(frame.room, frame.after, MAX_REPLAY)
        for _, body in replayed:
            yield body
        done: dict[str, Any] = {"type": "resumed", "room": frame.room, "count": len(replayed), "complete": not more}
        if more:
            done["next_after"] = replayed[-1][0]
        yield done


def _session_alive(conn: dict[str, Any]) -> bool:
    """Whether the connection's session still stands (logout, a password or role change and a
    disabled user end it): one GetItem per frame."""
    from chalicelib.auth import store as auth

    session = auth.sessions().get(conn.get("jti") or "-")
    return session is not None and session["user_id"] == conn["user_id"]


def _check(conn: dict[str, Any], room: str) -> None:
    rooms.check_access(conn["user_id"], conn["role"], room, _author_of)


def _author_of(article_id: str) -> str | None:
    try:
        return str(articles.articles().get(article_id)["author_id"])
    except articles.ArticleNotFound:
        return None


@functools.cache
def _browser_source() -> str:
    return (Path(__file__).resolve().parent.parent / "static" / "realtime.js").read_text(encoding="utf-8")


def browser_client() -> Response:
    """The browser client, an ES module (`import {RealtimeClient} from "/static/realtime.js"`)."""
    return Response(
        body=_browser_source(),
        status_code=200,
        headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "public, max-age=300"},
    )
