"""HS256 JWTs: issued at login, verified on every authenticated call.

Verification names the algorithm, requires every claim and checks issuer and audience; any
failure is one `InvalidToken`, answered 401 by the caller.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

import jwt

ISSUER = "inkwell"
AUDIENCE = "inkwell-api"
ALGORITHM = "HS256"
REQUIRED = ["sub", "role", "jti", "iat", "exp", "iss", "aud"]


class InvalidToken(Exception):
    """The token is missing, malformed, forged, expired or not valid yet."""


@dataclass(frozen=True)
class Claims:
    sub: str
    role: str
    jti: str
    iat: int
    exp: int
    sid: str = ""  # the session (refresh family) the token belongs to; tokens from before sessions: their jti


def issue(
    user_id: str, role: str, secret: str, now: float, ttl_seconds: int, sid: str | None = None
) -> tuple[str, Claims]:
    jti = uuid.uuid4().hex
    claims = Claims(sub=user_id, role=role, jti=jti, iat=int(now), exp=int(now) + ttl_seconds, sid=sid or jti)
    payload: dict[str, Any] = {**claims.__dict__, "iss": ISSUER, "aud": AUDIENCE}
    return jwt.encode(payload, secret, algorithm=ALGORITHM), claims


def verify(token: str, secret: str, now: float) -> Claims:
    try:
        payload = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            audience=AUDIENCE,
            issuer=ISSUER,
            # Times are checked below against the injected clock, not pyjwt's wall clock.
            options={"require": REQUIRED, "verify_exp": False, "verify_iat": False, "verify_nbf": False},
        )
    except jwt.PyJWTError as exc:
        raise InvalidToken(str(exc)) from None
    except UnicodeEncodeError:  # a lone surrogate ("\ud800") cannot even be encoded
        raise InvalidToken("not a token") from None
    nbf = payload.get("nbf", 0)
    if not isinstance(nbf, (int, float)) or isinstance(nbf, bool) or nbf > now:
        raise InvalidToken("token is not valid yet")
    if not all(isinstance(payload[k], str) and payload[k] for k in ("sub", "role", "jti")) or not all(
        isinstance(payload[k], int) and not isinstance(payload[k], bool) for k in ("iat", "exp")
    ):
        raise InvalidToken("malformed claims")
    if payload["iat"] > now + 5:  # issued in the future: not valid yet
        raise InvalidToken("token is not valid yet")
    if payload["exp"] <= now:
        raise InvalidToken("token has expired")
    sid = payload.get("sid", payload["jti"])
    if not isinstance(sid, str) or not sid:
        raise InvalidToken("malformed claims")
    return Claims(
        sub=payload["sub"], role=payload["role"], jti=payload["jti"], iat=payload["iat"], exp=payload["exp"], sid=sid
    )
