"""Sessions for browsers: the refresh token in a cookie no script can read, and the CSRF defence
of the one request that cookie authenticates (`POST /api/auth/refresh`).

A request opts in with the header `X-Inkwell-Session: cookie`. Login and refresh then set the
refresh token as `inkwell_refresh` (`HttpOnly; Secure; SameSite=Strict; Path=/api/auth`) and
leave it out of the JSON answer; the page keeps only the 15-minute access token, in memory.
A cookie refresh must pass three checks, each enough against a cross-site request on its own
in current browsers (docs/security.md, Sessions and users):
- SameSite=Strict: the browser sends the cookie only with requests from this site;
- the `X-Inkwell-Session` header: a custom header, which another origin's script can only set
  after a CORS preflight that this API never approves (it has no CORS), and a form cannot set;
- `Origin` (or, without one, `Referer`) names this API's own host, and `Sec-Fetch-Site`, when
  sent, is `same-origin`.
API clients keep sending the refresh token in the body, where none of this applies.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from chalice import Response

from chalicelib import audit, errors

COOKIE = "inkwell_refresh"
COOKIE_PATH = "/api/auth"
MODE_HEADER = "x-inkwell-session"


def wants_cookie(headers: dict[str, str]) -> bool:
    return headers.get(MODE_HEADER, "").strip().lower() == "cookie"


def _cookie(value: str, max_age: int) -> str:
    return f"{COOKIE}={value}; Max-Age={max_age}; Path={COOKIE_PATH}; HttpOnly; Secure; SameSite=Strict"


def answer(session: dict[str, Any]) -> Response:
    """A login or refresh answer for a browser: the refresh token goes into the cookie only."""
    from chalicelib import timeutil

    expires = timeutil.parse_iso(session["refresh_expires_at"])
    body = {k: v for k, v in session.items() if k != "refresh_token"}
    cookie = _cookie(session["refresh_token"], max(1, int(expires - timeutil.now())))
    return Response(body=body, status_code=200, headers={"Set-Cookie": cookie, "Cache-Control": "no-store"})


def logged_out() -> Response:
    """204 that also removes the cookie (harmless for API clients, which have none)."""
    return Response(body="", status_code=204, headers={"Set-Cookie": _cookie("", 0)})


def cookie_token(headers: dict[str, str]) -> str | None:
    """The refresh token of the `Cookie` header, if any (parsed leniently: a malformed header is
    no cookie, never an error)."""
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == COOKIE and value:
            return value.strip('"')
    return None


def check_same_origin(headers: dict[str, str]) -> None:
    """errors.Forbidden (audited as `security.csrf_refused`) unless the request comes from a page
    of this API's own origin."""
    reason = _cross_site(headers)
    if reason:
        audit.record("security.csrf_refused", details={"reason": reason, "origin": headers.get("origin", "")[:200]})
        raise errors.Forbidden(f"cross-site request refused: {reason}")


def _cross_site(headers: dict[str, str]) -> str | None:
    fetch_site = headers.get("sec-fetch-site")
    if fetch_site is not None and fetch_site != "same-origin":
        return f"Sec-Fetch-Site is {fetch_site[:40]!r}"
    source = headers.get("origin") or headers.get("referer")
    if not source or source == "null":
        return "no Origin or Referer"
    try:
        netloc = urlsplit(source).netloc.lower()
    except ValueError:
        return "malformed Origin"
    if not netloc or netloc != headers.get("host", "").lower():
        return "Origin is another site"
    return None
