"""Limits under faults inside AWS (tests/faults.py): a windowed quota's ADD and a WebSocket frame's
token, applied but their answer lost and sent again by the SDK, count once."""

from __future__ import annotations

import pytest

from chalicelib import aws, quotas, timeutil
from chalicelib.realtime import live
from chalicelib.realtime.frame_limit import FrameLimit

NOW = 1_800_000_030.0  # mid-minute: the quota's window cannot turn during a test


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(timeutil, "now", lambda: NOW)


def take(limit: int) -> None:
    quotas.take("events_per_minute", "user-1", limit, 60, "analytics events a minute")


def test_a_quota_count_whose_answer_was_lost_counts_once(faults, clock):
    faults.lose("UpdateItem", match="ADD n :one")
    take(2)
    assert faults.met["UpdateItem"] == 1
    take(2)  # the second of two still fits
    with pytest.raises(quotas.QuotaExceeded):
        take(2)


def test_a_quota_s_last_count_whose_answer_was_lost_is_not_refused_by_itself(faults, clock):
    faults.lose("UpdateItem", match="ADD n :one")
    take(1)  # the repeat meets its own count: done, not over the quota
    assert faults.met["UpdateItem"] == 1
    with pytest.raises(quotas.QuotaExceeded):
        take(1)


def connection(monkeypatch: pytest.MonkeyPatch) -> FrameLimit:
    user = {"id": "u1", "email": "u@example.com", "role": "viewer", "jti": "jti"}
    monkeypatch.setattr(timeutil, "now", lambda: NOW)
    live.connections().open("c1", user, ["user:u1"], "https://gw/api")
    return FrameLimit(aws.table("ws_connections"), rate=1, burst=2)


def set_tat(tat_ms: int) -> None:
    aws.table("ws_connections").update_item(
        Key={"connection_id": "c1"}, UpdateExpression="SET tat = :t", ExpressionAttributeValues={":t": tat_ms}
    )


def test_a_frame_s_token_whose_answer_was_lost_is_taken_once(faults, monkeypatch):
    limit = connection(monkeypatch)
    set_tat(int(NOW * 1000))  # a full bucket of 2
    faults.lose("UpdateItem", match="SET tat = tat + :i")
    assert limit.take("c1").connection is not None
    assert faults.met["UpdateItem"] == 1
    assert limit.take("c1").refused == 0  # the second token is still there
    assert limit.take("c1").refused == 1


def test_a_refused_frame_whose_answer_was_lost_counts_once(faults, monkeypatch):
    limit = connection(monkeypatch)
    set_tat(int(NOW * 1000) + 10_000)  # an empty bucket
    faults.lose("UpdateItem", match="ADD refused :one")
    assert limit.take("c1").refused == 1
    assert faults.met["UpdateItem"] == 1
    assert limit.take("c1").refused == 2


def test_a_refilled_bucket_whose_answer_was_lost_takes_one_token(faults, monkeypatch):
    limit = connection(monkeypatch)
    set_tat(int(NOW * 1000) - 60_000)  # paused a minute: the bucket is refilled on this frame
    faults.lose("UpdateItem", match="SET tat = :next")
    assert limit.take("c1").refused == 0
    assert faults.met["UpdateItem"] == 1
    assert limit.take("c1").refused == 0
    assert limit.take("c1").refused == 1
