"""The WebSocket API through crafted API Gateway events on moto: tickets, authentication, rooms,
frames, resume and disconnects."""

from __future__ import annotations

import time
from typing import Any

import pytest

from chalicelib import aws, runtime, timeutil
from chalicelib.auth import service as auth
from chalicelib.realtime import delivery, emitters, handlers, live, store
from chalicelib.realtime import sender as sender_module
from tests.conftest import body
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


def ticket(api, role: str) -> str:
    response = api.post("/api/realtime/ticket", as_=role)
    assert response.status_code == 200, response.body
    return body(response)["ticket"]


def connect(gw, api, role: str) -> str:
    cid, response = gw.connect(ticket=ticket(api, role))
    assert response["statusCode"] == 200, response
    return cid


def article(api, role: str = "editor") -> str:
    response = api.post("/api/articles", {"title": "T", "topic": "t"}, as_=role)
    assert response.status_code == 201
    return body(response)["id"]


def members(room: str) -> list[str]:
    return live.connections().members(room)


# --- tickets and $connect ----------------------------------------------------------------------------


def test_a_ticket_is_short_lived_and_stored_only_as_its_hash(api):
    response = api.post("/api/realtime/ticket", as_="viewer")
    assert response.status_code == 200
    data = body(response)
    expires = timeutil.parse_iso(data["expires_at"])
    assert 55 <= expires - time.time() <= 61
    table = aws.table("ws_tickets")
    assert table.get_item(Key={"hash": data["ticket"]}).get("Item") is None
    item = table.get_item(Key={"hash": store.ticket_hash(data["ticket"])})["Item"]
    assert data["ticket"] not in str(item.values())
    assert int(item["ttl"]) == int(expires)


def test_a_ticket_needs_a_logged_in_caller(api):
    assert api.post("/api/realtime/ticket").status_code == 401
    assert api.post("/api/realtime/ticket", token="not-a-jwt").status_code == 401


def test_a_ticket_opens_one_connection_in_the_users_room(gw, api):
    cid = connect(gw, api, "editor")
    user = api.user("editor")
    conn = live.connections().get(cid)
    assert conn["user_id"] == user["id"] and conn["role"] == "editor"
    assert conn["rooms"] == {f"user:{user['id']}"}
    assert int(conn["ttl"]) - time.time() == pytest.approx(2 * 3600, abs=5)
    assert conn["connected_at"].endswith("Z")
    assert members(f"user:{user['id']}") == [cid]
    assert members("admin") == []


def test_admins_also_join_the_admin_room(gw, api):
    cid = connect(gw, api, "admin")
    assert members("admin") == [cid]


def test_a_used_ticket_is_refused(gw, api):
    t = ticket(api, "editor")
    _, first = gw.connect(ticket=t)
    cid, second = gw.connect(ticket=t)
    assert first["statusCode"] == 200
    assert second["statusCode"] == 401
    assert live.connections().get(cid) is None


def test_an_expired_ticket_is_refused(gw, api, monkeypatch):
    t = ticket(api, "editor")
    later = time.time() + 61
    monkeypatch.setattr(timeutil, "now", lambda: later)
    _, response = gw.connect(ticket=t)
    assert response["statusCode"] == 401


def test_a_ticket_of_a_revoked_token_is_refused(gw, api):
    t = ticket(api, "editor")
    assert api.post("/api/auth/logout", as_="editor").status_code == 204
    _, response = gw.connect(ticket=t)
    assert response["statusCode"] == 401


@pytest.mark.parametrize(
    "query",
    [
        {},
        {"ticket": "made-up"},
        {"ticket": "x" * 500},
        {"token": "not.a.jwt"},
        {"ticket": "\ud800"},  # raised UnicodeEncodeError out of $connect
        {"token": "\ud800"},  # the same, in the JWT decoder
    ],
)
def test_connect_without_valid_credentials_is_refused(gw, query):
    cid, response = gw.connect(**query)
    assert response["statusCode"] == 401
    assert live.connections().get(cid) is None


def test_a_valid_jwt_in_the_url_is_refused_in_favour_of_tickets(gw, api):
    token = api.token("viewer")
    cid, response = gw.connect(token=token)
    assert response["statusCode"] == 401
    assert "ticket" in response["body"] and live.connections().get(cid) is None
    _, response = gw.connect(ticket=ticket(api, "viewer"))
    assert response["statusCode"] == 200


