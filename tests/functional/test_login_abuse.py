"""Logins under attack, through the REST API on moto: attempts counted before the password is
checked (also concurrently), floods audited as counts, throttling that a guesser cannot turn
against the user, and what never reaches the audit trail."""

from __future__ import annotations

import contextlib
import contextvars
import json
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

from chalicelib import audit, aws, errors, events, timeutil
from chalicelib.audit import floods
from chalicelib.auth import browser, gate, passwords
from chalicelib.auth import service as auth
from tests.conftest import ROLE_PASSWORD, body
from tests.functional.audit_helpers import all_events


@pytest.fixture
def checks(monkeypatch):
    """Every password check, counted (and slowed a little, so that concurrent logins overlap)."""
    made: list[str] = []
    lock = threading.Lock()
    real = passwords.verify_password

    def counted(password, stored):
        with lock:
            made.append(password)
        time.sleep(0.02)
        return real(password, stored)

    monkeypatch.setattr(passwords, "verify_password", counted)
    return made


def _login(email: str, password: str) -> int:
    try:
        auth.login(email, password, "198.51.100.7")
    except errors.Throttled:
        return 429
    except errors.Unauthenticated:
        return 401
    return 200


def test_twenty_concurrent_wrong_passwords_check_at_most_five(api, checks):
    user = api.user("editor")
    with ThreadPoolExecutor(max_workers=20) as pool:
        futures = [pool.submit(contextvars.copy_context().run, _login, user["email"], f"guess {n}") for n in range(20)]
        answers = [f.result() for f in futures]
    assert len(checks) <= 5
    assert answers.count(401) == len(checks) and answers.count(429) == 20 - len(checks)


def test_the_attempt_is_counted_before_the_password_is_checked(api, monkeypatch):
    user = api.user("editor")
    budget = gate.email_key(user["email"], auth._attempt_key())
    held_at_check: list[int] = []
    real = passwords.verify_password

    def watched(password, stored):
        items = aws.table("login_attempts").query(
            KeyConditionExpression="#k = :k",
            ExpressionAttributeNames={"#k": "key"},
            ExpressionAttributeValues={":k": budget},
        )["Items"]
        held_at_check.append(sum(1 for i in items if i.get("used") is not None))
        return real(password, stored)

    monkeypatch.setattr(passwords, "verify_password", watched)
    for n in range(3):
        assert _login(user["email"], f"guess {n}") == 401
    assert held_at_check == [1, 2, 3]  # this attempt's slot is taken already when its password is checked


class LostAnswers:
    """The login_attempts table as the SDK sees it when every UpdateItem's answer is lost once:
    the write lands, and the SDK sends the same request again."""

    def __init__(self, real):
        self._real, self.meta = real, real.meta

    def query(self, **kwargs):
        return self._real.query(**kwargs)

    def update_item(self, **kwargs):
        self._real.update_item(**kwargs)  # applied; its answer lost
        return self._real.update_item(**kwargs)


def test_a_reservation_retried_after_a_lost_answer_is_not_counted_twice(api):
    g = gate.Gate(LostAnswers(aws.table("login_attempts")))
    assert g.reserve("email#lost-answer", 5, "attempt-1")[0] == 0  # the retry meets its own write
    assert g.reserve("email#lost-answer", 5, "attempt-1")[0] == 0  # and so does a repeated call
    for n in range(4):
        assert g.reserve("email#lost-answer", 5, f"other-{n}")[0] == 0  # four more fit: one slot was taken
    assert g.reserve("email#lost-answer", 5, "one-too-many")[0] > 0


def test_a_right_password_gives_its_slot_back(api):
    user = api.user("editor")
    for _ in range(10):
        assert _login(user["email"], ROLE_PASSWORD) == 200  # successes never throttle the account
    for n in range(5):
        assert _login(user["email"], f"guess {n}") == 401


# --- throttling that the guesser cannot turn against the user ------------------------------------


def _device_cookie(response) -> str:
    values = response.headers["Set-Cookie"]
    found = [v for v in (values if isinstance(values, list) else [values]) if v.startswith(browser.DEVICE_COOKIE)]
    assert found, values
    return found[0].split(";")[0]


def test_a_device_the_user_logged_in_from_gets_in_while_a_guesser_is_throttled(api):
    user = api.user("editor")
    first = api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD})
    cookie = _device_cookie(first)
    assert {"HttpOnly", "Secure", "SameSite=Strict", "Path=/"} <= {
        a.strip() for a in first.headers["Set-Cookie"].split(";")[1:]
    }
    for n in range(5):
        assert api.post("/api/auth/login", {"email": user["email"], "password": f"guess {n}"}).status_code == 401
    guesser = api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD})
    assert guesser.status_code == 429 and int(guesser.headers["Retry-After"]) >= 1  # a new client waits
    known = api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD}, headers={"cookie": cookie})
    assert known.status_code == 200  # the guesser's failures never reach the user's device


def test_a_device_cookie_counts_only_for_its_email_and_has_its_own_limit(api):
    user, other = api.user("editor"), api.user("viewer")
    cookie = _device_cookie(api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD}))
    for n in range(5):
        api.post("/api/auth/login", {"email": other["email"], "password": f"guess {n}"}, headers={"cookie": cookie})
    assert api.post("/api/auth/login", {"email": other["email"], "password": ROLE_PASSWORD}).status_code == 429
    for n in range(5):  # a stolen device cookie guesses no faster than anyone
        sent = {"email": user["email"], "password": f"guess {n}"}
        assert api.post("/api/auth/login", sent, headers={"cookie": cookie}).status_code == 401
    sent = {"email": user["email"], "password": ROLE_PASSWORD}
    assert api.post("/api/auth/login", sent, headers={"cookie": cookie}).status_code == 429


