"""Audit proof on moto: the fallback queue stores only what its writer signed, and verify sees a
deleted or replaced event through the flush manifests, sealed or not."""

from __future__ import annotations

import json
import time

import pytest
from boto3.dynamodb.conditions import Key

from chalicelib import aws, config, secret, timeutil
from chalicelib.audit import chain, logger, manifest, model, sealer, signing
from chalicelib.audit.actions import classify
from tests.functional.audit_helpers import seed

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
    sealer.seal(T + 120)
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


# --- deletion and replacement, seen through the flush manifests ------------------------------


def _trail(monkeypatch, n=6):
    """n events written at T - 600 (one per flush) and the time verify runs: five minutes later."""
    monkeypatch.setattr(timeutil, "now", lambda: T - 600)
    events = seed(n, T - 600, step=1.0)
    monkeypatch.setattr(timeutil, "now", lambda: T)
    return events


def _verify():
    return chain.digests().verify(T - 3600, T, T)


def _stored(event):
    hour = model.hour_of(timeutil.parse_iso(event["ts"]))
    for pk in model.partitions(hour):
        for item in aws.table("audit_events").query(KeyConditionExpression=Key("hour").eq(pk))["Items"]:
            if item["id"] == event["id"]:
                return item
    raise AssertionError("not stored")


def _named(result, kind):
    return [p["event_id"] for p in result["problems"] if p["type"] == kind]


@pytest.mark.parametrize("sealed", [False, True])
def test_an_event_deleted_with_batch_write_item_is_named_sealed_or_not(aws_mock, monkeypatch, sealed):
    events = _trail(monkeypatch)
    if sealed:
        sealer.seal(T)
    assert _verify()["valid"]
    victim = _stored(events[2])
    table = aws.table("audit_events")
    table.meta.client.batch_write_item(
        RequestItems={table.name: [{"DeleteRequest": {"Key": {"hour": victim["hour"], "sk": victim["sk"]}}}]}
    )
    result = _verify()
    assert result["valid"] is False
    assert _named(result, "event_deleted") == [victim["id"]]


def test_an_event_replaced_and_signed_again_is_named_before_any_seal(aws_mock, monkeypatch):
    events = _trail(monkeypatch)
    victim = _stored(events[4])
    forged = dict(victim, details={"n": 999}, user_id="someone-else")
    forged["mac"] = model.mac(forged, secret.get(config.AUDIT_DIGEST_KEY))  # with the key every role reads
    aws.table("audit_events").put_item(Item=forged)
    result = _verify()
    assert _named(result, "event_replaced") == [victim["id"]] and result["valid"] is False


def test_a_deleted_manifest_leaves_a_gap_verify_names(aws_mock, monkeypatch):
    _trail(monkeypatch, n=3)
    table = aws.table("audit_events")
    middle = _manifests(model.hour_of(T - 600))[1]
    table.delete_item(Key={"hour": middle["hour"], "sk": middle["sk"]})
    result = _verify()
    assert [p["type"] for p in result["problems"]] == ["manifest_deleted"]


def _manifests(hour):
    table = aws.table("audit_events")
    found = [
        i for pk in manifest.partitions(hour) for i in table.query(KeyConditionExpression=Key("hour").eq(pk))["Items"]
    ]
    return sorted(found, key=lambda m: int(m["seq"]))


def test_a_writers_last_manifest_put_over_with_its_event_is_named_before_any_seal(aws_mock, monkeypatch):
    """The attacker holds a writer's rights: PutItem (no delete) and the event key. It replaces
    the last event and re-lists it in a new manifest MACed with that key, at the same key."""
    events = _trail(monkeypatch, n=3)
    key = secret.get(config.AUDIT_DIGEST_KEY)
    victim = _stored(events[-1])
    forged = dict(victim, details={"n": 999})
    forged["mac"] = model.mac(forged, key)
    tip = _manifests(model.hour_of(T - 600))[-1]
    assert victim["sk"] in tip["keys"]
    rewritten = dict(tip, keys=manifest.line(forged))
    rewritten["mac"] = manifest.mac(rewritten, key)
    table = aws.table("audit_events")
    table.put_item(Item=forged)
    table.put_item(Item=rewritten)
    result = _verify()
    assert result["valid"] is False
    assert [p["type"] for p in result["problems"]] == ["manifest_invalid"]
    assert "overwritten" in result["problems"][0]["message"]


