"""Login, logout, token authentication, user creation and the role guard every route uses."""

from __future__ import annotations

import functools
from typing import Any, Literal

from pydantic import Field

from chalicelib import audit, aws, config, errors, runtime, timeutil
from chalicelib.auth import passwords, tokens
from chalicelib.auth.store import EmailTaken, LoginAttempts, Sessions, Users
from chalicelib.http import Body

ROLES = ("admin", "editor", "viewer")
EMAIL_FAILURE_LIMIT = 5  # the contract: 429 once 5 attempts for an email failed in 15 minutes
IP_FAILURE_LIMIT = 20  # one address spraying many emails

__all__ = [
    "ROLES",
    "Credentials",
    "EmailTaken",
    "LoginThrottled",
    "NewUser",
    "create_user",
    "login",
    "logout",
    "require",
]


class LoginThrottled(errors.Throttled):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after} s", retry_after)


def users() -> Users:
    return Users(aws.table("users"))


def sessions() -> Sessions:
    return Sessions(aws.table("sessions"))


def attempts() -> LoginAttempts:
    return LoginAttempts(aws.table("login_attempts"))


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return passwords.dummy_hash(config.get().scrypt_n)


def public_user(user: dict[str, Any]) -> dict[str, Any]:
    return {"id": user.get("id") or user.get("user_id"), "email": user["email"], "role": user["role"]}


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_user(email: str, password: str, role: str) -> dict[str, Any]:
    """Raises EmailTaken."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    hashed = passwords.hash_password(password, config.get().scrypt_n)
    user = public_user(users().create(normalize_email(email), hashed, role))
    audit.record("user.create", resource=("user", user["id"]), details={"email": user["email"], "role": role})
    return user


def login(email: str, password: str, ip: str | None) -> dict[str, Any]:
    """A token for valid credentials. Raises LoginThrottled, or errors.Unauthenticated.

    A wrong password and an unknown email get the same answer after the same scrypt work.
    """
    email = normalize_email(email)
    keys = [f"email#{email}"] + ([f"ip#{ip}"] if ip else [])
    gate = attempts()
    wait = max(
        gate.locked_for(keys[0], EMAIL_FAILURE_LIMIT),
        gate.locked_for(keys[1], IP_FAILURE_LIMIT) if ip else 0,
    )
    if wait:
        audit.record("auth.login_failed", details={"email": email, "reason": "locked_out", "retry_after": wait})
        raise LoginThrottled(wait)
    user = users().by_email(email)
    ok = passwords.verify_password(password, user["password_hash"] if user else _dummy_hash())
    if not (user and ok):
        gate.record_failure(keys)
        reason = "wrong_password" if user else "unknown_email"
        audit.record(
            "auth.login_failed", user_id=user["id"] if user else None, details={"email": email, "reason": reason}
        )
        _record_lockouts(gate, keys, email)
        raise errors.Unauthenticated("invalid email or password")
    now = timeutil.now()
    token, claims = tokens.issue(
        user["id"], user["role"], config.secret(config.JWT_SECRET), now, config.get().jwt_ttl_seconds
    )
    sessions().create(claims.jti, user, claims.exp)
    audit.record(
        "auth.login", user_id=user["id"], user_email=user["email"], details={"email": email, "role": user["role"]}
    )
    return {"token": token, "expires_at": timeutil.iso(claims.exp), "user": public_user(user)}


def _record_lockouts(gate: LoginAttempts, keys: list[str], email: str) -> None:
    """A failure that just locked an email or an address (a burst from one IP) is a lockout."""
    for key, limit in zip(keys, (EMAIL_FAILURE_LIMIT, IP_FAILURE_LIMIT), strict=False):
        if gate.failures(key) == limit:
            scope, _, value = key.partition("#")
            audit.record("auth.lockout", details={"scope": scope, scope: value, "email": email, "failures": limit})


def authenticate(authorization: str | None) -> dict[str, Any]:
    """The user behind `Authorization: Bearer <jwt>`, or errors.Unauthenticated."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("missing bearer token")
    return authenticate_token(token.strip())


def authenticate_token(token: str) -> dict[str, Any]:
    try:
        claims = tokens.verify(token, config.secret(config.JWT_SECRET), timeutil.now())
    except tokens.InvalidToken as exc:
        raise errors.Unauthenticated(f"invalid token: {exc}") from None
    session = sessions().get(claims.jti)
    if session is None or session["user_id"] != claims.sub:
        raise errors.Unauthenticated("token has been revoked")
    return {**public_user(session), "jti": claims.jti, "exp": claims.exp}


def logout(user: dict[str, Any]) -> None:
    sessions().revoke(user["jti"])
    audit.record("auth.logout", user_id=user["id"])


def require(*roles: str) -> dict[str, Any]:
    """The authenticated caller of the running REST request, who must hold one of `roles`
    (any role when none is given). 401 without valid credentials, 403 without the role."""
    inv = runtime.current()
    user = authenticate(inv.headers.get("authorization"))
    inv.user = user
    if roles and user["role"] not in roles:
        audit.record("security.forbidden", details={"needs": list(roles), "role": user["role"]})
        raise errors.Forbidden(f"this needs the role {' or '.join(roles)}")
    return user


class Credentials(Body):
    email: str = Field(min_length=3, max_length=254)
    password: str = Field(min_length=1, max_length=256)


class NewUser(Body):
    email: str = Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    password: str = Field(min_length=8, max_length=256)
    role: Literal["admin", "editor", "viewer"]
