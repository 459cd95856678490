"""Realtime's REST routes: a WebSocket ticket, and the browser client module. (The WebSocket
handlers themselves are in app.py: see its note on event handlers.)"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.auth.access import route
from chalicelib.routing import ANYONE, USERS, Op

routes = Blueprint(__name__)


@route(
    routes,
    "POST /api/realtime/ticket",
    Op(
        "A single-use WebSocket ticket, valid 60 s",
        USERS,
        "Ticket",
        errors={429: "quota tickets_per_minute: too many tickets asked for this minute"},
    ),
)
def realtime_ticket(user: dict) -> dict:
    from chalicelib import limits, quotas
    from chalicelib.realtime import tickets

    quotas.take("tickets_per_minute", user["id"], limits.limits().tickets_per_minute, 60, "WebSocket tickets a minute")
    return tickets.issue(user)


@route(
    routes,
    "GET /static/realtime.js",
    Op("The browser's realtime client (an ES module)", ANYONE, media="text/javascript"),
)
def realtime_js() -> object:
    from chalicelib.realtime import handlers

    return handlers.browser_client()