# --- frames ---------------------------------------------------------------------------------------------


def test_ping_answers_pong(gw, api):
    cid = connect(gw, api, "viewer")
    assert gw.send(cid, {"action": "ping"}) == [{"type": "pong"}]


@pytest.mark.parametrize(
    "frame, fragment",
    [
        ("not json", "JSON"),
        ("[1, 2]", "JSON objects"),
        ({"room": "admin"}, "action"),
        ({"action": 7}, "action"),
        ({"action": "dance"}, "unknown action"),
        ({"action": "subscribe"}, "room"),
        ({"action": "subscribe", "room": "admin", "extra": 1}, "extra"),
        ({"action": "resume", "room": "admin", "after": -1}, "after"),
        ({"action": "resume", "room": "admin", "after": "3"}, "after"),
        ({"action": "resume", "room": "admin", "after": True}, "after"),
        ("x" * (32 * 1024 + 1), "32768 bytes"),
        ("\ud800", "UTF-8"),  # raised UnicodeEncodeError out of the handler
        ('{"a":' * 5000, "nested"),  # raised RecursionError out of the handler
    ],
)
def test_a_malformed_frame_gets_an_error_frame_and_the_connection_stays(gw, api, frame, fragment):
    cid = connect(gw, api, "admin")
    replies = gw.send(cid, frame)
    assert len(replies) == 1 and replies[0]["type"] == "error"
    assert fragment in replies[0]["message"]
    assert gw.send(cid, {"action": "ping"}) == [{"type": "pong"}]
    assert live.connections().get(cid) is not None


def test_a_frame_from_an_unknown_connection_is_told_to_reconnect_and_closed(gw, management):
    replies = gw.send("never-connected", {"action": "subscribe", "room": "admin"})
    assert [r["type"] for r in replies] == ["error"] and "reconnect" in replies[0]["message"]
    # Closed, so that every client reconnects (and gets a record) whether it reads the frame or not
    assert management.deleted == ["never-connected"]


def test_a_frame_from_an_unknown_connection_that_is_gone_too_is_left_alone(gw, management):
    management.gone.add("gone-already")
    assert gw.send("gone-already", {"action": "rooms"}) == []  # the reply met a 410: nothing to close
    assert management.deleted == []


def test_closing_a_connection_that_is_already_gone_is_not_an_error(management):
    management.gone.add("gone-already")
    sender_module.Sender(management).close("gone-already")  # the 410 is swallowed
    assert management.deleted == []


def test_an_unexpected_fault_becomes_an_error_frame(gw, api, monkeypatch):
    cid = connect(gw, api, "admin")

    def broken(*args, **kwargs):
        raise RuntimeError("database on fire")

    monkeypatch.setattr(store.EventLog, "current", broken)
    replies = gw.send(cid, {"action": "rooms"})
    assert replies == [{"type": "error", "code": "internal", "message": "internal error; try again", "action": "rooms"}]


# --- rooms ----------------------------------------------------------------------------------------------


def test_the_author_may_follow_their_article(gw, api):
    aid = article(api, "editor")
    cid = connect(gw, api, "editor")
    assert gw.send(cid, {"action": "subscribe", "room": f"article:{aid}"}) == [
        {"type": "subscribed", "room": f"article:{aid}", "seq": 0}
    ]
    assert members(f"article:{aid}") == [cid]
    assert f"article:{aid}" in live.connections().get(cid)["rooms"]


def test_an_admin_may_follow_any_article(gw, api):
    aid = article(api, "editor")
    cid = connect(gw, api, "admin")
    assert gw.send(cid, {"action": "subscribe", "room": f"article:{aid}"})[0]["type"] == "subscribed"


@pytest.mark.parametrize("role", ["editor-2", "viewer"])
def test_others_may_not_follow_an_article(gw, api, role):
    aid = article(api, "editor")
    cid = connect(gw, api, role)
    replies = gw.send(cid, {"action": "subscribe", "room": f"article:{aid}"})
    assert replies[0]["type"] == "error" and replies[0]["room"] == f"article:{aid}"
    assert members(f"article:{aid}") == []


