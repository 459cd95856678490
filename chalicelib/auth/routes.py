"""Auth's REST routes: login, logout, me, and user creation (admin)."""

from __future__ import annotations

from chalice import Blueprint

from chalicelib.apidoc import ADMIN, ANYONE, USERS, Op

routes = Blueprint(__name__)

DOCS = {
    "POST /api/auth/login": Op(
        "Log in: a bearer token",
        ANYONE,
        "Login",
        body="chalicelib.auth.service:Credentials",
        errors={401: "wrong credentials", 429: "5 failed attempts for that email within 15 minutes"},
    ),
    "POST /api/auth/logout": Op("Log out: the token is revoked", USERS, status=204),
    "GET /api/auth/me": Op("The caller", USERS, "User"),
    "POST /api/users": Op(
        "Create a user", ADMIN, "User", 201, body="chalicelib.auth.service:NewUser", errors={409: "that email is taken"}
    ),
}


@routes.route("/api/auth/login", methods=["POST"])
def login() -> object:
    from chalicelib import http, runtime
    from chalicelib.auth import service as auth

    body = http.parse(auth.Credentials, routes.current_request)
    return auth.login(body.email, body.password, runtime.current().ip)


@routes.route("/api/auth/logout", methods=["POST"])
def logout() -> object:
    from chalicelib import http
    from chalicelib.auth import service as auth

    auth.logout(auth.require())
    return http.no_content()


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