def test_one_abuser_behind_an_address_does_not_lock_out_known_devices_behind_it(api):
    user = api.user("editor")
    cookie = _device_cookie(api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD}))
    for i in range(20):
        api.post("/api/auth/login", {"email": f"spray{i}@example.com", "password": "bad"})
    assert api.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD}).status_code == 429
    sent = {"email": user["email"], "password": ROLE_PASSWORD}
    assert api.post("/api/auth/login", sent, headers={"cookie": cookie}).status_code == 200


# --- floods audited as counts ---------------------------------------------------------------------


def test_a_hundred_failed_logins_from_one_address_write_few_events_and_the_report_counts_them_all(api, monkeypatch):
    api.user("admin")
    api.token("admin")
    start = (int(time.time()) // 60 + 1) * 60 + 1.0  # all within one minute
    monkeypatch.setattr(timeutil, "now", lambda: start)
    before = len(all_events(api))
    for n in range(100):
        response = api.post("/api/auth/login", {"email": f"spray{n % 30}@example.com", "password": "bad"})
        assert response.status_code in (401, 429)
    written = len(all_events(api)) - before - 1  # the listing itself is audited (audit.read)
    assert written <= 25
    monkeypatch.setattr(timeutil, "now", lambda: start + 120)
    assert floods.flush() == 1  # the rest of that minute's refusals, as one event
    report = body(api.get("/api/audit/report", as_="admin"))
    assert report["failed_logins"]["total"] == 100
    assert floods.flush() == 0  # recorded once


def test_a_flood_of_refused_websocket_connects_is_audited_as_counts(api, app, monkeypatch):
    import app as app_module
    from tests.functional.ws_support import FakeManagement, Gateway

    gw = Gateway(app_module, FakeManagement())
    start = (int(time.time()) // 60 + 1) * 60 + 1.0
    monkeypatch.setattr(timeutil, "now", lambda: start)
    published: list = []
    unsubscribe = events.subscribe(events.AuditRecorded, published.append)
    try:
        for _ in range(50):
            assert gw.connect(ticket="made-up")[1]["statusCode"] == 401
        monkeypatch.setattr(timeutil, "now", lambda: start + 120)
        floods.flush()
        audit.flush()
    finally:
        unsubscribe()
    refused = [e for batch in published for e in batch.events if e["action"] == "realtime.refused"]
    assert len(refused) == 2  # the first at once, the rest of the minute as one count
    assert sum(e["details"]["count"] for e in refused) == 50


# --- what never reaches the audit trail -----------------------------------------------------------


def test_a_password_typed_into_the_email_field_is_never_stored_nor_sent_to_admins(api):
    api.token("admin")
    typed = "Tr0ub4dor&3-my-real-password"
    published: list = []
    unsubscribe = events.subscribe(events.AuditRecorded, published.append)
    try:
        for _ in range(7):  # failures, a lockout, then throttled refusals
            api.post("/api/auth/login", {"email": typed, "password": "whatever"})
    finally:
        unsubscribe()
    stored = json.dumps(all_events(api)) + json.dumps(aws.table("login_attempts").scan()["Items"], default=str)
    sent = json.dumps([batch.events for batch in published], default=str)
    assert typed.lower() not in stored.lower() and typed.lower() not in sent.lower()
    failed = all_events(api, action="auth.login_failed")
    assert failed and {e["details"]["email"] for e in failed} == {"(not an email)"}


def test_flood_counts_survive_lost_answers(api, monkeypatch):
    class Lossy(LostAnswers):
        def get_item(self, **kwargs):
            return self._real.get_item(**kwargs)

    table_of, real = aws.table, aws.table("login_attempts")
    monkeypatch.setattr(aws, "table", lambda name: Lossy(real) if name == "login_attempts" else table_of(name))
    start = (int(time.time()) // 60 + 1) * 60 + 1.0
    monkeypatch.setattr(timeutil, "now", lambda: start)
    published: list = []
    unsubscribe = events.subscribe(events.AuditRecorded, published.append)
    try:
        for _ in range(7):
            floods.note("realtime.refused", ("ip", "192.0.2.1"), {"via": "ticket"})
        assert floods.flush(start + 120) == 1
        assert floods.flush(start + 120) == 0
        audit.flush()
    finally:
        unsubscribe()
    refused = [e for batch in published for e in batch.events if e["action"] == "realtime.refused"]
    assert [e["details"]["count"] for e in refused] == [1, 6]


# --- password storage and length --------------------------------------------------------------


def test_a_login_rehashes_an_older_cheaper_hash(api):
    user = api.user("viewer")
    cheap = passwords.hash_password(ROLE_PASSWORD, 512)
    auth.users().set_password(user["id"], auth.users().get(user["id"])["password_hash"], cheap)
    assert _login(user["email"], ROLE_PASSWORD) == 200
    stored = auth.users().get(user["id"])["password_hash"]
    assert passwords.cost(stored) == auth.config.get().scrypt_n > 512
    assert _login(user["email"], ROLE_PASSWORD) == 200


@pytest.mark.parametrize("length, status", [(14, 400), (15, 201)])
def test_new_passwords_need_fifteen_characters(api, length, status):
    new = {"email": f"len{length}@example.com", "password": "p" * length, "role": "viewer"}
    response = api.post("/api/users", new, as_="admin")
    assert response.status_code == status
    if status == 400:
        assert "password" in json.dumps(body(response))
    change = {"current_password": ROLE_PASSWORD, "new_password": "p" * length}
    assert api.post("/api/auth/password", change, as_="editor").status_code == (400 if length < 15 else 204)
    with pytest.raises(ValueError) if length < 15 else contextlib.nullcontext():
        auth.create_user(f"direct{length}@example.com", "p" * length, "viewer")
