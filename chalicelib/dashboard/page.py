"""The dashboard page and its script, served by the app itself (no build step, no other host).

Both are static files in `chalicelib/static`, read once per container. The page's Content
Security Policy lets it load only from its own origin and talk only to it and the WebSocket API.
"""

from __future__ import annotations

import functools
from pathlib import Path

from chalice import Response

STATIC = Path(__file__).resolve().parent.parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self' ws: wss:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


@functools.cache
def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def html() -> Response:
    return Response(
        body=_read("dashboard.html"),
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
            "Cache-Control": "no-cache",
        },
    )


def script() -> Response:
    return Response(
        body=_read("dashboard.js"),
        status_code=200,
        headers={"Content-Type": "text/javascript; charset=utf-8", "Cache-Control": "no-cache"},
    )