def test_a_refused_flush_and_its_manifest_come_back_through_the_queue_and_verify_holds(aws_mock, monkeypatch):
    client = aws.table("audit_events").meta.client

    def refused(**kwargs):
        raise client.exceptions.TransactionCanceledException(
            {"Error": {"Code": "TransactionCanceledException", "Message": "throttled"}}, "TransactWriteItems"
        )

    monkeypatch.setattr(logger, "sleep", lambda seconds: None)
    monkeypatch.setattr(timeutil, "now", lambda: T - 700)
    seed(1, T - 700)  # the writer's chain: a manifest before
    monkeypatch.setattr(client, "transact_write_items", refused)
    lost = seed(3, T - 650)  # three flushes DynamoDB refused: events and manifests queued
    monkeypatch.undo()
    monkeypatch.setattr(timeutil, "now", lambda: T - 700)
    seed(1, T - 600)  # and one after
    sqs = aws.client("sqs")
    bodies = [
        m["Body"] for m in sqs.receive_message(QueueUrl=aws.queue_url("audit"), MaxNumberOfMessages=10)["Messages"]
    ]
    assert len(bodies) == 3 and all("manifest" in json.loads(b) for b in bodies)
    monkeypatch.setattr(timeutil, "now", lambda: T - 500)
    for body in bodies + bodies:  # delivered twice
        logger.process_fallback_message(body)
    assert len(_manifests(model.hour_of(T - 650))) == 5
    monkeypatch.setattr(timeutil, "now", lambda: T)
    result = _verify()
    assert result["valid"], result["problems"]
    assert {_stored(e)["id"] for e in lost} == {e["id"] for e in lost}


def test_a_forged_manifest_in_the_queue_is_refused_and_counted(aws_mock, monkeypatch):
    monkeypatch.setattr(timeutil, "now", lambda: T)
    counted = _refusals(monkeypatch)
    key = secret.get(config.AUDIT_DIGEST_KEY)
    genuine = manifest.build([manifest.line(_placed())], T, key)
    for forged in (dict(genuine, keys=""), dict(genuine, mac=manifest.mac(genuine, "a key of my own"))):
        body = json.dumps({"events": [], "manifest": forged}, default=str)
        assert logger.process_fallback_message(body) == 0
    rewritten = dict(genuine, keys="")
    rewritten["mac"] = manifest.mac(rewritten, key)  # MACed with the event key, not its content id
    logger.process_fallback_message(json.dumps({"events": [], "manifest": rewritten}, default=str))
    assert _manifests(model.hour_of(T)) == []
    assert ("AuditFallbackRefused", 1) in counted and len(_events("security.audit_refused")) == 3


def test_a_critical_event_the_queue_stored_later_is_where_its_manifest_expects(aws_mock, monkeypatch):
    monkeypatch.setattr(timeutil, "now", lambda: T - 600)
    monkeypatch.setattr(logger.Writer, "put", lambda self, item: self.fallback([item]))  # DynamoDB refused it
    event = logger.record("queue.pause", resource=("queue", "emails"))
    logger.flush()  # the manifest lists it at its first key
    sqs = aws.client("sqs")
    (message,) = sqs.receive_message(QueueUrl=aws.queue_url("audit"))["Messages"]
    monkeypatch.setattr(timeutil, "now", lambda: T - 500)
    assert logger.process_fallback_message(message["Body"]) == 1  # re-keyed 100 s later
    monkeypatch.setattr(timeutil, "now", lambda: T)
    result = _verify()
    assert result["valid"], result["problems"]
    assert _stored(event)["sk"].startswith(timeutil.iso_ms(T - 500))


# --- the digest key: asymmetric, KMS on AWS ---------------------------------------------------


def test_digests_signed_with_a_kms_key_verify_with_its_public_key_alone(aws_mock, monkeypatch):
    kms = aws.client("kms")
    key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.create_alias(AliasName="alias/inkwell-test-audit", TargetKeyId=key["KeyId"])
    monkeypatch.setenv(config.AUDIT_SIGNING_KEY, "alias/inkwell-test-audit")
    _trail(monkeypatch, n=3)
    sealer.seal(T)
    public = signing.public_key()
    assert public["key_id"] == key["KeyId"] and public["algorithm"] == "ECDSA_SHA_256"
    head = chain.digests().head()
    assert head["alg"] == "ECDSA_SHA_256"
    assert signing.valid(public["public_key_pem"], signing.message("head", chain.pointer_text(head)), head["sig"])
    assert _verify()["valid"]
    # a digest re-signed with another key (the event key every role reads, or a key of one's own) fails
    aws.table("audit_digests").put_item(Item=dict(head, sig=chain.legacy_sign(chain.pointer_text(head), "k")))
    result = _verify()
    assert "digest_invalid" in [p["type"] for p in result["problems"]] and not result["valid"]


