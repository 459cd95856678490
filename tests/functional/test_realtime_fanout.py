"""Rooms above the fan-out threshold (chalicelib.realtime.fanout), on moto's FIFO queue and app.py's
`realtime_fanout` handler: every event reaches every connection exactly once, in seq order per
room, while the shards run as parallel invocations; a failing shard is retried alone; gone
connections are forgotten; `resume` has the events stored once."""

from __future__ import annotations

import json
import random
import time
from typing import Any

import pytest

from chalicelib import aws, config, timeutil
from chalicelib.realtime import emitters, fanout, live
from chalicelib.realtime import sender as sender_module
from local.sqs_lambda import lambda_event
from tests.functional.ws_support import Context, FakeManagement

ROOM = "admin"


@pytest.fixture
def management(aws_mock, monkeypatch: pytest.MonkeyPatch) -> FakeManagement:
    fake = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: fake)
    monkeypatch.setenv(config.FANOUT_THRESHOLD, "10")
    monkeypatch.setenv(config.FANOUT_GROUPS, "4")
    config.reset()
    return fake


def join_many(count: int, room: str = ROOM, prefix: str = "c") -> list[str]:
    members = live.connections()
    ids = [f"{prefix}{i:03d}" for i in range(count)]
    for cid in ids:
        members.open(
            cid, {"id": cid, "email": f"{cid}@example.com", "role": "admin", "jti": "j"}, [room], "https://gw/api"
        )
    return ids


def receive(wait: int = 0) -> list[dict[str, Any]]:
    """One invocation's batch (the catalogue's batch size), as Lambda's poller receives it."""
    sqs = aws.client("sqs")
    return sqs.receive_message(
        QueueUrl=aws.queue_url(fanout.QUEUE),
        MaxNumberOfMessages=fanout_spec().batch_size,
        MessageSystemAttributeNames=["All"],
        WaitTimeSeconds=wait,
    ).get("Messages", [])


def fanout_spec() -> Any:
    from chalicelib import catalog

    return catalog.queue(fanout.QUEUE)


def invoke(batch: list[dict[str, Any]]) -> set[str]:
    """Run app.py's handler on a received batch, delete what succeeded; the failed message ids."""
    import app as app_module

    answer = app_module.realtime_fanout(
        lambda_event(batch, "arn:aws:sqs:us-east-1:123456789012:fanout", "us-east-1"), Context()
    )
    failed = {f["itemIdentifier"] for f in answer["batchItemFailures"]}
    sqs = aws.client("sqs")
    for message in batch:
        if message["MessageId"] not in failed:
            sqs.delete_message(QueueUrl=aws.queue_url(fanout.QUEUE), ReceiptHandle=message["ReceiptHandle"])
    return failed


def drain(parallel: int = 4, seed: int = 7) -> int:
    """Run the queue dry as up to `parallel` concurrent invocations would: each holds its batch
    (the FIFO group stays locked) until it finishes, and a random one of those running finishes
    next. Returns the invocations."""
    pick = random.Random(seed).randrange
    running: list[list[dict[str, Any]]] = []
    invocations = 0
    while True:
        while len(running) < parallel and (batch := receive()):
            running.append(batch)
        if not running:
            return invocations
        invoke(running.pop(pick(len(running))))
        invocations += 1


def seqs(fake: FakeManagement, cid: str) -> list[int]:
    return [frame["seq"] for frame in fake.take(cid)]


def test_a_room_above_the_threshold_is_posted_in_shards_once_per_connection_in_seq_order(management):
    ids = join_many(40)
    # WHEN single events and a batch go to the room
    first = emitters.emit_system_alert("info", "one")[ROOM]
    emitters.emit_activities([{"id": "e1"}, {"id": "e2"}, {"id": "e3"}])
    last = emitters.emit_system_alert("info", "two")[ROOM]
    # THEN nothing was posted by the emitter itself: the shards wait in the queue
    assert management.calls == 0
    invocations = drain(parallel=4)
    # ...and every connection heard every event once, in seq order
    assert invocations >= 4 * 3  # 4 groups of connections per delivery, 3 deliveries
    for cid in ids:
        assert seqs(management, cid) == list(range(first, last + 1)), cid
    assert management.calls == len(ids) * 5


def test_every_connection_of_a_room_stays_in_one_group(management):
    ids = join_many(200)
    emitters.emit_system_alert("info", "x")
    emitters.emit_system_alert("info", "y")
    sqs = aws.client("sqs")
    groups: dict[str, set[str]] = {}
    while batch := receive():
        for message in batch:
            for cid in json.loads(message["Body"])["connections"]:
                groups.setdefault(cid, set()).add(message["Attributes"]["MessageGroupId"])
            sqs.delete_message(QueueUrl=aws.queue_url(fanout.QUEUE), ReceiptHandle=message["ReceiptHandle"])
    assert sorted(groups) == sorted(ids)
    assert {len(g) for g in groups.values()} == {1}
    assert len({g for found in groups.values() for g in found}) == 4  # the configured groups
    assert {g.split("#")[0] for found in groups.values() for g in found} == {ROOM}


