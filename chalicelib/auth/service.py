"""Login, sessions (refresh, logout, revocation), token authentication, users and the role guard
every route uses.

A login starts a session: an access token (a JWT, `INKWELL_JWT_TTL_SECONDS`) naming the session
in `sid`, and an opaque refresh token. Every authenticated request reads the session (one
consistent GetItem), so deleting it refuses its tokens at once; refreshing rotates the refresh
token (each works once) and a used one presented again revokes the session.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import re
import secrets
import uuid
from typing import Any, Literal

from pydantic import Field, StrictBool

from chalicelib import audit, aws, config, errors, events, runtime, secret, timeutil
from chalicelib.audit import floods
from chalicelib.auth import browser, gate, passwords, tokens
from chalicelib.auth.store import EmailTaken, SessionGone, TokenUsed, public_user, refresh_tokens, sessions, users
from chalicelib.http import Body

ROLES = ("admin", "editor", "viewer")
EMAIL_FAILURE_LIMIT = 5  # the contract: 429 once 5 attempts for an email failed in 15 minutes
IP_FAILURE_LIMIT = 20  # one address spraying many emails
DEVICE_FAILURE_LIMIT = 5  # a device that logged in to the email before: its own budget
EMAIL_SHAPE = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

__all__ = [
    "ROLES",
    "Credentials",
    "EmailTaken",
    "LoginThrottled",
    "NewUser",
    "create_user",
    "login",
    "logout",
    "refresh",
    "require",
]


class LoginThrottled(errors.Throttled):
    def __init__(self, retry_after: int) -> None:
        super().__init__(f"too many failed logins; retry after {retry_after} s", retry_after)


def attempts() -> gate.Gate:
    return gate.Gate(aws.table("login_attempts"))


@functools.lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return passwords.dummy_hash(config.get().scrypt_n)


def listed_user(user: dict[str, Any]) -> dict[str, Any]:
    """A user as `GET /api/users` and `PATCH /api/users/{id}` answer it."""
    return {**public_user(user), "disabled": bool(user.get("disabled")), "created_at": user["created_at"]}


def normalize_email(email: str) -> str:
    return email.strip().lower()


def create_user(email: str, password: str, role: str) -> dict[str, Any]:
    """Raises EmailTaken."""
    if role not in ROLES:
        raise ValueError(f"unknown role {role!r}")
    if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        raise ValueError(f"a password needs {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters")
    hashed = passwords.hash_password(password, config.get().scrypt_n)
    user = public_user(users().create(normalize_email(email), hashed, role))
    audit.record("user.create", resource=("user", user["id"]), details={"email": user["email"], "role": role})
    return user


def login(email: str, password: str, ip: str | None, headers: dict[str, str] | None = None) -> dict[str, Any]:
    """A token for valid credentials. Raises LoginThrottled, or errors.Unauthenticated.

    A slot of each attempt budget is reserved before the password is checked (`gate`), so
    concurrent attempts check no more than the limits; a right password gives its slots back.
    A wrong password, an unknown email and a disabled account get the same answer after the
    same scrypt work (a disabled account's right password is not confirmed). The answer's
    `device` is the device cookie's value (`browser`).
    """
    email = normalize_email(email)
    shown = shown_email(email)
    key = _attempt_key()
    device = browser.device_of(headers or {}, email, key)
    budgets = _budgets(email, ip, device, key)
    g, attempt = attempts(), uuid.uuid4().hex
    last = _reserve(g, budgets, attempt, ip, shown)
    user = users().by_email(email)
    stored = user["password_hash"] if user else _dummy_hash()
    ok = passwords.verify_password(password, stored)
    if not (user and ok and not user.get("disabled")):
        reason = "unknown_email" if not user else "wrong_password" if not ok else "disabled"
        audit.record(
            "auth.login_failed", user_id=user["id"] if user else None, details={"email": shown, "reason": reason}
        )
        for (budget, limit), filled in zip(budgets, last, strict=True):
            if filled:  # this failure took the budget's last slot
                scope = budget.partition("#")[0]
                audit.record("auth.lockout", details={"scope": scope, "email": shown, "ip": ip, "failures": limit})
        raise errors.Unauthenticated("invalid email or password")
    for budget, _ in budgets:
        g.release(budget, attempt)
    _rehash(user, password, stored)
    now = timeutil.now()
    sid, refresh_token = uuid.uuid4().hex, new_refresh_token()
    settings = config.get()
    cap = now + settings.refresh_max_seconds
    refresh_expires = min(now + settings.refresh_ttl_seconds, cap)
    try:
        refresh_tokens().start(sid, user, refresh_token, refresh_expires, cap)
    except SessionGone:  # disabled or given another role while logging in
        raise errors.Unauthenticated("the account changed while logging in; try again") from None
    audit.record(
        "auth.login",
        user_id=user["id"],
        user_email=user["email"],
        details={"email": email, "role": user["role"], "session": sid},
    )
    answer = _session_answer(user, sid, refresh_token, refresh_expires, now)
    return {**answer, "device": browser.device_token(device or uuid.uuid4().hex, email, key)}


def _attempt_key() -> str:
    """The key of the email budgets' hashes and the device cookies' HMACs: derived from the JWT
    secret (rotating it forgets known devices), never the signing key itself."""
    return hmac.new(secret.get(config.JWT_SECRET).encode(), b"inkwell login attempts", hashlib.sha256).hexdigest()


def shown_email(email: str) -> str:
    """What the audit trail and the admins see of the email field: the email, or a mark when it
    is not shaped like one (a password typed into the wrong field is never stored)."""
    return email if EMAIL_SHAPE.match(email) else "(not an email)"


def _budgets(email: str, ip: str | None, device: str | None, key: str) -> list[tuple[str, int]]:
    """The attempt budgets a login draws on: a known device's own, else the email's and the
    address's (docs/security.md, Login throttling)."""
    if device:
        return [(f"device#{device}", DEVICE_FAILURE_LIMIT)]
    return [(gate.email_key(email, key), EMAIL_FAILURE_LIMIT)] + ([(f"ip#{ip}", IP_FAILURE_LIMIT)] if ip else [])


def _reserve(g: gate.Gate, budgets: list[tuple[str, int]], attempt: str, ip: str | None, shown: str) -> list[bool]:
    """Reserve a slot of every budget, or none (LoginThrottled, audited as a count per address
    and minute). For each budget, whether this attempt took its last free slot."""
    taken: list[bool] = []
    for budget, limit in budgets:
        wait, left = g.reserve(budget, limit, attempt)
        if wait:
            for held, _ in budgets[: len(taken)]:
                g.release(held, attempt)
            scope = budget.partition("#")[0]
            floods.note("auth.login_throttled", ("ip", ip or "-"), {"email": shown, "scope": scope})
            raise LoginThrottled(wait)
        taken.append(left == 0)
    return taken


def _rehash(user: dict[str, Any], password: str, stored: str) -> None:
    """Store a right password again at the current cost when its hash was made cheaper."""
    n = config.get().scrypt_n
    if passwords.needs_rehash(stored, n):
        users().set_password(user["id"], stored, passwords.hash_password(password, n))


def new_refresh_token() -> str:
    return secrets.token_urlsafe(32)  # 256 bits


def _session_answer(user: dict[str, Any], sid: str, refresh_token: str, refresh_expires: float, now: float) -> dict:
    """The login (and refresh) answer: a new access token of session `sid`, and its refresh token."""
    token, claims = tokens.issue(
        user.get("id") or user["user_id"],
        user["role"],
        secret.get(config.JWT_SECRET),
        now,
        config.get().jwt_ttl_seconds,
        sid=sid,
    )
    return {
        "token": token,
        "expires_at": timeutil.iso(claims.exp),
        "refresh_token": refresh_token,
        "refresh_expires_at": timeutil.iso(refresh_expires),
        "user": public_user(user),
    }


def refresh(refresh_token: str) -> dict[str, Any]:
    """Rotate `refresh_token`: the login answer with a new access and refresh token, or
    errors.Unauthenticated. A token used before revokes its session (reuse: a copy was stolen,
    or a client replayed it), which is audited as `security.refresh_reuse` and alerted."""
    now = timeutil.now()
    held = refresh_tokens().get(refresh_token)
    if held is None or int(held["ttl"]) <= now:
        raise errors.Unauthenticated("invalid or expired refresh token")
    session = sessions().get(held["sid"])
    if session is None:
        audit.record("auth.token_refused", user_id=held["user_id"], details={"reason": "session_ended"})
        raise errors.Unauthenticated("the session has ended; log in again")
    if held.get("used_at"):
        _reused(held, session)
    new_token = new_refresh_token()
    expires = min(now + config.get().refresh_ttl_seconds, int(session.get("refresh_cap", now)))
    if expires <= now:
        raise errors.Unauthenticated("the session has reached its maximum lifetime; log in again")
    try:
        refresh_tokens().rotate(refresh_token, session, new_token, expires)
    except TokenUsed:  # a concurrent refresh with the same token won: a reuse all the same
        _reused(held, session)
    except SessionGone:
        raise errors.Unauthenticated("the session has ended; log in again") from None
    runtime.current().user = public_user(session)
    audit.record("auth.refresh", user_id=session["user_id"], details={"session": session["jti"]})
    return _session_answer(session, session["jti"], new_token, expires, now)


def _reused(held: dict[str, Any], session: dict[str, Any]) -> None:
    end_sessions(held["user_id"], sids=(held["sid"],))
    audit.record(
        "security.refresh_reuse",
        user_id=held["user_id"],
        user_email=session.get("email"),
        resource=("session", held["sid"]),
        details={"email": session.get("email"), "used_at": held.get("used_at")},
    )
    raise errors.Unauthenticated("refresh token already used; the session is revoked")


def end_sessions(user_id: str, sids: tuple[str, ...] | None = None, kept: tuple[str, ...] = ()) -> int:
    """Revoke sessions `sids` of the user, or (None) all of them but `kept`, and have their live
    WebSocket connections closed (`events.SessionsRevoked`). Returns how many were revoked."""
    store = sessions()
    targets = sids if sids is not None else tuple(s for s in store.of_user(user_id) if s not in kept)
    revoked = sum(1 for sid in targets if store.revoke(sid))
    events.publish(events.SessionsRevoked(user_id, sids, kept))
    return revoked


def authenticate(authorization: str | None) -> dict[str, Any]:
    """The user behind `Authorization: Bearer <jwt>`, or errors.Unauthenticated."""
    scheme, _, token = (authorization or "").strip().partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise errors.Unauthenticated("missing bearer token")
    return authenticate_token(token.strip())


def authenticate_token(token: str) -> dict[str, Any]:
    try:
        claims = tokens.verify(token, secret.get(config.JWT_SECRET), timeutil.now())
    except tokens.InvalidToken as exc:
        raise errors.Unauthenticated(f"invalid token: {exc}") from None
    session = sessions().get(claims.sid)
    if session is None or session["user_id"] != claims.sub:
        raise errors.Unauthenticated("token has been revoked")
    # `jti` names the session: what tickets and connections record, and what logout revokes.
    return {**public_user(session), "jti": claims.sid, "exp": claims.exp}


def logout(user: dict[str, Any]) -> None:
    end_sessions(user["id"], sids=(user["jti"],))
    audit.record("auth.logout", user_id=user["id"], details={"session": user["jti"]})


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
    password: str = Field(min_length=passwords.MIN_LENGTH, max_length=passwords.MAX_LENGTH)
    role: Literal["admin", "editor", "viewer"]


# --- users ----------------------------------------------------------------------------------------

UPDATE_ATTEMPTS = 5  # a PATCH that lost a race reads the user (and the admins) again


def list_users(params: dict[str, str]) -> dict[str, Any]:
    """`GET /api/users?role=&limit=&cursor=`: by role (admins, editors, viewers), oldest first."""
    from chalicelib import http

    role = params.get("role")
    if role is not None and role not in ROLES:
        raise errors.Invalid(f"must be one of {', '.join(ROLES)}", "role")
    roles = [role] if role else list(ROLES)
    limit = http.limit_param(params)
    start = http.decode_cursor(params, {"id", "role", "created_at"}, scope=f"users:{role or '*'}")
    if start:
        if start["role"] not in roles:
            raise errors.Invalid("is not a cursor this API returned", "cursor")
        roles = roles[roles.index(start["role"]) :]
    items: list[dict[str, Any]] = []
    last: dict[str, Any] | None = None
    for i, each in enumerate(roles):
        page, last = users().by_role(each, limit - len(items), start if start and start["role"] == each else None)
        items += page
        if len(items) >= limit:
            more = last is not None or i < len(roles) - 1
            cursor = {k: items[-1][k] for k in ("id", "role", "created_at")} if more else None
            return http.page([listed_user(u) for u in items], cursor, scope=f"users:{role or '*'}")
    return http.page([listed_user(u) for u in items], None)


def _active_admin(user: dict[str, Any]) -> bool:
    return user["role"] == "admin" and not user.get("disabled")


def _other_active_admins(user_id: str) -> list[str]:
    found: list[str] = []
    start: dict[str, Any] | None = None
    while len(found) < UPDATE_ATTEMPTS:
        page, start = users().by_role("admin", 50, start)
        found += [u["id"] for u in page if u["id"] != user_id and not u.get("disabled")]
        if not start:
            break
    return found[:UPDATE_ATTEMPTS]


def update_user(user_id: str, role: str | None, disabled: bool | None) -> dict[str, Any]:
    """`PATCH /api/users/{id}`. The last active admin can be neither demoted nor disabled (409):
    a change that ends an active admin runs in one transaction with a check that another admin is
    still active, so two admins demoting each other at once cannot both succeed. A user whose
    role or standing changed loses every session."""
    for _ in range(UPDATE_ATTEMPTS):
        user = users().get(user_id)
        if user is None:
            raise errors.NotFound("user")
        changes: dict[str, Any] = {}
        if role is not None and role != user["role"]:
            changes["role"] = role
        if disabled is not None and disabled != bool(user.get("disabled")):
            changes["disabled"] = disabled
        if not changes:
            return listed_user(user)
        others: list[str | None] = [None]
        if _active_admin(user) and not _active_admin({**user, **changes}):
            others = list(_other_active_admins(user_id))
            if not others:
                raise errors.Conflict("the last active admin can be neither demoted nor disabled")
        for other in others:
            updated = users().update(user, changes, other_admin=other)
            if updated is not None:
                end_sessions(user_id)
                audit.record(
                    "user.update",
                    resource=("user", user_id),
                    details={"email": user["email"], **{k: changes[k] for k in changes}, "was_role": user["role"]},
                )
                return listed_user(updated)
    raise errors.Conflict("the last active admin can be neither demoted nor disabled")


def change_password(caller: dict[str, Any], current: str, new: str) -> None:
    """`POST /api/auth/password`: 400 naming `current_password` when it is wrong; the caller's
    other sessions end, this one stays."""
    user = users().get(caller["id"])
    if user is None:
        raise errors.Unauthenticated("token has been revoked")
    # Wrong current passwords count as failed logins of the email: a stolen access token cannot
    # be used to guess the password faster than the login form allows.
    g, attempt = attempts(), uuid.uuid4().hex
    budget = gate.email_key(user["email"], _attempt_key())
    wait, _ = g.reserve(budget, EMAIL_FAILURE_LIMIT, attempt)
    if wait:
        raise LoginThrottled(wait)
    if not passwords.verify_password(current, user["password_hash"]):
        audit.record("auth.password_change_failed", details={"reason": "wrong_current_password"})
        raise errors.Invalid("is not your current password", "current_password")
    g.release(budget, attempt)
    new_hash = passwords.hash_password(new, config.get().scrypt_n)
    if not users().set_password(user["id"], user["password_hash"], new_hash):
        raise errors.Conflict("the password changed meanwhile; try again")
    ended = end_sessions(user["id"], kept=(caller["jti"],))
    audit.record("auth.password_changed", resource=("user", user["id"]), details={"sessions_ended": ended})


class Refresh(Body):
    refresh_token: str = Field(min_length=1, max_length=256)


class PasswordChange(Body):
    current_password: str = Field(min_length=1, max_length=256)
    new_password: str = Field(min_length=passwords.MIN_LENGTH, max_length=passwords.MAX_LENGTH)


class UserChanges(Body):
    role: Literal["admin", "editor", "viewer"] | None = None
    disabled: StrictBool | None = None
