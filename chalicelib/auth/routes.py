"""Auth's REST routes: login, logout, me, and user creation (admin)."""

from __future__ import annotations

from chalice import Blueprint

routes = Blueprint(__name__)


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
