"""Sessions for browsers: the refresh token in a cookie no script can read, and the CSRF defence
of the one request that cookie authenticates (`POST /api/auth/refresh`).

A request opts in with the header `X-Inkwell-Session: cookie`. Login and refresh then set the
refresh token as `__Host-inkwell_refresh` (`HttpOnly; Secure; SameSite=Strict; Path=/`, no
`Domain`: the `__Host-` prefix makes browsers refuse it otherwise, so neither a sibling subdomain
nor plain HTTP can plant or overwrite it) and leave it out of the JSON answer; the page keeps
only the 15-minute access token, in memory. A refresh that carries several such cookies (only a
misbehaving client sends them) is refused (401, the cookie cleared) rather than one picked.
A cookie refresh must pass three checks, each enough against a cross-site request on its own
in current browsers (docs/security.md, Sessions and users):
- SameSite=Strict: the browser sends the cookie only with requests from this site;
- the `X-Inkwell-Session` header: a custom header, which another origin's script can only set
  after a CORS preflight that this API never approves (it has no CORS), and a form cannot set;
- `Origin` (or, without one, `Referer`) names this API's own host, and `Sec-Fetch-Site`, when
  sent, is `same-origin`.
API clients keep sending the refresh token in the body, where none of this applies.

Device cookies (`__Host-inkwell_device`, OWASP's "device cookies"): every successful login sets
one naming the device and bound to the email by an HMAC; a login presenting a valid one for its
email draws on that device's own attempt budget instead of the email's and the address's, so
failures from elsewhere never keep a user out of a device they logged in from before
(docs/security.md, Login throttling).
"""

from __future__ import annotations

import hashlib
import hmac
from typing import Any
from urllib.parse import urlsplit

from chalice import Response

from chalicelib import audit, errors

COOKIE = "__Host-inkwell_refresh"
COOKIE_PATH = "/"  # what the `__Host-` prefix requires
DEVICE_COOKIE = "__Host-inkwell_device"
DEVICE_MAX_AGE = 180 * 24 * 3600
MODE_HEADER = "x-inkwell-session"


class SeveralCookies(Exception):
    """More than one refresh cookie arrived."""


def wants_cookie(headers: dict[str, str]) -> bool:
    return headers.get(MODE_HEADER, "").strip().lower() == "cookie"


def _cookie(value: str, max_age: int, name: str = COOKIE) -> str:
    return f"{name}={value}; Max-Age={max_age}; Path={COOKIE_PATH}; HttpOnly; Secure; SameSite=Strict"


def answer(session: dict[str, Any]) -> Response:
    """A login or refresh answer for a browser: the refresh token goes into the cookie only."""
    from chalicelib import timeutil

    expires = timeutil.parse_iso(session["refresh_expires_at"])
    body = {k: v for k, v in session.items() if k not in ("refresh_token", "device")}
    cookies = [_cookie(session["refresh_token"], max(1, int(expires - timeutil.now())))]
    if session.get("device"):
        cookies.append(_cookie(session["device"], DEVICE_MAX_AGE, DEVICE_COOKIE))
    return Response(body=body, status_code=200, headers={"Set-Cookie": cookies, "Cache-Control": "no-store"})


def api_answer(session: dict[str, Any]) -> Response:
    """A login answer for an API client: the JSON shape, and the device cookie for clients that
    keep cookies."""
    body = {k: v for k, v in session.items() if k != "device"}
    headers: dict[str, Any] = {"Cache-Control": "no-store"}
    if session.get("device"):
        headers["Set-Cookie"] = _cookie(session["device"], DEVICE_MAX_AGE, DEVICE_COOKIE)
    return Response(body=body, status_code=200, headers=headers)


def logged_out() -> Response:
    """204 that also removes the cookie (harmless for API clients, which have none)."""
    return Response(body="", status_code=204, headers={"Set-Cookie": _cookie("", 0)})


def cookies(headers: dict[str, str], wanted: str) -> list[str]:
    """Every value of cookie `wanted` in the `Cookie` header (parsed leniently: a malformed
    header is no cookie, never an error)."""
    found = []
    for part in headers.get("cookie", "").split(";"):
        name, sep, value = part.strip().partition("=")
        if sep and name == wanted and value:
            found.append(value.strip('"'))
    return found


def cookie_token(headers: dict[str, str]) -> str | None:
    """The refresh token of the `Cookie` header, if any; SeveralCookies when more than one
    arrived (never silently the first)."""
    found = cookies(headers, COOKIE)
    if len(found) > 1:
        raise SeveralCookies()
    return found[0] if found else None


def device_token(device_id: str, email: str, key: str) -> str:
    """A device cookie's value: the device id, bound to the email by an HMAC."""
    mac = hmac.new(key.encode(), f"device|{device_id}|{email}".encode(), hashlib.sha256).hexdigest()[:32]
    return f"{device_id}.{mac}"


def device_of(headers: dict[str, str], email: str, key: str) -> str | None:
    """The id of the device cookie valid for `email` among those sent, if any (several may arrive:
    the right one is taken, the others ignored)."""
    for value in cookies(headers, DEVICE_COOKIE):
        device_id, _, _ = value.partition(".")
        if device_id and hmac.compare_digest(value, device_token(device_id, email, key)):
            return device_id
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
