"""The WebSocket routes: `$connect` authenticates and joins the base rooms, `$default` answers
frames, `$disconnect` forgets the connection.

`$connect` takes a single-use ticket (`?ticket=`) or a JWT (`?token=`) and refuses anything
else with 401. Each frame gets its replies posted back through the management API; nothing a
client sends raises: a malformed frame, a refused room or an unexpected fault becomes an error
frame and the connection stays open (AWS still refusing after the SDK's retries: an error frame
with `code` `unavailable`; on `$connect`, a 503).
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from chalice import Response

from chalicelib import audit, errors, runtime
from chalicelib.content import articles
from chalicelib.realtime import frames, protocol, rooms, tickets
from chalicelib.realtime.live import connections, event_log, forget
from chalicelib.realtime.sender import endpoint_from_event, sender

log = logging.getLogger("inkwell.realtime")

MAX_ROOMS_PER_CONNECTION = 50
MAX_REPLAY = 500  # events per `resumed`; a client with more to catch up resumes again
UNKNOWN_CONNECTION = protocol.error("unknown connection; reconnect")
SESSION_ENDED = protocol.error("session ended; log in again")


def connect(event: Any) -> Response | None:
    raw = event.to_dict()
    params = raw.get("queryStringParameters") or {}
    via = "ticket" if params.get("ticket") else "token" if params.get("token") else "none"
    try:
        user = tickets.authenticate(params)
    except errors.Unauthenticated as exc:
        audit.record("realtime.refused", details={"via": via, "reason": exc.message})
        return Response(body={"message": exc.message}, status_code=401)
    except Exception as exc:
        from chalicelib import aws

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
        if reply is UNKNOWN_CONNECTION or reply is SESSION_ENDED:
            # Nothing reaches a connection without a record: close it, so the client reconnects.
            out.close(connection_id)
            if reply is SESSION_ENDED:
                connections().close(connection_id)
            return


def disconnect(event: Any) -> None:
    try:
        removed = connections().close(event.connection_id)
    except Exception:  # best effort: the TTL and the next GoneException catch what is left
        log.warning("could not remove connection %s on $disconnect", event.connection_id, exc_info=True)
        removed = None
    if removed:
        _act_as(removed)
    rc = event.to_dict().get("requestContext") or {}
    details = {"code": rc.get("disconnectStatusCode"), "reason": rc.get("disconnectReason") or None}
    audit.record(
        "realtime.disconnect",
        resource=("connection", event.connection_id),
        details={k: v for k, v in details.items() if v is not None},
    )


def answer(connection_id: str, body: str | None) -> Iterator[dict[str, Any] | str]:
    """The replies to one client frame, in order (a resume yields every replayed envelope)."""
    try:
        frame = frames.parse_frame(body)
    except frames.BadFrame as exc:
        yield protocol.error(str(exc), exc.action)
        return
    try:
        yield from _act(connection_id, frame)
    except rooms.RoomRefused as exc:
        room = getattr(frame, "room", None)
        audit.record(
            "security.forbidden",
            resource=("room", str(room)[:256]) if room else None,
            details={"action": frame.action, "reason": str(exc)},
        )
        yield protocol.error(str(exc), frame.action, room)
    except Exception as exc:
        from chalicelib import aws
        from chalicelib.observe import tracking

        if aws.unavailable(exc):  # AWS still refusing after the SDK's retries: worth trying again
            log.warning(
                "WebSocket %s frame on connection %s: a dependency is unavailable: %s", frame.action, connection_id, exc
            )
            yield protocol.error("a service is unavailable; try again shortly", frame.action, code="unavailable")
            return
        log.exception("WebSocket %s frame failed on connection %s", frame.action, connection_id)
        tracking.report(exc)  # answered with an error frame, so the middleware never sees it
        yield protocol.error("internal error; try again", frame.action)


def _act(connection_id: str, frame: Any) -> Iterator[dict[str, Any] | str]:
    members = connections()
    conn = members.get(connection_id)
    if conn is None:
        yield UNKNOWN_CONNECTION
        return
    _act_as(conn)
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
    from chalicelib.auth import service as auth

    session = auth.sessions().get(conn.get("jti") or "-")
    return session is not None and session["user_id"] == conn["user_id"]


def _act_as(conn: dict[str, Any]) -> None:
    """The connection's user is the actor of this invocation (audit, logs)."""
    runtime.current().user = {"id": conn["user_id"], "email": conn["email"], "role": conn["role"]}


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