def test_the_public_key_route_is_for_admins(api):
    answer = api.get("/api/audit/public-key", as_="admin")
    assert answer.status_code == 200
    pem = json.loads(answer.body)["public_key_pem"]
    assert pem == signing.public_key()["public_key_pem"] and pem.startswith("-----BEGIN PUBLIC KEY-----")
    assert api.get("/api/audit/public-key", as_="editor").status_code == 403


# --- exports, verified offline --------------------------------------------------------------------


class _Context:
    aws_request_id = "export-test"

    def get_remaining_time_in_millis(self) -> int:
        return 300_000


def _run_cleanup_jobs(app):
    """Deliver the cleanup queue's messages to its consumer, as Lambda's poller would."""
    sqs = aws.client("sqs")
    url = aws.queue_url("cleanup")
    for _ in range(5):
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        if not messages:
            return
        records = [
            {"messageId": m["MessageId"], "receiptHandle": m["ReceiptHandle"], "body": m["Body"], "attributes": {}}
            for m in messages
        ]
        for record in records:
            record.update(messageAttributes={}, eventSource="aws:sqs", awsRegion="us-east-1")
            record["eventSourceARN"] = f"arn:aws:sqs:us-east-1:123456789012:{config.get().resource_name('cleanup')}"
        import app as app_module

        response = app_module.jobs_cleanup({"Records": records}, _Context())
        failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
        for m in messages:
            if m["MessageId"] not in failed:
                sqs.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])


def test_an_export_verifies_offline_and_an_edited_dropped_or_reordered_line_is_named(
    api, app, tmp_path, capsys, monkeypatch
):
    from chalicelib.audit import offline
    from infra import provision

    monkeypatch.setattr(chain, "GENESIS_HOURS", 2)  # the first seal reaches back 2 hours, not 48

    provision.create_export_bucket(aws.client("s3"))
    now = time.time()
    seed(6, now - 900, step=30)
    asked = api.post("/api/audit/exports", {"since": timeutil.iso(now - 3600), "until": timeutil.iso(now)}, as_="admin")
    assert asked.status_code == 202, asked.body
    export_id = json.loads(asked.body)["export_id"]
    assert json.loads(api.get(f"/api/audit/exports/{export_id}", as_="admin").body)["state"] == "pending"
    _run_cleanup_jobs(app)
    ready = json.loads(api.get(f"/api/audit/exports/{export_id}", as_="admin").body)
    assert ready["state"] == "ready" and ready["events"] >= 6 and export_id in ready["url"]
    assert [e["action"] for e in _events("audit.export")]  # asked, written, downloaded: audited
    text = aws.client("s3").get_object(Bucket=api_bucket(), Key=f"audit-exports/{export_id}.ndjson")["Body"].read()
    key = tmp_path / "public.json"
    key.write_bytes(api.get("/api/audit/public-key", as_="admin").body)
    lines = text.decode().splitlines()
    assert sum(1 for line in lines if '"type": "event"' in line) == ready["events"]

    def verify(rows):
        path = tmp_path / "export.ndjson"
        path.write_text("\n".join(rows) + "\n")
        code = offline.main([str(path), "--key", str(key)])
        return code, capsys.readouterr().err

    assert verify(lines) == (0, "")
    first = next(n for n, line in enumerate(lines) if '"type": "event"' in line)
    edited = lines.copy()
    edited[first] = edited[first].replace('"n": 0', '"n": 7')
    code, err = verify(edited)
    assert code == 1 and f"line {first + 1}: event" in err and "differs" in err
    dropped = lines[: first + 1] + lines[first + 2 :]
    code, err = verify(dropped)
    assert code == 1 and "is missing" in err
    swapped = lines.copy()
    swapped[first], swapped[first + 1] = swapped[first + 1], swapped[first]
    code, err = verify(swapped)
    assert code == 1 and "out of order" in err
    assert verify(lines[:-1])[0] == 1  # the last digest cut off


def api_bucket():
    from chalicelib.audit import api

    return api.bucket()


def test_an_export_range_is_checked(api):
    for payload, field in [
        ({"since": "yesterday", "until": "2026-11-28T00:00:00Z"}, "since"),
        ({"since": "2026-11-28T00:00:00Z", "until": "2026-11-27T00:00:00Z"}, "since"),
        ({"since": "2026-01-01T00:00:00Z", "until": "2026-11-27T00:00:00Z"}, "since"),
    ]:
        answer = api.post("/api/audit/exports", payload, as_="admin")
        assert answer.status_code == 400 and field.encode() in answer.body, answer.body
    assert api.get("/api/audit/exports/" + "f" * 32, as_="admin").status_code == 404
    assert api.post("/api/audit/exports", {"since": "a", "until": "b"}, as_="editor").status_code == 403


