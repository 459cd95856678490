"""Login, logout, the role guard and the lockout, through the REST API on moto."""

from __future__ import annotations

import time

import jwt
import pytest

from chalicelib import timeutil
from chalicelib.auth import tokens
from tests.conftest import ROLE_PASSWORD, TEST_ENV, body


def test_login_returns_a_token_and_the_user(api):
    user = api.user("editor")
    response = api.post("/api/auth/login", {"email": user["email"].upper(), "password": ROLE_PASSWORD})
    assert response.status_code == 200
    data = body(response)
    assert data["user"] == {"id": user["id"], "email": user["email"], "role": "editor"}
    assert data["expires_at"].endswith("Z")
    claims = jwt.decode(data["token"], TEST_ENV["JWT_SECRET"], algorithms=["HS256"], audience="inkwell-api")
    assert {"sub", "role", "jti", "iat", "exp", "iss", "aud"} <= set(claims)


def test_me_answers_the_caller(api):
    response = api.get("/api/auth/me", as_="viewer")
    assert response.status_code == 200
    assert body(response)["role"] == "viewer"


def test_wrong_password_and_unknown_email_get_the_same_answer(api):
    user = api.user("viewer")
    wrong = api.post("/api/auth/login", {"email": user["email"], "password": "nope"})
    unknown = api.post("/api/auth/login", {"email": "ghost@example.com", "password": "nope"})
    assert wrong.status_code == unknown.status_code == 401
    assert body(wrong) == body(unknown)


def test_logout_revokes_the_token(api):
    token = api.token("editor")
    assert api.post("/api/auth/logout", token=token).status_code == 204
    response = api.get("/api/auth/me", token=token)
    assert response.status_code == 401
    assert "revoked" in body(response)["Message"]


def test_five_failures_lock_the_email_even_for_the_right_password(api):
    user = api.user("editor")
    for _ in range(5):
        assert api.post("/api/auth/login", {"email": user["email"], "password": "bad"}).status_code == 401
    response = api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD})
    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 15 * 60 + 1


def test_lockout_ends_when_the_window_passes(api, monkeypatch):
    user = api.user("editor")
    for _ in range(5):
        api.post("/api/auth/login", {"email": user["email"], "password": "bad"})
    later = time.time() + 15 * 60 + 2
    monkeypatch.setattr(timeutil, "now", lambda: later)
    response = api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD})
    assert response.status_code == 200


def test_lockout_of_one_email_leaves_others_alone(api):
    locked, other = api.user("editor"), api.user("viewer")
    for _ in range(5):
        api.post("/api/auth/login", {"email": locked["email"], "password": "bad"})
    assert api.post("/api/auth/login", {"email": other["email"], "password": ROLE_PASSWORD}).status_code == 200


def test_an_address_failing_across_many_emails_is_throttled(api):
    for i in range(20):
        api.post("/api/auth/login", {"email": f"spray{i}@example.com", "password": "bad"})
    user = api.user("viewer")
    assert api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD}).status_code == 429


def test_admin_creates_users_and_emails_are_unique(api):
    new = {"email": "writer@example.com", "password": "a long password", "role": "editor"}
    response = api.post("/api/users", new, as_="admin")
    assert response.status_code == 201
    assert body(response)["email"] == "writer@example.com"
    again = api.post("/api/users", dict(new, email="Writer@Example.com"), as_="admin")
    assert again.status_code == 409


def _real_claims(api, role="admin"):
    return jwt.decode(api.token(role), options={"verify_signature": False})


SECRET = TEST_ENV["JWT_SECRET"]


@pytest.mark.parametrize(
    "make_token",
    [
        pytest.param(lambda c: jwt.encode(c, None, algorithm="none"), id="alg-none"),
        pytest.param(lambda c: jwt.encode(c, SECRET, algorithm="HS512"), id="other-algorithm"),
        pytest.param(
            lambda c: jwt.encode(c, "another-secret-" + "0123456789abcdef" * 4, algorithm="HS256"), id="bad-signature"
        ),
        pytest.param(lambda c: jwt.encode(dict(c, exp=int(time.time()) - 1), SECRET, algorithm="HS256"), id="expired"),
        pytest.param(
            lambda c: jwt.encode(dict(c, iat=int(time.time()) + 3600), SECRET, algorithm="HS256"), id="not-yet-valid"
        ),
        pytest.param(
            lambda c: jwt.encode(dict(c, nbf=int(time.time()) + 3600), SECRET, algorithm="HS256"), id="nbf-future"
        ),
        pytest.param(lambda c: jwt.encode(dict(c, iss="someone"), SECRET, algorithm="HS256"), id="wrong-iss"),
        pytest.param(lambda c: jwt.encode(dict(c, aud="other"), SECRET, algorithm="HS256"), id="wrong-aud"),
        pytest.param(
            lambda c: jwt.encode({k: v for k, v in c.items() if k != "jti"}, SECRET, algorithm="HS256"),
            id="missing-jti",
        ),
        pytest.param(
            lambda c: jwt.encode({k: v for k, v in c.items() if k != "exp"}, SECRET, algorithm="HS256"),
            id="missing-exp",
        ),
        pytest.param(lambda c: jwt.encode(dict(c, sid="not-a-session"), SECRET, algorithm="HS256"), id="unknown-sid"),
        pytest.param(
            lambda c: jwt.encode({k: v for k, v in c.items() if k != "sid"}, SECRET, algorithm="HS256"),
            id="no-sid-and-a-jti-naming-no-session",
        ),
        pytest.param(lambda c: "garbage", id="garbage"),
        pytest.param(lambda c: "a.b.c", id="three-garbage-parts"),
    ],
)
def test_jwt_attacks_are_refused(api, make_token):
    claims = _real_claims(api)
    response = api.get("/api/auth/me", token=make_token(claims))
    assert response.status_code == 401


def test_a_valid_token_of_a_revoked_session_is_refused(api):
    token = api.token("admin")
    api.post("/api/auth/logout", token=token)
    assert api.get("/api/auth/me", token=token).status_code == 401


def test_bearer_scheme_is_required(api):
    token = api.token("admin")
    assert api.get("/api/auth/me", headers={"authorization": f"Token {token}"}).status_code == 401


def test_verify_rejects_tokens_past_their_expiry_by_our_clock():
    token, claims = tokens.issue("u", "admin", SECRET, time.time(), 60)
    with pytest.raises(tokens.InvalidToken):
        tokens.verify(token, SECRET, claims.exp + 1)
