"""Realtime's REST routes: a WebSocket ticket, and the browser client module. (The WebSocket
handlers themselves are in app.py: see its note on event handlers.)"""

from __future__ import annotations

from chalice import Blueprint

routes = Blueprint(__name__)


@routes.route("/api/realtime/ticket", methods=["POST"])
def realtime_ticket() -> dict:
    from chalicelib.auth import service as auth
    from chalicelib.realtime import tickets

    return tickets.issue(auth.require())


@routes.route("/static/realtime.js")
def realtime_js() -> object:
    from chalicelib.realtime import handlers

    return handlers.browser_client()