@pytest.mark.parametrize(
    "room", ["admin", "user:someone-else", "article:" + "0" * 32, "article:nope", "lobby", "user:" + "x" * 80]
)
def test_an_editor_cannot_join_rooms_that_are_not_theirs(gw, api, room):
    cid = connect(gw, api, "editor")
    replies = gw.send(cid, {"action": "subscribe", "room": room})
    assert replies[0]["type"] == "error"
    assert cid not in members(room)


def test_an_admin_cannot_follow_an_article_that_does_not_exist(gw, api):
    cid = connect(gw, api, "admin")
    replies = gw.send(cid, {"action": "subscribe", "room": "article:" + "a" * 32})
    assert replies[0]["type"] == "error" and "does not exist" in replies[0]["message"]


def test_unsubscribe_leaves_the_room(gw, api):
    aid = article(api, "editor")
    cid = connect(gw, api, "editor")
    gw.send(cid, {"action": "subscribe", "room": f"article:{aid}"})
    assert gw.send(cid, {"action": "unsubscribe", "room": f"article:{aid}"}) == [
        {"type": "unsubscribed", "room": f"article:{aid}"}
    ]
    assert members(f"article:{aid}") == []
    assert f"article:{aid}" not in live.connections().get(cid)["rooms"]
    # idempotent
    assert gw.send(cid, {"action": "unsubscribe", "room": f"article:{aid}"})[0]["type"] == "unsubscribed"


def test_rooms_lists_the_connections_rooms_with_their_current_seq(gw, api):
    cid = connect(gw, api, "admin")
    user = api.user("admin")
    before = gw.send(cid, {"action": "rooms"})[0]["rooms"]["admin"]  # audit `activity` counts too
    emitters.emit_system_alert("info", "one")
    emitters.emit_system_alert("info", "two")
    assert gw.send(cid, {"action": "rooms"})[0] == {
        "type": "rooms",
        "rooms": {"admin": before + 2, f"user:{user['id']}": 0},
    }


def test_a_connection_is_limited_in_its_rooms(gw, api, monkeypatch):
    monkeypatch.setattr(handlers, "MAX_ROOMS_PER_CONNECTION", 2)
    cid = connect(gw, api, "admin")  # user:<id> and admin
    aid = article(api, "editor")
    replies = gw.send(cid, {"action": "subscribe", "room": f"article:{aid}"})
    assert replies[0]["type"] == "error" and "at most 2 rooms" in replies[0]["message"]


# --- resume ---------------------------------------------------------------------------------------------


def test_resume_replays_the_rooms_events_after_seq_in_order(gw, api, management):
    aid = article(api, "editor")
    author = api.user("editor")["id"]
    joined_before(f"article:{aid}")
    for status in ("PROCESSING", "PUBLISHED", "ARCHIVED"):
        emitters.emit_article_status(aid, status, author, "job-1")
    cid = connect(gw, api, "editor")
    replies = gw.send(cid, {"action": "resume", "room": f"article:{aid}", "after": 1})
    assert [(r.get("seq"), r["type"]) for r in replies] == [
        (2, "article.status"),
        (3, "article.status"),
        (None, "resumed"),
    ]
    assert [r["data"]["status"] for r in replies[:2]] == ["PUBLISHED", "ARCHIVED"]
    assert replies[-1] == {"type": "resumed", "room": f"article:{aid}", "count": 2, "complete": True}


def test_every_audit_event_reaches_the_admin_room_and_resume_replays_them(gw, api, management):
    from chalicelib import audit

    cid = connect(gw, api, "admin")
    before = gw.send(cid, {"action": "rooms"})[0]["rooms"]["admin"]
    management.take(cid)

    def handler() -> list[dict]:
        return [audit.record("article.status_changed", resource=("article", f"a{n}")) for n in range(40)]

    recorded = _invoke(runtime.Invocation(kind="sqs", request_id="r-40"), handler)
    live = management.take(cid)
    assert [(f["type"], f["seq"]) for f in live] == [("activity", before + 1 + n) for n in range(40)]
    assert [f["data"] for f in live] == recorded
    replies = gw.send(cid, {"action": "resume", "room": "admin", "after": before})
    end = next(i for i, r in enumerate(replies) if r["type"] == "resumed")
    assert replies[:end] == live
    assert replies[end] == {"type": "resumed", "room": "admin", "count": 40, "complete": True}


