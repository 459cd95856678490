"""Audit proof on moto: the fallback queue stores only what its writer signed, and verify sees a
deleted or replaced event through the flush manifests, sealed or not."""

from __future__ import annotations

import json
import time

import pytest
from boto3.dynamodb.conditions import Key

from chalicelib import aws, config, secret, timeutil
from chalicelib.audit import chain, logger, model
from chalicelib.audit.actions import classify

T = float(int(time.time()) - 60)


def _placed(now=T, **fields):
    item = model.build(
        "user.update",
        classify("user.update"),
        user_id=fields.get("user_id", "admin-1"),
        ip="10.0.0.1",
        user_agent="ua",
        request_id="r",
        resource=("user", "u-9"),
        details={"role": "admin"},
        now=now,
    )
    return model.place(item, now, now, secret.get(config.AUDIT_DIGEST_KEY))


def _body(*items):
    return next(iter(logger._bodies(list(items))))


def _refusals(monkeypatch):
    counted = []
    real = logger.metrics.count
    monkeypatch.setattr(
        logger.metrics, "count", lambda name, value=1, **d: counted.append((name, value)) or real(name, value, **d)
    )
    return counted


def _events(action):
    month = timeutil.iso(timeutil.now())[:7]
    result = aws.table("audit_events").query(
        IndexName="by_action", KeyConditionExpression=Key("action_month").eq(f"{action}#{month}")
    )
    return result["Items"]


def test_a_genuine_queued_event_is_stored_with_its_writers_signature(aws_mock, monkeypatch):
    monkeypatch.setattr(timeutil, "now", lambda: T + 30)
    genuine = _placed()
    assert logger.process_fallback_message(_body(genuine)) == 1
    (stored,) = [i for i in _events("user.update") if i["id"] == genuine["id"]]
    assert stored["mac"] == genuine["mac"] and stored["sk"] != genuine["sk"]  # re-keyed, not re-signed
    assert model.mac_ok(stored, secret.get(config.AUDIT_DIGEST_KEY))


@pytest.mark.parametrize(
    "forge, reason",
    [
        (lambda i: dict(i, user_id="someone-else"), "forged"),  # edited after signing
        (lambda i: {k: v for k, v in i.items() if k != "mac"}, "unsigned"),
        (lambda i: dict(i, mac=model.mac(i, "a key of my own")), "forged"),
    ],
)
def test_a_forged_queued_event_is_refused_counted_and_verify_stays_valid(aws_mock, monkeypatch, forge, reason):
    monkeypatch.setattr(timeutil, "now", lambda: T)
    counted = _refusals(monkeypatch)
    forged = forge(_placed())
    assert logger.process_fallback_message(_body(forged)) == 0
    assert not [i for i in _events("user.update") if i["id"] == forged["id"]]
    (refusal,) = _events("security.audit_refused")
    assert refusal["details"]["reasons"] == {reason: 1} and refusal["details"]["ids"] == [forged["id"]]
    assert ("AuditFallbackRefused", 1) in counted
    chain.seal(T + 120)
    result = chain.digests().verify(T - 3600, T + 120, T + 120)
    assert result["valid"], result["problems"]


def test_a_signed_event_dated_in_the_future_is_refused(aws_mock, monkeypatch):
    monkeypatch.setattr(timeutil, "now", lambda: T)
    counted = _refusals(monkeypatch)
    ahead = _placed(now=T + 10 * 86400)  # signed with the real key, ten days ahead
    near = _placed(now=T + logger.FUTURE_SKEW / 2)  # within the clock skew: accepted
    assert logger.process_fallback_message(_body(ahead, near)) == 1
    assert [i["id"] for i in _events("user.update")] == [near["id"]]
    (refusal,) = _events("security.audit_refused")
    assert refusal["details"]["reasons"] == {"future": 1}
    assert ("AuditFallbackRefused", 1) in counted


def test_a_malformed_queued_message_is_refused_not_a_crash(aws_mock):
    assert logger.process_fallback_message(json.dumps({"events": [{"id": 3}, "text", {}]})) == 0
    (refusal,) = _events("security.audit_refused")
    assert refusal["details"]["refused"] == 3
