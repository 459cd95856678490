"""Digests on moto: sealing is incremental and chained, verify passes on an untouched trail and
names every tampering: an edit, a delete, an insert, a reorder, an edited or deleted digest."""

from __future__ import annotations

import time

import pytest
from boto3.dynamodb.conditions import Key

from chalicelib import aws, timeutil
from chalicelib.audit import chain, model, sealer
from tests.conftest import body
from tests.functional.audit_helpers import seed, with_clock

# A minute ago: near the real time, which the JWT library checks tokens against.
T = float(int(time.time()) - 60)
SINCE, UNTIL = T - 5 * 3600, T


@pytest.fixture
def trail(aws_mock, monkeypatch):
    """20 events over the three hours before T, sealed at T."""
    monkeypatch.setattr(timeutil, "now", lambda: T)
    monkeypatch.setattr(chain, "GENESIS_HOURS", 4)  # the first seal reaches back 4 hours, not 48
    events = seed(20, T - 3 * 3600, step=3 * 3600 / 20 - 1)
    result = sealer.seal(T)
    assert result["sealed"] >= 3 and result["events"] == 20
    return events


def table():
    return aws.table("audit_events")


def stored(event):
    """The stored item of a public event (found through its resource-free id)."""
    for shard_hour in {model.hour_of(timeutil.parse_iso(event["ts"]))}:
        for pk in model.partitions(shard_hour):
            for item in table().query(KeyConditionExpression=Key("hour").eq(pk))["Items"]:
                if item["id"] == event["id"]:
                    return item
    raise AssertionError("not stored")


def verify():
    return chain.digests().verify(SINCE, UNTIL, T)


def problems(result, kind):
    return [p for p in result["problems"] if p["type"] == kind]


def heads():
    items = []
    for h in range(-5, 1):
        hour = model.hour_of(T + h * 3600)
        items += [
            i
            for i in aws.table("audit_digests").query(KeyConditionExpression=Key("hour").eq(hour))["Items"]
            if "leaves" not in i
        ]
    return sorted(items, key=lambda i: i["seq"])


def test_an_untouched_trail_verifies(trail):
    result = verify()
    assert result == {**result, "valid": True, "problems": [], "checked": 20}
    assert result["sealed_until"] == timeutil.iso_ms(model.minute_start(T - chain.SEAL_GRACE))  # on the minute


def test_sealing_is_incremental_and_stays_chained(trail, monkeypatch):
    later = T + 2 * 3600
    monkeypatch.setattr(timeutil, "now", lambda: later)
    seed(3, T + 600, step=600)
    again = sealer.seal(later)
    assert again["events"] == 3 and again["sealed"] in (2, 3)  # two hours, cut at the hour boundaries
    assert sealer.seal(later)["sealed"] == 0  # nothing new to seal
    result = chain.digests().verify(T - 4 * 3600, later, later)
    assert result["valid"], result["problems"]
    linked = heads()
    seqs = [int(h["seq"]) for h in linked]
    assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))


def test_an_edited_event_is_named(trail):
    victim = stored(trail[7])
    table().update_item(
        Key={"hour": victim["hour"], "sk": victim["sk"]},
        UpdateExpression="SET details = :d",
        ExpressionAttributeValues={":d": {"n": 999}},
    )
    result = verify()
    assert not result["valid"]
    assert [p["event_id"] for p in problems(result, "event_changed")] == [victim["id"]]


def test_a_deleted_event_is_named(trail):
    victim = stored(trail[3])
    table().delete_item(Key={"hour": victim["hour"], "sk": victim["sk"]})
    result = verify()
    assert [p["event_id"] for p in problems(result, "event_deleted")] == [victim["id"]]
    assert result["valid"] is False


def test_an_event_deleted_after_its_ttl_is_expected(trail):
    victim = stored(trail[3])
    table().delete_item(Key={"hour": victim["hour"], "sk": victim["sk"]})
    result = chain.digests().verify(SINCE, UNTIL, float(victim["ttl"]) + 1)
    assert result["valid"], result["problems"]


