"""Realtime under faults inside AWS (tests/faults.py): a room counter's ADD applied whose answer was
lost is sent again by the SDK and must not count twice (seqs rise by one; members stay counted)."""

from __future__ import annotations

import pytest

from chalicelib.realtime import emitters, live
from chalicelib.realtime import sender as sender_module
from tests.functional.ws_support import FakeManagement

ARTICLE = "b" * 32


@pytest.fixture
def management(faults, monkeypatch: pytest.MonkeyPatch) -> FakeManagement:
    fake = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: fake)
    return fake


def join(connection_id: str, *rooms: str) -> None:
    user = {"id": "admin-1", "email": "a@example.com", "role": "admin", "jti": "jti"}
    live.connections().open(connection_id, user, list(rooms), "https://gw/api")


def test_a_seq_reservation_whose_answer_was_lost_takes_its_seqs_once(faults, management):
    room = f"article:{ARTICLE}"
    join("c1", room)
    faults.lose("UpdateItem", match="ADD #l :n")
    first = emitters.emit_article_status(ARTICLE, "PROCESSING", "author-1", "job-1")
    second = emitters.emit_article_status(ARTICLE, "PUBLISHED", "author-1", "job-1")
    assert faults.met["UpdateItem"] == 1
    assert (first[room], second[room]) == (1, 2)
    assert [f["seq"] for f in management.take("c1")] == [1, 2]


def test_a_member_leaving_whose_answer_was_lost_is_counted_out_once(faults, management):
    room = f"article:{ARTICLE}"
    join("c1", room)
    join("c2", room)
    faults.lose("UpdateItem", match="ADD members :minus")
    live.connections().leave("c1", room)
    assert faults.met["UpdateItem"] == 1
    emitters.emit_article_status(ARTICLE, "PUBLISHED", "author-1", "job-1")
    assert [f["seq"] for f in management.take("c2")] == [1]  # the room still has its member


def test_fan_out_shards_sent_again_after_a_lost_answer_are_delivered_once(faults, management, monkeypatch):
    from chalicelib import config
    from tests.functional.test_realtime_fanout import drain, join_many, seqs

    monkeypatch.setenv(config.FANOUT_THRESHOLD, "10")
    monkeypatch.setenv(config.FANOUT_GROUPS, "4")
    config.reset()
    ids = join_many(40)
    faults.lose("SendMessageBatch")
    first = emitters.emit_system_alert("info", "one")["admin"]
    assert faults.met["SendMessageBatch"] == 1
    drain(parallel=4)
    for cid in ids:
        assert seqs(management, cid) == [first], cid  # the FIFO queue dropped the repeat (deduplication ids)


def test_a_fan_out_shard_whose_claim_lost_its_answer_is_posted_once(faults, management, monkeypatch):
    from chalicelib import config
    from tests.functional.test_realtime_fanout import drain, join_many, seqs

    monkeypatch.setenv(config.FANOUT_THRESHOLD, "10")
    monkeypatch.setenv(config.FANOUT_GROUPS, "4")
    config.reset()
    ids = join_many(40)
    faults.lose("UpdateItem", times=2, match="attribute_not_exists(#d)")  # the claims of two shards
    first = emitters.emit_system_alert("info", "one")["admin"]
    drain(parallel=4)
    assert faults.met["UpdateItem"] == 2
    for cid in ids:
        assert seqs(management, cid) == [first], cid  # the SDK's repeat met its own claim: posted once
