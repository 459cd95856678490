"""Auth's REST routes: login, refresh, logout, me, password change, and users (admin)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.auth.access import route
from chalicelib.routing import ADMIN, ANYONE, PAGE, USERS, Op, Param

routes = Blueprint(__name__)


@route(
    routes,
    "POST /api/auth/login",
    Op(
        "Log in: a bearer token",
        ANYONE,
        "Login",
        body="chalicelib.auth.service:Credentials",
        errors={
            401: "wrong credentials",
            429: "5 failed attempts for that email (or 20 for that address) within 15 minutes",
        },
    ),
)
def login() -> object:
    from chalicelib import http, runtime
    from chalicelib.auth import browser
    from chalicelib.auth import service as auth

    body = http.parse(auth.Credentials, routes.current_request)
    inv = runtime.current()
    session = auth.login(body.email, body.password, inv.ip, inv.headers)
    return browser.answer(session) if browser.wants_cookie(inv.headers) else browser.api_answer(session)


@route(
    routes,
    "POST /api/auth/refresh",
    Op(
        "Rotate a refresh token: the login answer with a new token pair; a used one ends its session",
        ANYONE,
        "Login",
        body="chalicelib.auth.service:Refresh",
        body_required=False,
        cookie=True,
        errors={401: "unknown, expired or already used refresh token", 403: "a cookie request from another origin"},
    ),
)
def refresh() -> object:
    from chalicelib import errors, http, runtime
    from chalicelib.auth import browser
    from chalicelib.auth import service as auth

    inv = runtime.current()
    if browser.wants_cookie(inv.headers):  # a browser: the token is in the cookie (module docstring)
        browser.check_same_origin(inv.headers)
        try:
            token = browser.cookie_token(inv.headers)
        except browser.SeveralCookies:
            raise errors.Unauthenticated("several session cookies arrived; log in again") from None
        if not token:
            raise errors.Unauthenticated("no session cookie; log in again")
        return browser.answer(auth.refresh(token))
    body = http.parse(auth.Refresh, routes.current_request)
    return auth.refresh(body.refresh_token)


@route(
    routes,
    "POST /api/auth/password",
    Op(
        "Change your own password; your other sessions end",
        USERS,
        status=204,
        body="chalicelib.auth.service:PasswordChange",
        errors={429: "5 wrong current passwords within 15 minutes"},
    ),
)
def change_password(user: dict) -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth

    body = http.parse(auth.PasswordChange, routes.current_request)
    auth.change_password(user, body.current_password, body.new_password)
    return http.no_content()


@route(routes, "POST /api/auth/logout", Op("Log out: the session and its refresh tokens end", USERS, status=204))
def logout(user: dict) -> object:
    from chalicelib.auth import browser
    from chalicelib.auth import service as auth

    auth.logout(user)
    return browser.logged_out()


@route(routes, "GET /api/auth/me", Op("The caller", USERS, "User"))
def me(user: dict) -> dict:
    from chalicelib.auth import service as auth

    return auth.public_user(user)


@route(
    routes,
    "POST /api/users",
    Op(
        "Create a user", ADMIN, "User", 201, body="chalicelib.auth.service:NewUser", errors={409: "that email is taken"}
    ),
)
def create_user(user: dict) -> object:
    from chalicelib import errors, http
    from chalicelib.auth import service as auth

    body = http.parse(auth.NewUser, routes.current_request)
    try:
        created = auth.create_user(body.email, body.password, body.role)
    except auth.EmailTaken:
        raise errors.Conflict("that email is taken") from None
    return http.created(created)


@route(
    routes,
    "GET /api/users",
    Op(
        "Users, oldest first",
        ADMIN,
        "UserPage",
        query=(Param("role", {"enum": ["admin", "editor", "viewer"]}, "only this role"), *PAGE),
    ),
)
def list_users(user: dict) -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth

    return auth.list_users(http.query(routes.current_request))


@route(
    routes,
    "PATCH /api/users/{user_id}",
    Op(
        "Change a user's role or disable them; their sessions end",
        ADMIN,
        "ListedUser",
        body="chalicelib.auth.service:UserChanges",
        errors={409: "it would demote or disable the last active admin"},
    ),
)
def update_user(user: dict, user_id: str) -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth

    body = http.parse(auth.UserChanges, routes.current_request)
    return auth.update_user(user_id, body.role, body.disabled)
