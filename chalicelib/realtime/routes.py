"""Realtime's REST routes: a WebSocket ticket, and the browser client module. (The WebSocket
handlers themselves are in app.py: see its note on event handlers.)"""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.apidoc import ANYONE, USERS, Op

routes = Blueprint(__name__)

DOCS = {
    "POST /api/realtime/ticket": Op("A single-use WebSocket ticket, valid 60 s", USERS, "Ticket"),
    "GET /static/realtime.js": Op("The browser's realtime client (an ES module)", ANYONE, media="text/javascript"),
}


@routes.route("/api/realtime/ticket", methods=["POST"])
def realtime_ticket() -> dict:
    from chalicelib.auth import service as auth
    from chalicelib.realtime import tickets

    return tickets.issue(auth.require())


@routes.route("/static/realtime.js")
def realtime_js() -> object:
    from chalicelib.realtime import handlers

    return handlers.browser_client()
