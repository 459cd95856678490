"""The dashboard page and its script, served by the app itself (no build step, no other host).

Both are static files in `chalicelib/static`, read once per container. The page's Content
Security Policy lets it load only from its own origin and talk only to it and the stage's own
WebSocket API (the origin of `INKWELL_WS_URL`; none when it is not set), never to any ws:/wss: host.
"""

from __future__ import annotations

import functools
from pathlib import Path
from urllib.parse import urlparse

from chalice import Response

from chalicelib import config

STATIC = Path(__file__).resolve().parent.parent / "static"
CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src {connect}; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)


def policy(ws_url: str | None) -> str:
    """The page's CSP: `connect-src` is the page's origin and the WebSocket API's origin only."""
    parsed = urlparse(ws_url or "")
    sources = ["'self'"]
    if parsed.scheme in ("ws", "wss") and parsed.netloc and not set(parsed.netloc) & set(" ;,'\""):
        sources.append(f"{parsed.scheme}://{parsed.netloc}")
    return CSP.format(connect=" ".join(sources))


@functools.cache
def _read(name: str) -> str:
    return (STATIC / name).read_text(encoding="utf-8")


def html() -> Response:
    return Response(
        body=_read("dashboard.html"),
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": policy(config.get().ws_url),
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