def test_a_room_at_the_threshold_is_posted_directly(management):
    ids = join_many(10)
    emitters.emit_system_alert("info", "x")
    assert receive() == []
    assert all(len(management.take(cid)) == 1 for cid in ids)


def test_a_failing_shard_is_retried_alone_and_its_connections_hear_the_event_once(management, monkeypatch):
    ids = join_many(40)
    monkeypatch.setattr(fanout, "RETRY_DELAY_SECONDS", (0,))  # back at once, rather than in a second
    emitters.emit_system_alert("info", "x")
    real = fanout.deliver
    broken: list[list[str]] = []

    def deliver_or_die(shard: dict[str, Any]) -> None:
        if not broken:  # the first shard's invocation dies before posting anything
            broken.append(shard["connections"])
            raise TimeoutError("the management API hung")
        real(shard)

    monkeypatch.setattr(fanout, "deliver", deliver_or_die)
    first_batch = receive()
    assert invoke(first_batch) == {first_batch[0]["MessageId"]}  # reported failed, kept in the queue
    drain()
    assert management.calls == len(ids)  # the other shards were not posted again
    for cid in ids:
        assert seqs(management, cid) == [1], cid
    assert broken and set(broken[0]) <= set(ids) and dict(management.posts) == {}


def test_after_a_failure_the_rest_of_a_batch_is_reported_too(management, monkeypatch):
    """FIFO: a later shard of the batch must not pass the failed one (Lambda's rule for FIFO)."""
    calls: list[str] = []

    def deliver(shard: dict[str, Any]) -> None:
        calls.append(shard["n"])
        if shard["n"] == "2":
            raise RuntimeError("boom")

    monkeypatch.setattr(fanout, "deliver", deliver)
    monkeypatch.setattr(fanout, "_retry_soon", lambda record: None)
    records = [{"messageId": f"m{n}", "body": json.dumps({"n": str(n)})} for n in (1, 2, 3)]
    assert fanout.handle({"Records": records}) == {
        "batchItemFailures": [{"itemIdentifier": "m2"}, {"itemIdentifier": "m3"}]
    }
    assert calls == ["1", "2"]


def test_gone_connections_are_forgotten_by_the_shards(management, monkeypatch):
    ids = join_many(30)
    gone = set(ids[::7])
    management.gone.update(gone)
    later = time.time() + live.GONE_GRACE_SECONDS + 1
    monkeypatch.setattr(timeutil, "now", lambda: later)
    emitters.emit_system_alert("warning", "disk")
    drain()
    assert sorted(live.connections().members(ROOM)) == sorted(set(ids) - gone)
    assert all(live.connections().get(cid) is None for cid in gone)
    # the next event goes only to those left (below the threshold now: directly)
    management.posts.clear()
    emitters.emit_system_alert("info", "after")
    drain()
    assert sorted(management.posts) == sorted(set(ids) - gone)


def test_a_sharded_event_is_stored_once_for_resume_before_its_shards_are_sent(management):
    join_many(20)
    seq = emitters.emit_system_alert("info", "stored")[ROOM]
    replayed, more = live.event_log().replay(ROOM, 0, 10)
    assert not more and [s for s, _ in replayed] == [seq]
    [shard, *_] = [json.loads(m["Body"]) for m in receive()]
    assert shard["bodies"] == [replayed[0][1]]  # byte for byte what resume gives


# --- shards, pure -----------------------------------------------------------------------------------


def test_a_large_group_and_large_envelopes_make_several_shards_each_under_sqs_limit():
    ids = [f"connection-{i:05d}" for i in range(2500)]
    bodies = [json.dumps({"seq": n, "data": "x" * 100_000}) for n in range(4)]
    shards = fanout.shards(ROOM, {"https://gw/api": ids}, bodies, groups=1)
    assert all(len(json.dumps(s).encode()) <= 256 * 1024 for s in shards)
    assert all(len(s["connections"]) <= fanout.MAX_CONNECTIONS for s in shards)
    # every connection gets every body, in order, across the shards of its group
    heard: dict[str, list[str]] = {}
    for shard in shards:
        for cid in shard["connections"]:
            heard.setdefault(cid, []).extend(shard["bodies"])
    assert heard == {cid: bodies for cid in ids}


def test_shards_keep_each_endpoints_connections_apart():
    shards = fanout.shards(ROOM, {"https://a/api": ["a1", "a2"], None: ["n1"]}, ["{}"], groups=1)
    assert sorted((s["endpoint"] or "", tuple(s["connections"])) for s in shards) == [
        ("", ("n1",)),
        ("https://a/api", ("a1", "a2")),
    ]


