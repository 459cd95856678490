"""Sessions under faults inside AWS (tests/faults.py): a login or a refresh whose transaction AWS
applied but whose answer was lost (the SDK sends it again) still succeeds, once."""

from __future__ import annotations

from chalicelib import events
from tests.conftest import ROLE_PASSWORD, body


def _login(api) -> dict:
    response = api.post("/api/auth/login", {"email": api.user("editor")["email"], "password": ROLE_PASSWORD})
    assert response.status_code == 200, response.body
    return body(response)


def test_a_login_whose_session_write_lost_its_answer_logs_in(api, faults):
    api.user("editor")
    faults.lose("TransactWriteItems")
    session = _login(api)
    assert faults.met["TransactWriteItems"] == 1
    assert api.get("/api/auth/me", token=session["token"]).status_code == 200
    assert api.post("/api/auth/refresh", {"refresh_token": session["refresh_token"]}).status_code == 200


def test_a_refresh_whose_rotation_lost_its_answer_rotates_and_keeps_the_session(api, faults):
    first = _login(api)
    alerts: list[events.Alert] = []
    stop = events.subscribe(events.Alert, alerts.append)
    try:
        faults.lose("TransactWriteItems")
        response = api.post("/api/auth/refresh", {"refresh_token": first["refresh_token"]})
    finally:
        stop()
    assert faults.met["TransactWriteItems"] == 1
    assert response.status_code == 200, response.body
    second = body(response)
    assert api.get("/api/auth/me", token=second["token"]).status_code == 200
    assert api.post("/api/auth/refresh", {"refresh_token": second["refresh_token"]}).status_code == 200
    assert alerts == []  # no reuse was seen
    # the old token stays used: presenting it again is a reuse, as ever
    assert api.post("/api/auth/refresh", {"refresh_token": first["refresh_token"]}).status_code == 401