def test_resume_is_refused_for_a_room_the_user_may_not_hear(gw, api):
    aid = article(api, "editor")
    emitters.emit_article_status(aid, "PROCESSING", api.user("editor")["id"])
    cid = connect(gw, api, "editor-2")
    replies = gw.send(cid, {"action": "resume", "room": f"article:{aid}", "after": 0})
    assert len(replies) == 1 and replies[0]["type"] == "error"


def note(room: str, text: str) -> None:
    delivery.emit("note", [room], {"text": text})


def joined_before(room: str) -> None:
    """A connection joined `room` earlier (and left): the room has a counter, so its events are kept."""
    live.event_log().open_room(room, joined=0)


def test_events_of_a_room_nobody_ever_joined_are_not_kept_and_a_first_subscriber_starts_at_its_seq(gw, api):
    aid = article(api, "editor")
    emitters.emit_article_status(aid, "PROCESSING", api.user("editor")["id"])  # nobody ever joined
    cid = connect(gw, api, "editor")
    assert gw.send(cid, {"action": "subscribe", "room": f"article:{aid}"})[0]["seq"] == 0
    emitters.emit_article_status(aid, "PUBLISHED", api.user("editor")["id"])
    replies = gw.send(cid, {"action": "resume", "room": f"article:{aid}", "after": 0})
    assert [(r.get("seq"), r.get("data", {}).get("status")) for r in replies] == [(1, "PUBLISHED"), (None, None)]


def test_resume_skips_events_past_their_retention(gw, api, monkeypatch):
    room = f"user:{api.user('admin')['id']}"
    joined_before(room)
    note(room, "old")
    later = time.time() + store.EVENT_RETENTION_SECONDS + 1
    monkeypatch.setattr(timeutil, "now", lambda: later)
    note(room, "new")
    cid = "admin-conn"
    auth.sessions().create("j", api.user("admin"), int(later) + 3600)
    live.connections().open(cid, {**api.user("admin"), "jti": "j"}, [room], None)
    replies = gw.send(cid, {"action": "resume", "room": room, "after": 0})
    assert [r["data"]["text"] for r in replies[:-1]] == ["new"]


def test_a_long_resume_comes_in_parts(gw, api, monkeypatch):
    monkeypatch.setattr(handlers, "MAX_REPLAY", 2)
    room = f"user:{api.user('admin')['id']}"
    joined_before(room)
    for i in range(5):
        note(room, f"m{i}")
    cid = connect(gw, api, "admin")
    first = gw.send(cid, {"action": "resume", "room": room, "after": 0})
    assert [r.get("seq") for r in first] == [1, 2, None]
    assert first[-1]["complete"] is False and first[-1]["next_after"] == 2
    rest = gw.send(cid, {"action": "resume", "room": room, "after": 2})
    rest += gw.send(cid, {"action": "resume", "room": room, "after": 4})
    assert [r.get("seq") for r in rest] == [3, 4, None, 5, None]


def test_resume_after_a_restarted_counter_replays_everything_kept(gw, api):
    room = f"user:{api.user('admin')['id']}"
    cid = connect(gw, api, "admin")  # the counter had expired: connecting starts it again at 0
    note(room, "after restart")
    replies = gw.send(cid, {"action": "resume", "room": room, "after": 90})
    assert [r.get("seq") for r in replies] == [1, None]


# --- disconnect and stale connections ---------------------------------------------------------------------


def test_disconnect_removes_the_connection_and_its_memberships(gw, api):
    aid = article(api, "admin")
    cid = connect(gw, api, "admin")
    gw.send(cid, {"action": "subscribe", "room": f"article:{aid}"})
    gw.disconnect(cid)
    assert live.connections().get(cid) is None
    assert members("admin") == [] and members(f"article:{aid}") == []
    gw.disconnect(cid)  # a second $disconnect is harmless


def test_disconnect_is_best_effort(gw, api, monkeypatch):
    cid = connect(gw, api, "viewer")

    def broken(self, connection_id):
        raise RuntimeError("throttled")

    monkeypatch.setattr(store.Connections, "close", broken)
    gw.disconnect(cid)  # logged, not raised


def test_a_connection_past_its_ttl_is_not_a_member(gw, api, monkeypatch):
    cid = connect(gw, api, "admin")
    later = time.time() + store.CONNECTION_TTL_SECONDS + 1
    monkeypatch.setattr(timeutil, "now", lambda: later)
    assert members("admin") == []
    assert gw.send(cid, {"action": "rooms"})[0]["type"] == "error"


