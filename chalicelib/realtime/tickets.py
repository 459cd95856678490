"""Single-use WebSocket tickets and the `$connect` credential check.

A browser cannot set headers on a WebSocket handshake, so credentials travel in the URL, where
proxies and access logs keep them. A ticket (`POST /api/realtime/ticket`) is worth little
there: it opens one connection, within 60 s, once, and only while the token that asked for it
is still valid. It is stored as its SHA-256 hash and redeemed by a conditional delete. A JWT in
`?token=` is refused (a token in a URL reaches access logs and stays valid for 15 minutes).
"""

from __future__ import annotations

import secrets
from typing import Any

from chalicelib import audit, aws, config, errors, timeutil
from chalicelib.auth import store as auth
from chalicelib.realtime.store import TICKET_TTL_SECONDS, Tickets


def tickets() -> Tickets:
    return Tickets(aws.table("ws_tickets"))


def issue(user: dict[str, Any]) -> dict[str, Any]:
    """A new ticket for the authenticated `user` (as `service.require` returns it)."""
    ticket = secrets.token_urlsafe(32)
    expires_at = timeutil.now() + TICKET_TTL_SECONDS
    tickets().put(ticket, user, expires_at)
    audit.record("realtime.ticket", details={"expires_at": timeutil.iso(expires_at)})  # never the ticket
    answer: dict[str, Any] = {"ticket": ticket, "expires_at": timeutil.iso(expires_at)}
    if config.get().ws_url:
        answer["url"] = config.get().ws_url
    return answer


TOKEN_REFUSED = "a token in the URL is refused (URLs reach access logs): ask POST /api/realtime/ticket for ?ticket="


def authenticate(params: dict[str, str]) -> dict[str, Any]:
    """The user behind `?ticket=`, or errors.Unauthenticated (missing, unknown, used, expired or
    revoked ticket, or a JWT in `?token=`)."""
    ticket = params.get("ticket")
    if ticket:
        if len(ticket) > 128 or not ticket.isascii():  # tickets are URL-safe base64
            raise errors.Unauthenticated("invalid ticket")
        held = tickets().redeem(ticket)
        if held is None:
            raise errors.Unauthenticated("invalid, expired or already used ticket")
        session = auth.sessions().get(held["jti"])
        if session is None or session["user_id"] != held["user_id"]:
            raise errors.Unauthenticated("the token that asked for this ticket has been revoked")
        return {**auth.public_user(session), "jti": held["jti"]}
    if params.get("token"):
        raise errors.Unauthenticated(TOKEN_REFUSED)
    raise errors.Unauthenticated("credentials required: ?ticket=<ticket> (POST /api/realtime/ticket)")
