"""Pure WebSocket logic: room rules, frame parsing, envelopes and size limits, the fan-out pool."""

from __future__ import annotations

import json
import threading
import time

import pytest
from botocore.exceptions import ClientError

from chalicelib.realtime import emitters, frames, protocol, rooms
from chalicelib.realtime.sender import Sender, is_gone

ARTICLE = "f" * 32
AUTHORS = {ARTICLE: "alice"}


def check(user_id: str, role: str, room: str) -> None:
    rooms.check_access(user_id, role, room, AUTHORS.get)


# --- rooms ------------------------------------------------------------------------------------------------


def test_every_connection_joins_its_user_room_and_admins_the_admin_room():
    assert rooms.base_rooms("u1", "viewer") == ["user:u1"]
    assert rooms.base_rooms("u1", "editor") == ["user:u1"]
    assert rooms.base_rooms("a1", "admin") == ["user:a1", "admin"]


@pytest.mark.parametrize(
    "user_id, role, room",
    [
        ("alice", "editor", f"article:{ARTICLE}"),
        ("root", "admin", f"article:{ARTICLE}"),
        ("root", "admin", "admin"),
        ("bob", "viewer", "user:bob"),
    ],
)
def test_allowed_rooms(user_id, role, room):
    check(user_id, role, room)


@pytest.mark.parametrize(
    "user_id, role, room, reason",
    [
        ("bob", "editor", f"article:{ARTICLE}", "not allowed"),
        ("bob", "viewer", f"article:{ARTICLE}", "not allowed"),
        ("bob", "editor", "article:" + "0" * 32, "not allowed"),  # missing looks like someone else's
        ("root", "admin", "article:" + "0" * 32, "does not exist"),
        ("bob", "editor", "admin", "only admins"),
        ("bob", "editor", "user:alice", "own user room"),
        ("root", "admin", "user:alice", "own user room"),
        ("bob", "editor", "article:ABC", "unknown room"),
        ("bob", "editor", "lobby", "unknown room"),
        ("bob", "editor", "admin ", "unknown room"),
        ("bob", "editor", "", "unknown room"),
    ],
)
def test_refused_rooms(user_id, role, room, reason):
    with pytest.raises(rooms.RoomRefused, match=reason):
        check(user_id, role, room)


def test_the_article_lookup_is_only_made_for_article_rooms():
    def no_lookup(article_id):
        raise AssertionError("looked up")

    rooms.check_access("u", "admin", "admin", no_lookup)
    rooms.check_access("u", "viewer", "user:u", no_lookup)


# --- frames ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "frame, expected",
    [
        ({"action": "ping"}, frames.Ping(action="ping")),
        ({"action": "rooms"}, frames.Rooms(action="rooms")),
        ({"action": "subscribe", "room": "admin"}, frames.Subscribe(action="subscribe", room="admin")),
        ({"action": "unsubscribe", "room": "admin"}, frames.Unsubscribe(action="unsubscribe", room="admin")),
        ({"action": "resume", "room": "admin", "after": 0}, frames.Resume(action="resume", room="admin", after=0)),
    ],
)
def test_valid_frames_parse(frame, expected):
    assert frames.parse_frame(json.dumps(frame)) == expected


@pytest.mark.parametrize(
    "raw, message",
    [
        (None, "empty frame"),
        ("", "JSON"),
        (b"\xff\xfe", "JSON"),
        ("null", "JSON objects"),
        ('"ping"', "JSON objects"),
        ('{"action": null}', "'action' string"),
        ('{"action": "PING"}', "unknown action"),
        ('{"action": "ping", "x": 1}', "invalid ping frame"),
        ('{"action": "resume", "room": "admin"}', "after"),
        ('{"action": "resume", "room": "admin", "after": 1.5}', "after"),
        ('{"action": "subscribe", "room": ""}', "room"),
        ('{"action": "subscribe", "room": "' + "r" * 101 + '"}', "room"),
        ('{"action": "subscribe", "room": 5}', "room"),
        ("\ud800", "UTF-8"),  # a lone surrogate: raised UnicodeEncodeError
        ('{"action":"ping"}\ud800', "UTF-8"),
        ('{"a":' * 5000, "nested"),  # 25 KB, under the size limit: raised RecursionError
        ("[" * 30_000, "nested"),
    ],
)
def test_bad_frames_are_named(raw, message):
    with pytest.raises(frames.BadFrame, match=message):
        frames.parse_frame(raw)