def test_an_inserted_event_is_named(trail):
    model_item = stored(trail[5])
    forged = dict(model_item, id="f" * 32, sk=model_item["sk"].split("#")[0] + "#" + "f" * 32, action="auth.login")
    table().put_item(Item=forged)
    result = verify()
    assert [p["event_id"] for p in problems(result, "event_inserted")] == ["f" * 32]


def test_a_reordered_event_is_named(trail):
    victim = stored(trail[10])
    table().delete_item(Key={"hour": victim["hour"], "sk": victim["sk"]})
    earlier = timeutil.iso_ms(timeutil.parse_iso(victim["ts"]) - 30)
    table().put_item(Item=dict(victim, sk=f"{earlier}#{victim['id']}", ts=earlier))
    result = verify()
    assert [p["event_id"] for p in problems(result, "event_reordered")] == [victim["id"]]
    assert not problems(result, "event_deleted") and not problems(result, "event_inserted")


def test_swapped_events_are_both_named(trail):
    a, b = stored(trail[1]), stored(trail[2])
    keys = ("hour", "sk")
    table().put_item(Item={**{k: v for k, v in b.items() if k not in keys}, **{k: a[k] for k in keys}})
    table().put_item(Item={**{k: v for k, v in a.items() if k not in keys}, **{k: b[k] for k in keys}})
    result = verify()
    assert sorted(p["event_id"] for p in problems(result, "event_changed")) == sorted([a["id"], b["id"]])


def test_an_edited_digest_is_named(trail):
    head = next(h for h in heads() if int(h["count"]) > 0)
    aws.table("audit_digests").update_item(
        Key={"hour": head["hour"], "seg": head["seg"]},
        UpdateExpression="SET #c = :c",
        ExpressionAttributeNames={"#c": "count"},
        ExpressionAttributeValues={":c": 0},
    )
    result = verify()
    invalid = problems(result, "digest_invalid")
    assert len(invalid) == 1 and f"#{int(head['seq'])}" in invalid[0]["digest"]


def test_an_edited_digest_event_list_is_named(trail):
    head = next(h for h in heads() if int(h["count"]) > 0)
    parts = aws.table("audit_digests").query(
        KeyConditionExpression=Key("hour").eq(head["hour"]) & Key("seg").begins_with(head["seg"] + "#")
    )["Items"]
    lines = parts[0]["leaves"].split("\n")
    aws.table("audit_digests").update_item(
        Key={"hour": head["hour"], "seg": parts[0]["seg"]},
        UpdateExpression="SET leaves = :l",
        ExpressionAttributeValues={":l": "\n".join(lines[1:])},  # hide an event from the seal
    )
    assert problems(verify(), "digest_invalid")


