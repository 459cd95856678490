"""The live connections, as both delivery paths (an emit's own posts, `delivery`, and a fan-out
shard's, `fanout`) reach them: the stores (`connections()`, `event_log()`), posting envelopes to a
list of connections (`post`), forgetting a connection API Gateway no longer knows (`forget`), and
closing the connections of revoked sessions (`on_sessions_revoked`, a listener app.py subscribes).
"""

from __future__ import annotations

import logging

from chalicelib import aws, events, timeutil
from chalicelib.realtime.sender import sender
from chalicelib.realtime.store import Connections, EventLog

log = logging.getLogger("inkwell.realtime")

GONE_GRACE_SECONDS = 30.0  # a 410 this soon after $connect may mean "not open yet" (see forget)


def connections() -> Connections:
    return Connections(aws.table("ws_connections"), aws.table("ws_members"), event_log())


def event_log() -> EventLog:
    return EventLog(aws.table("ws_events"))


def post(members: Connections | None, endpoint: str | None, connection_ids: list[str], bodies: list[str]) -> None:
    """Post to the connections, each hearing `bodies` in order; the configured management endpoint
    wins over the one each connection recorded at `$connect` (which lets any handler post even
    without configuration). `members` (built when None and a connection is gone) forgets 410s."""
    out = sender(endpoint)
    result = (
        out.broadcast(connection_ids, bodies[0]) if len(bodies) == 1 else out.broadcast_many(connection_ids, bodies)
    )
    for connection_id in result.gone:
        members = members or connections()
        forget(members, connection_id)


def forget(members: Connections, connection_id: str) -> None:
    """Drop a connection API Gateway no longer knows (410): its $disconnect never ran.

    A connection opened in the last GONE_GRACE_SECONDS is kept: API Gateway answers 410 until
    `$connect` has returned, and the record is written inside `$connect`. Were it dropped, the
    client would be left on a live connection the server no longer knows. A young connection
    that really went away gets its `$disconnect` (or, failing that, its TTL)."""
    try:
        members.close(connection_id, opened_before=timeutil.iso_ms(timeutil.now() - GONE_GRACE_SECONDS))
    except Exception:  # best effort: the TTL removes it anyway
        log.warning("could not remove gone connection %s", connection_id, exc_info=True)


def on_sessions_revoked(event: events.SessionsRevoked) -> None:
    """Close the live WebSocket connections of the revoked sessions through the management API
    (`DELETE @connections/{id}`) and forget them at once, so no event reaches them meanwhile;
    API Gateway then runs `$disconnect`."""
    members = connections()
    for conn in members.of_user(event.user_id):
        sid = conn.get("jti")
        if (event.sids is not None and sid not in event.sids) or sid in event.kept:
            continue
        try:
            sender(conn.get("endpoint")).close(conn["connection_id"])
        except Exception:  # the frame check refuses it anyway, and the TTL removes it
            log.warning("could not close connection %s of a revoked session", conn["connection_id"], exc_info=True)
        members.close(conn["connection_id"])