def test_a_frame_just_under_32_kb_is_read_and_one_byte_over_is_refused():
    padding = "a" * (protocol.MAX_FRAME_BYTES - len('{"action":"subscribe","room":""}'))
    at_limit = '{"action":"subscribe","room":"' + padding + '"}'
    assert len(at_limit) == protocol.MAX_FRAME_BYTES
    with pytest.raises(frames.BadFrame, match="room"):  # read, then refused for its room
        frames.parse_frame(at_limit)
    with pytest.raises(frames.BadFrame, match="at most 32768 bytes"):
        frames.parse_frame(at_limit + " ")


def test_the_envelope_has_exactly_the_contract_fields():
    env = protocol.envelope("system.alert", "admin", 7, "2026-11-28T02:00:00.000Z", {"level": "info"})
    assert env == {
        "type": "system.alert",
        "room": "admin",
        "seq": 7,
        "ts": "2026-11-28T02:00:00.000Z",
        "data": {"level": "info"},
    }


def test_size_check_counts_the_whole_envelope():
    ts = "2026-11-28T02:00:00.000Z"
    overhead = len(protocol.dumps(protocol.envelope("t", "admin", 10**15, ts, {"m": ""})).encode())
    fits = {"m": "x" * (protocol.MAX_MESSAGE_BYTES - overhead)}
    protocol.check_size("t", ["admin"], ts, fits)
    with pytest.raises(protocol.PayloadTooLarge, match="limited to 131072 bytes"):
        protocol.check_size("t", ["admin"], ts, {"m": fits["m"] + "x"})
    with pytest.raises(protocol.PayloadTooLarge):  # the longest room name decides
        protocol.check_size("t", ["admin", f"article:{ARTICLE}"], ts, fits)


def test_multibyte_text_is_measured_in_bytes():
    with pytest.raises(protocol.PayloadTooLarge):
        protocol.check_size("t", ["admin"], "ts", {"m": "é" * (protocol.MAX_MESSAGE_BYTES // 2)})


# --- throttle -------------------------------------------------------------------------------------------


def test_an_update_is_due_once_its_time_has_come():
    assert emitters.due(0, 1000.0)
    assert emitters.due(1005.0, 1005.0)
    assert not emitters.due(1005.0, 1004.9)


# --- fan-out --------------------------------------------------------------------------------------------


class SlowClient:
    def __init__(self, delay: float, gone: set[str] = frozenset(), broken: set[str] = frozenset()) -> None:
        self.delay, self.gone, self.broken = delay, gone, broken
        self.in_flight = self.peak = 0
        self.received: list[str] = []
        self.lock = threading.Lock()

    def post_to_connection(self, ConnectionId, Data):  # noqa: N803
        with self.lock:
            self.in_flight += 1
            self.peak = max(self.peak, self.in_flight)
        time.sleep(self.delay)
        with self.lock:
            self.in_flight -= 1
        if ConnectionId in self.gone:
            raise ClientError({"Error": {"Code": "GoneException", "Message": "gone"}}, "PostToConnection")
        if ConnectionId in self.broken:
            raise ConnectionError("reset")
        with self.lock:
            self.received.append(ConnectionId)


def test_a_broadcast_posts_concurrently_within_the_pool_bound():
    client = SlowClient(0.01)
    result = Sender(client, workers=8).broadcast([f"c{i}" for i in range(64)], {"type": "x"})
    assert result.sent == 64 and result.gone == [] and result.failed == []
    assert 2 <= client.peak <= 8


def test_gone_and_failing_connections_are_reported_and_do_not_stop_the_others():
    client = SlowClient(0, gone={"c1"}, broken={"c2"})
    result = Sender(client, workers=4).broadcast(["c0", "c1", "c2", "c3", "c0"], "frame")
    assert result.sent == 2 and result.gone == ["c1"] and result.failed == ["c2"]
    assert sorted(client.received) == ["c0", "c3"]  # c0 listed twice, posted once


def test_a_single_post_reports_gone_and_raises_other_errors():
    client = SlowClient(0, gone={"g"}, broken={"b"})
    sender = Sender(client)
    assert sender.post("ok", {"a": 1}) is True
    assert sender.post("g", {"a": 1}) is False
    with pytest.raises(ConnectionError):
        sender.post("b", {"a": 1})


def test_gone_is_recognised_by_code_or_status():
    assert is_gone(ClientError({"Error": {"Code": "GoneException"}}, "PostToConnection"))
    assert is_gone(ClientError({"Error": {"Code": "410"}, "ResponseMetadata": {"HTTPStatusCode": 410}}, "Post"))
    assert not is_gone(ClientError({"Error": {"Code": "LimitExceededException"}}, "PostToConnection"))
    assert not is_gone(ValueError("x"))
