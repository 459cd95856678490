"""Sessions through the REST and WebSocket APIs on moto: refresh tokens (rotation, reuse,
lifetimes), revocation reaching tokens, refresh tokens and live connections, password changes,
and user management (listing, disabling, role changes, the last admin)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest

from chalicelib import aws, events, timeutil
from chalicelib.auth import browser, store
from chalicelib.realtime import sender as sender_module
from tests.conftest import ROLE_PASSWORD, body
from tests.functional.ws_support import FakeManagement, Gateway


@pytest.fixture
def management(monkeypatch: pytest.MonkeyPatch) -> FakeManagement:
    fake = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: fake)
    return fake


@pytest.fixture
def gw(app, management) -> Gateway:
    import app as app_module

    return Gateway(app_module, management)


@pytest.fixture
def alerts() -> Any:
    got: list[events.Alert] = []
    unsubscribe = events.subscribe(events.Alert, got.append)
    yield got
    unsubscribe()


def login(api, role: str, password: str = ROLE_PASSWORD) -> dict[str, Any]:
    response = api.post("/api/auth/login", {"email": api.user(role)["email"], "password": password})
    assert response.status_code == 200, response.body
    return body(response)


def refresh(api, token: str) -> Any:
    return api.post("/api/auth/refresh", {"refresh_token": token})


def connect(gw, api, token: str) -> str:
    response = api.post("/api/realtime/ticket", token=token)
    assert response.status_code == 200, response.body
    cid, answer = gw.connect(ticket=body(response)["ticket"])
    assert answer["statusCode"] == 200, answer
    return cid


def later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    at = time.time() + seconds
    monkeypatch.setattr(timeutil, "now", lambda: at)


# --- refresh tokens --------------------------------------------------------------------------------


def test_login_answers_a_short_access_token_and_an_opaque_refresh_token_stored_as_its_hash(api):
    session = login(api, "editor")
    assert timeutil.parse_iso(session["expires_at"]) - time.time() <= 15 * 60
    assert len(session["refresh_token"]) >= 43  # 32 random bytes, URL-safe base64
    refresh_expires = timeutil.parse_iso(session["refresh_expires_at"])
    assert 6 * 86400 < refresh_expires - time.time() <= 7 * 86400
    table = aws.table("refresh_tokens")
    assert table.get_item(Key={"hash": session["refresh_token"]}).get("Item") is None
    item = table.get_item(Key={"hash": store.refresh_hash(session["refresh_token"])})["Item"]
    assert session["refresh_token"] not in str(item)


def test_refresh_rotates_the_refresh_token_and_answers_a_working_access_token(api):
    first = login(api, "editor")
    response = refresh(api, first["refresh_token"])
    assert response.status_code == 200, response.body
    second = body(response)
    assert second["refresh_token"] != first["refresh_token"] and second["token"] != first["token"]
    assert second["user"] == first["user"]
    assert api.get("/api/auth/me", token=second["token"]).status_code == 200
    assert refresh(api, second["refresh_token"]).status_code == 200


def test_a_used_refresh_token_revokes_its_whole_family_and_raises_an_alert(api, alerts):
    first = login(api, "editor")
    second = body(refresh(api, first["refresh_token"]))
    other = login(api, "editor")  # another session of the same user stays

    reused = refresh(api, first["refresh_token"])

    assert reused.status_code == 401
    assert api.get("/api/auth/me", token=second["token"]).status_code == 401
    assert api.get("/api/auth/me", token=first["token"]).status_code == 401
    assert refresh(api, second["refresh_token"]).status_code == 401
    assert api.get("/api/auth/me", token=other["token"]).status_code == 200
    [alert] = [a for a in alerts if a.details.get("event", {}).get("action") == "security.refresh_reuse"]
    assert alert.level == "critical"


def test_two_concurrent_refreshes_with_one_token_cannot_both_succeed(api):
    session = login(api, "editor")
    barrier = threading.Barrier(2)
    answers: list[int] = []

    def go() -> None:
        from chalicelib import errors
        from chalicelib.auth import service

        barrier.wait()
        try:
            service.refresh(session["refresh_token"])
            answers.append(200)
        except errors.Unauthenticated:
            answers.append(401)

    threads = [threading.Thread(target=go) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(answers) == [200, 401]


def test_an_expired_access_token_is_refused_while_its_refresh_token_still_works(api, monkeypatch):
    session = login(api, "viewer")
    later(monkeypatch, 15 * 60 + 1)
    assert api.get("/api/auth/me", token=session["token"]).status_code == 401
    response = refresh(api, session["refresh_token"])
    assert response.status_code == 200
    assert api.get("/api/auth/me", token=body(response)["token"]).status_code == 200


def test_the_refresh_lifetime_slides_but_stops_at_the_absolute_cap(api, monkeypatch):
    token = login(api, "viewer")["refresh_token"]
    for day in (6, 12, 18, 24):  # each refresh within 7 days of the last one
        later(monkeypatch, day * 86400)
        response = refresh(api, token)
        assert response.status_code == 200, (day, response.body)
        token = body(response)["refresh_token"]
    later(monkeypatch, 30 * 86400 + 1)
    assert refresh(api, token).status_code == 401


def test_an_unused_refresh_token_expires_after_its_sliding_lifetime(api, monkeypatch):
    token = login(api, "viewer")["refresh_token"]
    later(monkeypatch, 7 * 86400 + 1)
    assert refresh(api, token).status_code == 401


@pytest.mark.parametrize("token", ["made-up", "x" * 256, "\u00e9"])
def test_an_unknown_refresh_token_is_refused(api, token):
    assert refresh(api, token).status_code == 401


def test_logout_revokes_the_refresh_family(api):
    session = login(api, "editor")
    assert api.post("/api/auth/logout", token=session["token"]).status_code == 204
    assert refresh(api, session["refresh_token"]).status_code == 401


# --- revocation reaches the WebSocket ---------------------------------------------------------------


def test_logout_closes_that_sessions_connections_and_no_other(gw, api, management):
    mine, other = login(api, "editor"), login(api, "editor")
    closing, staying = connect(gw, api, mine["token"]), connect(gw, api, other["token"])
    api.post("/api/auth/logout", token=mine["token"])
    assert management.deleted == [closing]
    assert gw.send(staying, {"action": "ping"}) == [{"type": "pong"}]


def test_a_frame_on_a_connection_whose_session_ended_is_refused_and_the_connection_closed(gw, api, management):
    from chalicelib.auth import service

    session = login(api, "editor")
    cid = connect(gw, api, session["token"])
    service.sessions().revoke(session["user"] and _sid(session["token"]))  # behind the listener's back
    replies = gw.send(cid, {"action": "ping"})
    assert replies == [{"type": "error", "code": "session_ended", "message": "session ended; log in again"}]
    assert cid in management.deleted


def _sid(token: str) -> str:
    import jwt

    return str(jwt.decode(token, options={"verify_signature": False})["sid"])


# --- users ---------------------------------------------------------------------------------------------


def patch(api, user_id: str, changes: dict[str, Any], as_: str = "admin") -> Any:
    return api.request("PATCH", f"/api/users/{user_id}", changes, as_=as_)


def test_a_disabled_user_is_refused_everywhere(gw, api, management):
    session = login(api, "editor")
    cid = connect(gw, api, session["token"])
    user_id = session["user"]["id"]

    response = patch(api, user_id, {"disabled": True})

    assert response.status_code == 200 and body(response)["disabled"] is True
    assert api.get("/api/auth/me", token=session["token"]).status_code == 401
    assert refresh(api, session["refresh_token"]).status_code == 401
    assert cid in management.deleted
    relogin = api.post("/api/auth/login", {"email": session["user"]["email"], "password": ROLE_PASSWORD})
    wrong = api.post("/api/auth/login", {"email": session["user"]["email"], "password": "not the password"})
    assert relogin.status_code == wrong.status_code == 401  # the right password is not confirmed
    assert body(relogin) == body(wrong)
    assert patch(api, user_id, {"disabled": False}).status_code == 200
    assert login(api, "editor")["user"]["id"] == user_id


def test_a_role_change_ends_the_users_sessions(api):
    session = login(api, "viewer")
    response = patch(api, session["user"]["id"], {"role": "editor"})
    assert response.status_code == 200 and body(response)["role"] == "editor"
    assert api.get("/api/auth/me", token=session["token"]).status_code == 401
    assert refresh(api, session["refresh_token"]).status_code == 401
    assert login(api, "viewer")["user"]["role"] == "editor"


def test_a_patch_changing_nothing_keeps_the_sessions(api):
    session = login(api, "viewer")
    assert patch(api, session["user"]["id"], {"role": "viewer", "disabled": False}).status_code == 200
    assert api.get("/api/auth/me", token=session["token"]).status_code == 200


def test_an_unknown_user_is_a_404(api):
    assert patch(api, "0" * 32, {"disabled": True}).status_code == 404


def test_the_last_active_admin_can_be_neither_demoted_nor_disabled(api):
    admin = api.user("admin")
    assert patch(api, admin["id"], {"role": "editor"}).status_code == 409
    assert patch(api, admin["id"], {"disabled": True}).status_code == 409
    second = api.user("admin-2")
    assert patch(api, second["id"], {"disabled": True}).status_code == 200
    assert patch(api, admin["id"], {"role": "viewer"}).status_code == 409  # the other one is disabled
    assert patch(api, second["id"], {"disabled": False}).status_code == 200
    assert patch(api, second["id"], {"role": "viewer"}).status_code == 200


def test_two_admins_demoting_each_other_at_once_leave_one_admin(api):
    from chalicelib import errors
    from chalicelib.auth import service

    first, second = api.user("admin"), api.user("admin-2")
    barrier = threading.Barrier(2)
    outcomes: list[str] = []

    def demote(user_id: str) -> None:
        barrier.wait()
        try:
            service.update_user(user_id, "editor", None)
            outcomes.append("demoted")
        except errors.Conflict:
            outcomes.append("409")

    threads = [threading.Thread(target=demote, args=(u["id"],)) for u in (first, second)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(outcomes) == ["409", "demoted"]
    roles = [service.users().get(u["id"])["role"] for u in (first, second)]
    assert sorted(roles) == ["admin", "editor"]


def test_users_are_listed_by_role_in_pages(api):
    for role in ("viewer", "viewer-2", "viewer-3", "editor"):
        api.user(role)
    everyone = body(api.get("/api/users", as_="admin"))
    assert {u["role"] for u in everyone["items"]} == {"admin", "editor", "viewer"}
    assert set(everyone["items"][0]) == {"id", "email", "role", "disabled", "created_at"}
    viewers = body(api.get("/api/users?role=viewer", as_="admin"))["items"]
    assert len(viewers) == 3 and all(u["role"] == "viewer" for u in viewers)

    seen: list[str] = []
    cursor = ""
    while True:
        page = body(api.get(f"/api/users?limit=2{cursor}", as_="admin"))
        assert len(page["items"]) <= 2
        seen += [u["id"] for u in page["items"]]
        if not page["next_cursor"]:
            break
        cursor = f"&cursor={page['next_cursor']}"
    assert sorted(seen) == sorted(u["id"] for u in everyone["items"]) and len(seen) == 5


def test_a_cursor_of_one_role_is_refused_by_another(api):
    for role in ("viewer", "viewer-2", "viewer-3"):
        api.user(role)
    page = body(api.get("/api/users?role=viewer&limit=1", as_="admin"))
    response = api.get(f"/api/users?role=editor&cursor={page['next_cursor']}", as_="admin")
    assert response.status_code == 400 and body(response)["Errors"][0]["field"] == "cursor"


# --- password -----------------------------------------------------------------------------------------


def test_a_password_change_needs_the_current_password(api):
    session = login(api, "editor")
    response = api.post(
        "/api/auth/password",
        {"current_password": "wrong", "new_password": "a new password, long enough"},
        token=session["token"],
    )
    assert response.status_code == 400
    assert body(response)["Errors"][0]["field"] == "current_password"


def test_a_password_change_ends_the_other_sessions_and_keeps_this_one(gw, api, management):
    this, other = login(api, "editor"), login(api, "editor")
    kept, closed = connect(gw, api, this["token"]), connect(gw, api, other["token"])
    response = api.post(
        "/api/auth/password",
        {"current_password": ROLE_PASSWORD, "new_password": "a new password, long enough"},
        token=this["token"],
    )
    assert response.status_code == 204
    assert api.get("/api/auth/me", token=this["token"]).status_code == 200
    assert api.get("/api/auth/me", token=other["token"]).status_code == 401
    assert refresh(api, other["refresh_token"]).status_code == 401
    assert refresh(api, this["refresh_token"]).status_code == 200
    assert management.deleted == [closed] and kept not in management.deleted
    assert login(api, "editor", "a new password, long enough")["user"]["id"] == this["user"]["id"]
    email = this["user"]["email"]
    assert api.post("/api/auth/login", {"email": email, "password": ROLE_PASSWORD}).status_code == 401


# --- browsers: the refresh token in a cookie, CSRF ---------------------------------------------------

HOST = "api.example.com"
SAME_SITE = {"x-inkwell-session": "cookie", "host": HOST, "origin": f"https://{HOST}", "sec-fetch-site": "same-origin"}


def browser_login(api, role: str = "admin") -> tuple[dict[str, Any], str]:
    user = api.user(role)
    response = api.post(
        "/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD}, headers={"x-inkwell-session": "cookie"}
    )
    assert response.status_code == 200, response.body
    return body(response), set_cookie_of(response)


def set_cookie_of(response: Any, name: str = browser.COOKIE) -> str:
    """The `Set-Cookie` of cookie `name` (the login also sets the device cookie)."""
    values = next(v for k, v in response.headers.items() if k.lower() == "set-cookie")
    return next(v for v in (values if isinstance(values, list) else [values]) if v.startswith(f"{name}="))


def cookie_value(set_cookie: str) -> str:
    return set_cookie.split(";")[0].partition("=")[2]


def cookie_refresh(api, cookie: str, **headers: str) -> Any:
    sent = {**SAME_SITE, "cookie": f"theme=dark; {browser.COOKIE}={cookie}", **headers}
    return api.client.http.request("POST", "/api/auth/refresh", headers=sent, body=b"")


def test_a_browser_login_puts_the_refresh_token_in_a_strict_httponly_cookie_only(api):
    session, set_cookie = browser_login(api)
    assert "refresh_token" not in session and session["token"] and session["refresh_expires_at"]
    attributes = {a.strip() for a in set_cookie.split(";")[1:]}
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} <= attributes
    assert not any(a.lower().startswith("domain") for a in attributes)  # what `__Host-` requires
    assert set_cookie.startswith("__Host-inkwell_refresh=") and len(cookie_value(set_cookie)) >= 43


def test_a_same_site_cookie_refresh_rotates_the_cookie(api):
    _, set_cookie = browser_login(api)
    response = cookie_refresh(api, cookie_value(set_cookie))
    assert response.status_code == 200, response.body
    assert "refresh_token" not in body(response)
    assert api.get("/api/auth/me", token=body(response)["token"]).status_code == 200
    rotated = cookie_value(set_cookie_of(response))
    assert rotated and rotated != cookie_value(set_cookie)
    assert cookie_refresh(api, cookie_value(set_cookie)).status_code == 401  # the old one: reuse


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({"origin": "https://evil.example"}, id="another-origin"),
        pytest.param({"origin": f"https://{HOST}.evil.example"}, id="a-lookalike-origin"),
        pytest.param({"origin": "null"}, id="an-opaque-origin"),
        pytest.param({"origin": "", "referer": "https://evil.example/page"}, id="a-cross-site-referer"),
        pytest.param({"origin": "", "referer": ""}, id="no-origin-at-all"),
        pytest.param({"sec-fetch-site": "cross-site"}, id="sec-fetch-site-cross-site"),
        pytest.param({"sec-fetch-site": "same-site"}, id="sec-fetch-site-same-site"),
    ],
)
def test_a_cross_site_cookie_refresh_is_refused_and_the_session_kept(api, headers):
    _, set_cookie = browser_login(api)
    response = cookie_refresh(api, cookie_value(set_cookie), **headers)
    assert response.status_code == 403
    assert "cross-site" in body(response)["Message"]
    assert cookie_refresh(api, cookie_value(set_cookie)).status_code == 200  # not used up


def test_the_cookie_alone_authenticates_nothing(api):
    _, set_cookie = browser_login(api)
    headers = {"host": HOST, "origin": f"https://{HOST}", "cookie": f"{browser.COOKIE}={cookie_value(set_cookie)}"}
    response = api.client.http.request("POST", "/api/auth/refresh", headers=headers, body=b"")
    assert response.status_code in (400, 415)  # the body variant, which has no token: nothing refreshed
    assert cookie_refresh(api, cookie_value(set_cookie)).status_code == 200


def test_a_cookie_refresh_without_the_cookie_is_a_401(api):
    response = api.client.http.request("POST", "/api/auth/refresh", headers=SAME_SITE, body=b"")
    assert response.status_code == 401


def test_a_cookie_refresh_with_several_refresh_cookies_is_refused_not_the_first_taken(api):
    _, set_cookie = browser_login(api)
    planted = "x" * 43  # what a cookie planted beside the real one would look like
    sent = {**SAME_SITE, "cookie": f"{browser.COOKIE}={planted}; {browser.COOKIE}={cookie_value(set_cookie)}"}
    response = api.client.http.request("POST", "/api/auth/refresh", headers=sent, body=b"")
    assert response.status_code == 401 and "several" in body(response)["Message"]
    assert cookie_refresh(api, cookie_value(set_cookie)).status_code == 200  # the session was not touched


def test_logout_removes_the_cookie(api):
    session, _ = browser_login(api)
    response = api.post("/api/auth/logout", token=session["token"])
    assert response.status_code == 204
    assert set_cookie_of(response).startswith("__Host-inkwell_refresh=;") and "Max-Age=0" in set_cookie_of(response)


def test_wrong_current_passwords_count_as_failed_logins(api):
    session = login(api, "editor")
    wrong = {"current_password": "wrong", "new_password": "a new password, long enough"}
    for _ in range(5):
        assert api.post("/api/auth/password", wrong, token=session["token"]).status_code == 400
    right = {"current_password": ROLE_PASSWORD, "new_password": "a new password, long enough"}
    response = api.post("/api/auth/password", right, token=session["token"])
    assert response.status_code == 429 and int(response.headers["Retry-After"]) >= 1