class _Job:
    """A job's context as the worker gives it: the attempt and the time left."""

    def __init__(self, attempt=1, seconds=1e9):
        self.attempt, self.seconds = attempt, seconds

    def time_left(self):
        return self.seconds


def _export_job(export_id_payload, job_id="exp-1"):
    return {"id": job_id, "queue": "cleanup", "type": "audit_export", "payload": export_id_payload}


def _small_parts(monkeypatch, part_bytes):
    import moto.s3.models

    from chalicelib.audit import export

    monkeypatch.setattr(export, "PART_BYTES", part_bytes)
    monkeypatch.setattr(moto.s3.models, "S3_UPLOAD_PART_MIN_SIZE", 1)  # S3's 5 MiB, scaled down
    return export


def test_an_export_streams_in_parts_and_a_job_short_of_time_hands_the_upload_on(api, monkeypatch, tmp_path):
    from chalicelib import jobs
    from chalicelib.audit import offline
    from infra import provision

    monkeypatch.setattr(chain, "GENESIS_HOURS", 2)
    export = _small_parts(monkeypatch, 2000)  # an event line is ~1 KB: a part every 2 lines
    provision.create_export_bucket(aws.client("s3"))
    now = time.time()
    seed(9, now - 900, step=30)
    payload = {"since": timeutil.iso(now - 3600), "until": timeutil.iso(now)}
    job, results = _export_job(payload), []
    for _ in range(30):  # each job has time for one part only (RESERVE_SECONDS), then hands on
        result = export.run(job, _Job(seconds=export.RESERVE_SECONDS))
        results.append(result)
        if not result.get("continued_by"):
            break
        job = jobs.get(result["continued_by"])
        state = job["payload"]["state"]
        assert job["payload"]["export_id"] == "exp-1" and len(state["etags"]) == result["parts"]
    assert len(results) > 3 and results[-1]["parts"] == len(results) and results[-1]["events"] >= 9
    s3 = aws.client("s3")
    assert not s3.list_multipart_uploads(Bucket=api_bucket()).get("Uploads")
    text = s3.get_object(Bucket=api_bucket(), Key="audit-exports/exp-1.ndjson")["Body"].read().decode()
    assert offline.check(text, signing.public_key()["public_key_pem"]) == []
    events = [json.loads(line)["event"]["sk"] for line in text.splitlines() if '"type": "event"' in line]
    assert len(events) == results[-1]["events"] and events == sorted(set(events))  # none twice, none lost


def test_a_failed_export_aborts_its_upload_and_its_retry_starts_again(api, monkeypatch):
    from chalicelib.audit import offline
    from infra import provision

    monkeypatch.setattr(chain, "GENESIS_HOURS", 2)
    export = _small_parts(monkeypatch, 2000)
    provision.create_export_bucket(aws.client("s3"))
    now = time.time()
    seed(5, now - 900, step=30)
    job = _export_job({"since": timeutil.iso(now - 3600), "until": timeutil.iso(now)})
    real, calls = export.Parts.put, []

    def failing(self, data):
        calls.append(len(data))
        if len(calls) == 2:
            raise RuntimeError("S3 went away")
        real(self, data)

    monkeypatch.setattr(export.Parts, "put", failing)
    with pytest.raises(RuntimeError):
        export.run(job, _Job())
    s3 = aws.client("s3")
    assert not s3.list_multipart_uploads(Bucket=api_bucket()).get("Uploads")  # aborted
    result = export.run(job, _Job(attempt=2))
    text = s3.get_object(Bucket=api_bucket(), Key="audit-exports/exp-1.ndjson")["Body"].read().decode()
    assert result["events"] >= 5 and offline.check(text, signing.public_key()["public_key_pem"]) == []


def test_a_high_priority_seal_job_still_goes_to_the_sealers_own_queue(api):
    from chalicelib import jobs

    sqs = aws.client("sqs")
    jobs.enqueue("cleanup", "audit_tally", {}, priority="high")
    jobs.enqueue("cleanup", "sessions", {}, priority="high")

    def waiting(queue):
        answer = sqs.receive_message(QueueUrl=aws.queue_url(queue), MaxNumberOfMessages=10)
        return sorted(json.loads(m["Body"]).get("type", "?") for m in answer.get("Messages", []))

    assert waiting("cleanup") == ["audit_tally"] and waiting("cleanup-high") == ["sessions"]