def test_a_deleted_digest_is_named_and_breaks_the_chain(trail):
    linked = heads()
    middle = linked[len(linked) // 2]
    aws.table("audit_digests").delete_item(Key={"hour": middle["hour"], "seg": middle["seg"]})
    result = verify()
    missing = problems(result, "digest_missing")
    assert missing and middle["start"] in missing[0]["message"]
    assert problems(result, "chain_broken")


def test_deleting_the_last_digest_is_noticed(trail):
    last = heads()[-1]
    aws.table("audit_digests").delete_item(Key={"hour": last["hour"], "seg": last["seg"]})
    assert problems(verify(), "digest_missing")


def test_a_forged_chain_head_stops_sealing_and_fails_verify(trail):
    aws.table("audit_digests").update_item(
        Key=chain.CHAIN,
        UpdateExpression="SET #e = :e",
        ExpressionAttributeNames={"#e": "end"},
        ExpressionAttributeValues={":e": timeutil.iso_ms(T)},
    )
    with pytest.raises(chain.TamperDetected):
        sealer.seal(T + 3600)
    assert problems(verify(), "digest_invalid")


def test_an_edit_before_the_seal_is_caught_by_the_event_signature(trail):
    fresh = with_clock(T, lambda: seed(1, T)[0])
    victim = stored(fresh)
    table().update_item(
        Key={"hour": victim["hour"], "sk": victim["sk"]},
        UpdateExpression="SET #a = :a",
        ExpressionAttributeNames={"#a": "action"},
        ExpressionAttributeValues={":a": "auth.login"},
    )
    result = verify()
    assert [p["event_id"] for p in problems(result, "event_changed")] == [victim["id"]]


def test_a_late_write_by_inkwell_into_a_sealed_period_is_a_note_not_a_problem(trail):
    late = seed(1, T - 2 * 3600)[0]  # written with a valid signature after the seal
    result = verify()
    assert result["valid"], result["problems"]
    assert any(late["id"] in note for note in result["notes"])


def test_the_verify_endpoint_names_an_event_altered_in_dynamodb(api, trail):
    victim = stored(trail[0])
    table().update_item(
        Key={"hour": victim["hour"], "sk": victim["sk"]},
        UpdateExpression="SET severity = :s",
        ExpressionAttributeValues={":s": "info "},
    )
    response = api.get(f"/api/audit/verify?since={timeutil.iso(SINCE)}&until={timeutil.iso(UNTIL)}", as_="admin")
    assert response.status_code == 200
    result = body(response)
    assert result["valid"] is False
    assert any(p.get("event_id") == victim["id"] for p in result["problems"])
    # the tampering was itself recorded, and raised a critical alert
    seen = body(api.get("/api/audit?action=audit.tamper_detected", as_="admin"))["items"]
    assert seen and seen[0]["severity"] == "critical"


def test_verify_range_is_bounded(api):
    response = api.get("/api/audit/verify?since=2026-01-01T00:00:00Z&until=2026-02-01T00:00:00Z", as_="admin")
    assert response.status_code == 400


def test_a_verify_out_of_budget_says_where_to_go_on_and_its_continuation_checks_the_rest(trail, monkeypatch):
    victim = stored(trail[-1])  # in the last hour
    table().update_item(
        Key={"hour": victim["hour"], "sk": victim["sk"]},
        UpdateExpression="SET details = :d",
        ExpressionAttributeValues={":d": {"n": 999}},
    )
    whole = verify()
    assert whole["complete"] is True and whole["next_since"] is None
    monkeypatch.setattr(chain, "MAX_VERIFY_EVENTS", 1)  # every call stops after one hour with events
    calls, since = [], SINCE
    while len(calls) < 10:
        calls.append(chain.digests().verify(since, UNTIL, T))
        if calls[-1]["complete"]:
            break
        assert timeutil.parse_iso(calls[-1]["next_since"]) > since
        since = timeutil.parse_iso(calls[-1]["next_since"])
    assert calls[-1]["complete"] and len(calls) >= 4  # 5 hours, events in the last 3
    assert sum(c["checked"] for c in calls) == whole["checked"] == 20
    assert [p["event_id"] for c in calls for p in problems(c, "event_changed")] == [victim["id"]]
    assert [c["valid"] for c in calls].count(False) == 1  # the call that checked the victim's hour
    # out of time: one hour per call, whatever the events
    monkeypatch.setattr(chain, "MAX_VERIFY_EVENTS", 10**6)
    first = chain.digests().verify(SINCE, UNTIL, T, time_left=lambda: 0.0)
    assert first["complete"] is False
    assert first["next_since"] == timeutil.iso(model.hour_start(SINCE) + 3600)


def test_the_verify_endpoint_answers_where_its_continuation_starts(api, trail, monkeypatch):
    from chalicelib.audit import api as audit_api

    monkeypatch.setattr(audit_api, "VERIFY_SECONDS", 0.0)  # out of time after the first hour
    response = api.get(f"/api/audit/verify?since={timeutil.iso(SINCE)}&until={timeutil.iso(UNTIL)}", as_="admin")
    assert response.status_code == 200
    result = body(response)
    assert (result["complete"], result["next_since"]) == (False, timeutil.iso(model.hour_start(SINCE) + 3600))
    assert result["valid"] is True