def test_events_that_waited_for_the_end_of_an_invocation_go_through_the_shards_to_a_room_joined_meanwhile(
    management,
):
    # GIVEN the admin room and an author's room were joined once and left
    import app as app_module
    from chalicelib import runtime

    join_many(1, prefix="gone")
    join_many(1, room="user:author-1", prefix="gone-author")
    for cid in ("gone000", "gone-author000"):
        live.connections().close(cid)
    ids: list[str] = []

    def handler() -> None:  # events to two rooms nobody is in wait; 40 connections join meanwhile
        emitters.emit_job_finished("completed", "job-1", "articles", 1, "author-1")
        ids.extend(join_many(40))
        emitters.emit_job_finished("completed", "job-2", "articles", 1, "author-1")

    app_module.middleware.run(runtime.Invocation(kind="sqs", request_id="r"), handler)
    # THEN at its end the room, above the threshold now, got its events through the shards, in order
    assert management.calls == 0
    drain(parallel=4)
    for cid in ids:
        assert [(f["seq"], f["data"]["job_id"]) for f in management.take(cid)] == [(1, "job-1"), (2, "job-2")]


def test_an_envelope_too_large_to_ride_in_a_shard_is_read_from_the_log_by_the_shard(management):
    ids = join_many(400)
    message = '"' * 65_450  # 2 bytes each in the envelope (just under 128 KiB), 4 once the envelope is a JSON string
    # WHEN a small event, one that cannot fit in any SQS message as a string, then a small one go to the room
    first = emitters.emit_system_alert("info", "before")[ROOM]
    big = emitters.emit_system_alert("info", message)[ROOM]
    last = emitters.emit_system_alert("info", "after")[ROOM]
    # THEN every shard stayed under SQS's limit...
    sqs = aws.client("sqs")
    attributes = sqs.get_queue_attributes(QueueUrl=aws.queue_url(fanout.QUEUE), AttributeNames=["All"])
    assert int(attributes["Attributes"]["ApproximateNumberOfMessages"]) > 0
    drain(parallel=4)
    # ...and every connection heard all three, in order, the large one byte for byte as stored
    stored = dict(live.event_log().replay(ROOM, 0, 10)[0])
    for cid in ids:
        frames = management.take(cid)
        assert [f["seq"] for f in frames] == [first, big, last], cid
        assert frames[1]["data"]["message"] == message
    assert json.loads(stored[big])["data"]["message"] == message


def test_shards_carry_an_envelope_over_the_message_budget_as_its_seq():
    small, large = json.dumps({"seq": 5}), json.dumps({"seq": 6, "data": '"' * 130_000})
    shards = fanout.shards(ROOM, {"https://gw/api": ["c1", "c2"]}, [small, large, small], groups=1, first_seq=5)
    assert [b for s in shards for b in s["bodies"]] == [small, 6, small]
    assert all(len(json.dumps(s).encode()) <= fanout.MAX_MESSAGE_BYTES for s in shards)


def test_shard_messages_go_in_batches_of_at_most_10_and_the_message_limit_in_all():
    entries = [{"Id": str(n), "MessageBody": "x" * size} for n, size in enumerate([100_000] * 5 + [10] * 12)]
    found = fanout.batches(entries)
    assert [e for batch in found for e in batch] == entries  # all, in order
    assert all(len(b) <= 10 for b in found)
    assert all(sum(len(e["MessageBody"]) for e in b) <= fanout.MAX_MESSAGE_BYTES for b in found)
    assert [len(b) for b in found] == [2, 2, 10, 3]


def _redeliver(batch: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The batch's messages back in the queue as after a lost DeleteMessage (their visibility over)."""
    sqs = aws.client("sqs")
    for message in batch:
        sqs.change_message_visibility(
            QueueUrl=aws.queue_url(fanout.QUEUE), ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
        )
    again = receive()
    assert [m["MessageId"] for m in again] == [m["MessageId"] for m in batch]
    return again


def test_a_shard_redelivered_after_its_delete_was_lost_posts_nothing_again(management):
    import app as app_module

    ids = join_many(40)
    emitters.emit_system_alert("info", "x")
    batch = receive()
    event = lambda_event(batch, "arn:aws:sqs:us-east-1:123456789012:fanout", "us-east-1")
    assert app_module.realtime_fanout(event, Context())["batchItemFailures"] == []  # posted; delete lost
    posted = management.calls
    assert posted > 0
    assert invoke(_redeliver(batch)) == set()  # acknowledged, nothing posted
    assert management.calls == posted
    drain()
    for cid in ids:
        assert seqs(management, cid) == [1], cid


def test_a_shard_whose_handler_was_killed_is_delivered_when_its_lease_ends(management, monkeypatch):
    ids = join_many(40)
    emitters.emit_system_alert("info", "x")
    batch = receive()
    token = "killed-run"
    shard = json.loads(batch[0]["Body"])
    assert fanout._claim(shard["id"], token)  # claimed, then the invocation was killed before posting
    assert invoke(_redeliver(batch)) == {batch[0]["MessageId"]}  # its lease holds: back later
    assert management.calls == 0
    clock = time.time() + fanout.LEASE_GRACE_SECONDS + 61
    monkeypatch.setattr(timeutil, "now", lambda: clock)
    assert invoke(_redeliver(batch)) == set()  # the lease ended: taken over and posted
    drain()
    for cid in ids:
        assert seqs(management, cid) == [1], cid
