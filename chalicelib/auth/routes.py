"""Auth's REST routes: login, refresh, logout, me, password change, and users (admin)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.apidoc import ADMIN, ANYONE, PAGE, USERS, Op, Param

routes = Blueprint(__name__)

DOCS = {
    "POST /api/auth/login": Op(
        "Log in: a bearer token",
        ANYONE,
        "Login",
        body="chalicelib.auth.service:Credentials",
        errors={401: "wrong credentials", 429: "5 failed attempts for that email within 15 minutes"},
    ),
    "POST /api/auth/refresh": Op(
        "Rotate a refresh token: the login answer with a new token pair; a used one ends its session",
        ANYONE,
        "Login",
        body="chalicelib.auth.service:Refresh",
        body_required=False,
        cookie=True,
        errors={401: "unknown, expired or already used refresh token", 403: "a cookie request from another origin"},
    ),
    "POST /api/auth/password": Op(
        "Change your own password; your other sessions end",
        USERS,
        status=204,
        body="chalicelib.auth.service:PasswordChange",
        errors={429: "5 wrong current passwords within 15 minutes"},
    ),
    "POST /api/auth/logout": Op("Log out: the session and its refresh tokens end", USERS, status=204),
    "GET /api/auth/me": Op("The caller", USERS, "User"),
    "POST /api/users": Op(
        "Create a user", ADMIN, "User", 201, body="chalicelib.auth.service:NewUser", errors={409: "that email is taken"}
    ),
    "GET /api/users": Op(
        "Users, oldest first",
        ADMIN,
        "UserPage",
        query=(Param("role", {"enum": ["admin", "editor", "viewer"]}, "only this role"), *PAGE),
    ),
    "PATCH /api/users/{user_id}": Op(
        "Change a user's role or disable them; their sessions end",
        ADMIN,
        "ListedUser",
        body="chalicelib.auth.service:UserChanges",
        errors={409: "it would demote or disable the last active admin"},
    ),
}


@routes.route("/api/auth/login", methods=["POST"])
def login() -> object:
    from chalicelib import http, runtime
    from chalicelib.auth import browser
    from chalicelib.auth import service as auth

    body = http.parse(auth.Credentials, routes.current_request)
    inv = runtime.current()
    session = auth.login(body.email, body.password, inv.ip)
    return browser.answer(session) if browser.wants_cookie(inv.headers) else session


@routes.route("/api/auth/refresh", methods=["POST"])
def refresh() -> object:
    from chalicelib import errors, http, runtime
    from chalicelib.auth import browser
    from chalicelib.auth import service as auth

    inv = runtime.current()
    if browser.wants_cookie(inv.headers):  # a browser: the token is in the cookie (module docstring)
        browser.check_same_origin(inv.headers)
        token = browser.cookie_token(inv.headers)
        if not token:
            raise errors.Unauthenticated("no session cookie; log in again")
        return browser.answer(auth.refresh(token))
    body = http.parse(auth.Refresh, routes.current_request)
    return auth.refresh(body.refresh_token)


@routes.route("/api/auth/password", methods=["POST"])
def change_password() -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth

    caller = auth.require()
    body = http.parse(auth.PasswordChange, routes.current_request)
    auth.change_password(caller, body.current_password, body.new_password)
    return http.no_content()


@routes.route("/api/auth/logout", methods=["POST"])
def logout() -> object:
    from chalicelib.auth import browser
    from chalicelib.auth import service as auth

    auth.logout(auth.require())
    return browser.logged_out()


@routes.route("/api/auth/me")
def me() -> dict:
    from chalicelib.auth import service as auth

    return auth.public_user(auth.require())


@routes.route("/api/users", methods=["POST"])
def create_user() -> object:
    from chalicelib import errors, http
    from chalicelib.auth import service as auth

    auth.require("admin")
    body = http.parse(auth.NewUser, routes.current_request)
    try:
        user = auth.create_user(body.email, body.password, body.role)
    except auth.EmailTaken:
        raise errors.Conflict("that email is taken") from None
    return http.created(user)


@routes.route("/api/users")
def list_users() -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth

    auth.require("admin")
    return auth.list_users(http.query(routes.current_request))


@routes.route("/api/users/{user_id}", methods=["PATCH"])
def update_user(user_id: str) -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth

    auth.require("admin")
    body = http.parse(auth.UserChanges, routes.current_request)
    return auth.update_user(user_id, body.role, body.disabled)