def test_a_reply_to_a_gone_connection_removes_it(gw, api, management, monkeypatch):
    cid = connect(gw, api, "admin")
    management.gone.add(cid)
    later = time.time() + live.GONE_GRACE_SECONDS + 1
    monkeypatch.setattr(timeutil, "now", lambda: later)
    gw.send(cid, {"action": "rooms"})
    assert live.connections().get(cid) is None
    assert members("admin") == []


def test_a_410_right_after_connect_keeps_the_connection(gw, api, management):
    # API Gateway answers 410 until $connect has returned, and the record is written inside it:
    # a fan-out in that window must not strand the client on a connection the server forgot.
    cid = connect(gw, api, "admin")
    management.gone.add(cid)
    emitters.emit_system_alert("info", "during connect")
    management.gone.discard(cid)
    assert live.connections().get(cid) is not None
    assert gw.send(cid, {"action": "rooms"})[0]["type"] == "rooms"


def test_the_browser_client_is_served(client):
    response = client.http.get("/static/realtime.js")
    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/javascript")
    assert b"export class RealtimeClient" in response.body


# --- the audit trail -------------------------------------------------------------------------------


def test_every_websocket_step_is_audited_with_actor_ip_and_user_agent_and_never_the_credential(gw, api):
    from tests.functional.audit_helpers import all_events

    editor = api.user("editor")
    mine, theirs = article(api), article(api, "admin")
    issued = ticket(api, "editor")
    cid, _ = gw.connect(ticket=issued)
    assert gw.send(cid, {"action": "subscribe", "room": f"article:{mine}"})[0]["type"] == "subscribed"
    assert gw.send(cid, {"action": "subscribe", "room": f"article:{theirs}"})[0]["type"] == "error"
    gw.disconnect(cid)
    refused, response = gw.connect(ticket=issued)  # used already
    assert response["statusCode"] == 401

    trail = [e for e in all_events(api) if e["action"].startswith(("realtime.", "security."))]
    by_action = {e["action"]: e for e in reversed(trail)}  # the first of each
    assert set(by_action) == {
        "realtime.ticket",
        "realtime.connect",
        "realtime.subscribe",
        "security.forbidden",
        "realtime.disconnect",
        "realtime.refused",
    }
    for action in ("realtime.connect", "realtime.subscribe", "security.forbidden", "realtime.disconnect"):
        event = by_action[action]
        assert event["actor"] == {
            "user_id": editor["id"],
            "email": editor["email"],
            "ip": "203.0.113.9",
            "user_agent": "pytest",
        }, action
        assert event["request_id"], action
    assert by_action["realtime.connect"]["resource"] == {"type": "connection", "id": cid}
    assert by_action["realtime.connect"]["details"] == {"via": "ticket"}
    assert by_action["realtime.subscribe"]["resource"] == {"type": "room", "id": f"article:{mine}"}
    assert by_action["security.forbidden"]["resource"] == {"type": "room", "id": f"article:{theirs}"}
    assert by_action["realtime.disconnect"]["details"] == {"code": 1001, "reason": "Going away"}
    assert by_action["realtime.refused"]["actor"]["user_id"] is None
    assert by_action["realtime.refused"]["details"]["via"] == "ticket"
    assert "already used" in by_action["realtime.refused"]["details"]["reason"]
    assert by_action["realtime.ticket"]["actor"]["user_id"] == editor["id"]
    assert issued not in str(trail)  # the ticket opens a connection: never recorded


def test_subscribing_again_to_a_joined_room_is_audited_once(gw, api):
    from tests.functional.audit_helpers import all_events

    room = f"article:{article(api)}"
    cid = connect(gw, api, "admin")
    for _ in range(3):
        assert gw.send(cid, {"action": "subscribe", "room": room})[0]["type"] == "subscribed"
    assert len([e for e in all_events(api, action="realtime.subscribe") if e["resource"]["id"] == room]) == 1


def _invoke(inv: runtime.Invocation, fn: Any, *args: Any) -> Any:
    """Run `fn` as app.py's middleware runs a handler (its end flushes the audit log)."""
    import app

    return app.middleware.run(inv, fn, *args)
