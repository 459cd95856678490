"""The dashboard API on moto: stats, pause/resume through the event source mapping, retry-all,
remove, clean and health, each refused to non-admins."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import aws, catalog, events, jobs
from chalicelib.jobs.errors import PermanentError
from tests.conftest import body

QUEUES = ("articles", "analytics", "emails", "cleanup")  # the contract's job queues; not `audit`


def ok(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"done": True}


def boom(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
    if job["payload"].get("fail"):
        raise PermanentError("asked to fail")
    return {"done": True}


def send(n: int = 1, fail: bool = False) -> list[dict[str, Any]]:
    return [jobs.enqueue("emails", "send", {"i": i, "fail": fail}) for i in range(n)]


def stats_of(api: Any, queue: str = "emails") -> dict[str, Any]:
    response = api.get("/api/queues/stats", as_="admin")
    assert response.status_code == 200, response.body
    return body(response)["queues"][queue]


def dlq_depth(queue: str = "emails") -> int:
    """Messages in the dead-letter queue, visible or not (moto's frozen clock keeps a released
    message hidden until time moves)."""
    attrs = aws.client("sqs").get_queue_attributes(
        QueueUrl=aws.queue_url(f"{queue}-dlq"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return sum(int(v) for v in attrs.values())


# --- stats ---------------------------------------------------------------------------------------


def test_stats_start_at_zero_for_every_queue(api, clock):
    answer = body(api.get("/api/queues/stats", as_="admin"))
    assert set(answer["queues"]) == set(QUEUES)
    for name, numbers in answer["queues"].items():
        assert numbers == {
            "waiting": 0,
            "active": 0,
            "delayed": 0,
            "completed": 0,
            "failed": 0,
            "cancelled": 0,
            "dead_letter": 0,
            "paused": False,
            "concurrency": catalog.queue(name).concurrency,
            "rate_limit": None,
            "priorities": {
                p: {
                    "waiting": 0,
                    "active": 0,
                    "delayed": 0,
                    "concurrency": catalog.queue(q).concurrency,
                    "dead_letter": 0,
                }
                for p, q in (("high", f"{name}-high"), ("normal", name))
            },
        }
    assert answer["generated_at"].endswith("Z")


def test_stats_follow_jobs_from_waiting_to_completed_and_failed(api, clock, poller, register):
    # GIVEN three jobs, one of which fails at once, and one delayed job
    register("emails", "send", boom)
    send(2)
    send(1, fail=True)
    jobs.enqueue("emails", "send", {"later": True}, delay_seconds=60)
    # THEN they wait
    before = stats_of(api)
    assert (before["waiting"], before["delayed"], before["completed"], before["failed"]) == (3, 1, 0, 0)
    # WHEN the worker runs them
    poller.run_once("emails")
    after = stats_of(api)
    # THEN two completed, one failed into the dead-letter queue, the delayed one still delayed
    assert after == {**after, "waiting": 0, "active": 0, "completed": 2, "failed": 1, "dead_letter": 1, "delayed": 1}
    assert stats_of(api, "articles")["waiting"] == 0


def test_stats_run_the_queues_calls_concurrently(api, clock, monkeypatch):
    import threading

    from chalicelib.dashboard import gateway

    threads: set[str] = set()
    lock = threading.Lock()
    in_flight = [0, 0]  # now, most at once
    overlapped = threading.Event()
    real = gateway.QueueControl.depth

    def depth(self: Any, queue: str) -> Any:
        with lock:
            threads.add(threading.current_thread().name)
            in_flight[0] += 1
            in_flight[1] = max(in_flight[1], in_flight[0])
            if in_flight[0] >= 2:
                overlapped.set()
        try:
            overlapped.wait(2)  # run one after another, every call would wait here in vain
            return real(self, queue)
        finally:
            with lock:
                in_flight[0] -= 1

    monkeypatch.setattr(gateway.QueueControl, "depth", depth)
    assert api.get("/api/queues/stats", as_="admin").status_code == 200
    assert threading.current_thread().name not in threads
    assert in_flight[1] >= 2


# --- pause / resume ------------------------------------------------------------------------------


def mapping_state(queue: str) -> str:
    from chalicelib import config

    found = aws.client("lambda").list_event_source_mappings(
        FunctionName=config.function_name(f"jobs_{queue.replace('-', '_')}")
    )
    return found["EventSourceMappings"][0]["State"]


def test_pause_disables_the_mapping_and_resume_enables_it(api, consumers):
    response = api.post("/api/queues/emails/pause", as_="admin")
    assert (response.status_code, body(response)) == (200, {"queue": "emails", "paused": True})
    assert mapping_state("emails") == mapping_state("emails-high") == "Disabled"
    assert mapping_state("articles-high") == "Enabled"
    assert stats_of(api)["paused"] is True
    assert stats_of(api, "articles")["paused"] is False
    response = api.post("/api/queues/emails/resume", as_="admin")
    assert (response.status_code, body(response)) == (200, {"queue": "emails", "paused": False})
    assert mapping_state("emails") == mapping_state("emails-high") == "Enabled"
    assert stats_of(api)["paused"] is False


def test_a_paused_queue_holds_its_jobs_and_resuming_runs_them(api, consumers, register):
    register("emails", "send", ok)
    api.post("/api/queues/emails/pause", as_="admin")
    sent = send(3)
    # WHEN Lambda's poller comes round while paused
    assert consumers.step("emails") == 0
    # THEN nothing started
    assert {jobs.get(j["id"])["state"] for j in sent} == {"waiting"}
    assert stats_of(api)["waiting"] == 3
    # WHEN resumed
    api.post("/api/queues/emails/resume", as_="admin")
    assert consumers.step("emails") >= 1
    assert {jobs.get(j["id"])["state"] for j in sent} == {"completed"}
    assert stats_of(api)["completed"] == 3


def test_a_batch_already_received_when_paused_is_held_by_the_worker(api, clock, poller, register):
    # GIVEN messages received before the pause took effect (no mapping here: the hold alone acts)
    ran: list[str] = []
    register("emails", "send", lambda job, ctx: ran.append(job["id"]) or {})
    sent = send(2)
    in_flight = poller.receive("emails")
    assert api.post("/api/queues/emails/pause", as_="admin").status_code == 200
    # WHEN the worker gets them
    poller.deliver("emails", in_flight)
    # THEN none starts or spends an attempt; they come back later
    assert ran == []
    assert {(jobs.get(j["id"])["state"], jobs.get(j["id"])["attempts"]) for j in sent} == {("waiting", 0)}
    assert stats_of(api)["paused"] is True
    api.post("/api/queues/emails/resume", as_="admin")
    poller.drain("emails", step=31)
    assert sorted(ran) == sorted(j["id"] for j in sent)


# --- retry-all -----------------------------------------------------------------------------------


def test_retry_all_empties_the_dead_letter_queue_and_reruns_the_failed_jobs(api, clock, poller, register):
    # GIVEN three failed jobs in the dead-letter queue
    register("emails", "send", boom)
    failed = send(3, fail=True)
    poller.run_once("emails")
    assert dlq_depth() == 3
    assert stats_of(api)["failed"] == 3
    register("emails", "send", ok)
    # WHEN an admin retries them all
    response = api.post("/api/queues/emails/retry-failed", as_="admin")
    # THEN all three are requeued with fresh attempts and the dead-letter queue is empty
    assert (response.status_code, body(response)) == (202, {"requeued": 3})
    assert dlq_depth() == 0
    assert {jobs.get(j["id"])["state"] for j in failed} == {"waiting"}
    assert {jobs.get(j["id"])["attempts"] for j in failed} == {0}
    poller.drain("emails")
    assert {jobs.get(j["id"])["state"] for j in failed} == {"completed"}
    assert stats_of(api)["failed"] == 0


def test_retry_all_also_empties_the_high_priority_dead_letter_queue(api, clock, poller, register):
    # GIVEN what SQS itself moved into the high queue's dead-letter queue (after maxReceiveCount:
    # a handler that kept dying): a message of a job since removed, and one that is not a job
    register("emails", "send", ok)
    [gone] = [jobs.enqueue("emails", "send", {}, priority="high")]
    [message] = poller.receive("emails-high")
    sqs = aws.client("sqs")
    sqs.send_message(QueueUrl=aws.queue_url("emails-high-dlq"), MessageBody=message["Body"])
    sqs.delete_message(QueueUrl=aws.queue_url("emails-high"), ReceiptHandle=message["ReceiptHandle"])
    jobs.remove(gone["id"])
    sqs.send_message(QueueUrl=aws.queue_url("emails-high-dlq"), MessageBody="not a job")
    assert stats_of(api)["priorities"]["high"]["dead_letter"] == 2
    # WHEN an admin retries the queue's failed jobs
    response = api.post("/api/queues/emails/retry-failed", as_="admin")
    # THEN the high dead-letter queue is emptied too: the unreadable message goes back to its
    # own queue, the stale one is dropped
    assert body(response) == {"requeued": 1}
    assert dlq_depth("emails-high") == 0
    assert [m["Body"] for m in poller.receive("emails-high")] == ["not a job"]
    assert stats_of(api)["priorities"]["high"]["dead_letter"] == 0


def test_retry_all_sends_back_dead_letters_it_cannot_read_and_drops_stale_ones(api, clock, poller, register):
    register("emails", "send", boom)
    [gone] = send(1, fail=True)
    poller.run_once("emails")
    jobs.remove(gone["id"])  # its record is gone: its dead letter is dropped
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("emails-dlq"), MessageBody="not a job")
    response = api.post("/api/queues/emails/retry-failed", as_="admin")
    assert body(response) == {"requeued": 1}
    assert dlq_depth() == 0
    bodies = [m["Body"] for m in poller.receive("emails")]
    assert bodies == ["not a job"]


def test_retry_all_uses_a_message_move_task_where_sqs_offers_one(api, clock, poller, register, monkeypatch):
    from chalicelib.dashboard import gateway

    register("emails", "send", boom)
    failed = send(2, fail=True)
    poller.run_once("emails")
    moves: list[dict[str, Any]] = []

    def start(self: Any, queue: str) -> bool:
        moves.append({"SourceArn": self.arn(f"{queue}-dlq"), "DestinationArn": self.arn(queue)})
        return True

    monkeypatch.setattr(gateway.QueueControl, "start_move", start)
    response = api.post("/api/queues/emails/retry-failed", as_="admin")
    assert body(response) == {"requeued": 2}
    assert moves and moves[0]["SourceArn"].endswith("-emails-dlq") and moves[0]["DestinationArn"].endswith("-emails")
    assert dlq_depth() == 2  # SQS moves them; nothing was received by hand
    assert {jobs.get(j["id"])["state"] for j in failed} == {"waiting"}


def test_start_move_falls_back_when_the_endpoint_lacks_it(aws_mock):
    from chalicelib.dashboard import service

    assert service.control().start_move("emails") is False  # moto: not implemented


class MoveStub:
    """SQS answering StartMessageMoveTask with `failures` in turn, then accepting it."""

    def __init__(self, failures: list[BaseException]) -> None:
        from types import SimpleNamespace

        self.failures = failures
        self.moves = 0
        self.meta = SimpleNamespace(endpoint_url="https://sqs.us-east-1.amazonaws.com")

    def get_queue_attributes(self, QueueUrl: str, AttributeNames: list[str]) -> dict[str, Any]:  # noqa: N803
        return {"Attributes": {"QueueArn": f"arn:aws:sqs:us-east-1:123456789012:{QueueUrl}"}}

    def start_message_move_task(self, **kwargs: Any) -> dict[str, Any]:
        self.moves += 1
        if self.failures:
            raise self.failures.pop(0)
        return {"TaskHandle": "handle"}


def _client_error(status: int, code: str) -> Exception:
    from botocore.exceptions import ClientError

    error = {"Error": {"Code": code, "Message": code}, "ResponseMetadata": {"HTTPStatusCode": status}}
    return ClientError(error, "StartMessageMoveTask")


@pytest.mark.parametrize(
    "error",
    [
        _client_error(500, "InternalError"),
        _client_error(400, "AWS.SimpleQueueService.UnsupportedOperation"),  # e.g. a move task already running
        _client_error(400, "InvalidParameterValue"),
        NotImplementedError("StartMessageMoveTask"),
    ],
)
def test_a_refused_message_move_falls_back_for_that_call_only(error):
    from chalicelib.dashboard.gateway import QueueControl

    sqs = MoveStub([error])
    first = QueueControl(sqs, None, lambda name: name, lambda queue: queue)
    assert first.start_move("emails") is False  # this call redrives by hand
    assert first.start_move("emails") is True  # the next call asks SQS again
    assert QueueControl(sqs, None, lambda name: name, lambda queue: queue).start_move("cleanup") is True
    assert sqs.moves == 3


def test_against_the_local_emulator_retry_all_moves_by_hand_without_asking(aws_mock, monkeypatch):
    # the local stack's moto server lacks StartMessageMoveTask and answers 500 only after
    # botocore's retries (seconds): with INKWELL_AWS_ENDPOINT set, the move is not asked for
    from chalicelib import config
    from chalicelib.dashboard import service

    moves: list[dict[str, Any]] = []
    monkeypatch.setattr(aws.client("sqs"), "start_message_move_task", lambda **kw: moves.append(kw) or {})
    assert service.control().start_move("emails") is True
    monkeypatch.setenv(config.AWS_ENDPOINT, "http://127.0.0.1:5000")
    config.reset()
    assert service.control().start_move("emails") is False
    assert len(moves) == 1


def test_retry_all_with_nothing_failed_requeues_nothing(api, clock):
    assert body(api.post("/api/queues/emails/retry-failed", as_="admin")) == {"requeued": 0}


# --- remove and clean ----------------------------------------------------------------------------


def test_remove_deletes_the_record_and_its_dead_letter(api, clock, poller, register):
    register("emails", "send", boom)
    [dead, other] = send(1, fail=True) + send(1, fail=True)
    poller.run_once("emails")
    response = api.delete(f"/api/jobs/{dead['id']}", as_="admin")
    assert response.status_code == 204
    assert jobs.get(dead["id"]) is None
    assert dlq_depth() == 1
    assert jobs.get(other["id"])["state"] == "failed"
    assert api.delete(f"/api/jobs/{dead['id']}", as_="admin").status_code == 404


def test_a_removed_waiting_job_never_runs(api, clock, poller, register):
    ran: list[str] = []
    register("emails", "send", lambda job, ctx: ran.append(job["id"]) or {})
    [job] = send(1)
    assert api.delete(f"/api/jobs/{job['id']}", as_="admin").status_code == 204
    poller.drain("emails")
    assert ran == []


@pytest.mark.parametrize("job_id", ["nope", "0" * 31, "idem#emails#x", "A" * 32])
def test_remove_of_an_unknown_id_is_a_404(api, clock, job_id):
    assert api.delete(f"/api/jobs/{job_id}", as_="admin").status_code == 404


@pytest.fixture
def long_tokens(monkeypatch):
    """Tokens that outlive the tests' jumps in time (taken before the clock moves)."""
    from chalicelib import config

    monkeypatch.setenv(config.JWT_TTL_SECONDS, str(7 * 86400))
    config.reset()


def test_clean_removes_only_old_jobs_of_the_state(api, clock, poller, register, long_tokens):
    api.token("admin")
    register("emails", "send", boom)
    old_done, old_failed = send(2), send(1, fail=True)
    poller.run_once("emails")
    clock.advance(3600)
    new_done = send(1)
    poller.run_once("emails")
    response = api.post("/api/queues/emails/clean", {"state": "completed", "older_than_seconds": 1800}, as_="admin")
    assert (response.status_code, body(response)) == (200, {"removed": 2})
    assert all(jobs.get(j["id"]) is None for j in old_done)
    assert jobs.get(new_done[0]["id"])["state"] == "completed"
    assert jobs.get(old_failed[0]["id"])["state"] == "failed"
    response = api.post("/api/queues/emails/clean", {"state": "failed", "older_than_seconds": 0}, as_="admin")
    assert body(response) == {"removed": 1}
    assert dlq_depth() == 0  # the failed job's dead letter went with it


@pytest.mark.parametrize(
    "payload",
    [
        {"state": "waiting", "older_than_seconds": 0},
        {"state": "nope", "older_than_seconds": 0},
        {"state": "failed", "older_than_seconds": -1},
        {"state": "failed", "older_than_seconds": "60"},
        {"state": "failed", "older_than_seconds": 1.5},
        {"state": "failed", "older_than_seconds": True},
        {"state": "failed"},
        {"older_than_seconds": 5},
        {"state": "failed", "older_than_seconds": 5, "extra": 1},
        [],
    ],
)
def test_clean_rejects_bad_input_with_a_400(api, clock, payload):
    response = api.post("/api/queues/emails/clean", payload, as_="admin")
    assert response.status_code == 400, response.body


# --- health --------------------------------------------------------------------------------------


@pytest.fixture
def alerts():
    """The health alerts raised (job-failure alerts from the audit trail are not the subject here)."""
    seen: list[events.Alert] = []

    def listen(alert: events.Alert) -> None:
        if "failing" in alert.details or "health" in alert.message:
            seen.append(alert)

    unsubscribe = events.subscribe(events.Alert, listen)
    yield seen
    unsubscribe()


def failing_checks(response: Any) -> list[str]:
    return sorted(f"{c['queue']}.{c['check']}" for c in body(response)["checks"] if not c["ok"])


def test_health_is_200_when_every_check_passes(api, clock, alerts):
    response = api.get("/api/queues/health", as_="admin")
    assert response.status_code == 200
    answer = body(response)
    assert answer["status"] == "healthy"
    per_queue = [c for c in answer["checks"] if c["queue"] is not None]
    assert sorted({c["queue"] for c in per_queue}) == sorted(QUEUES)
    assert len(per_queue) == 4 * len(QUEUES)
    assert {c["check"] for c in per_queue} == {"dead_letters", "oldest_waiting", "failure_rate", "paused"}
    # the audit trail's fallback queue is no job queue: only its dead letters (lost audit events) count
    [fallback] = [c for c in answer["checks"] if c["queue"] is None]
    assert (fallback["check"], fallback["ok"], fallback["value"]) == ("audit_dead_letters", True, 0)
    assert alerts == []


def test_health_fails_when_audit_events_reach_the_fallback_s_dead_letter_queue(api, clock, alerts):
    api.put("/api/settings/queues.health", {"value": {"max_dead_letters": 0}}, as_="admin")
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("audit-dlq"), MessageBody="[]")
    response = api.get("/api/queues/health", as_="admin")
    assert response.status_code == 503
    assert [(c["queue"], c["check"]) for c in body(response)["checks"] if not c["ok"]] == [(None, "audit_dead_letters")]
    [alert] = alerts
    assert alert.details["failing"] == ["audit_dead_letters"]
    assert "audit_dead_letters: 1 message(s)" in alert.message and "None" not in alert.message


def test_the_high_priority_queue_s_dead_letters_show_in_stats_and_health(api, clock, alerts):
    # GIVEN a message SQS's own redrive moved to the dead-letter queue of emails' high-priority queue
    api.put("/api/settings/queues.health", {"value": {"queues": {"emails": {"max_dead_letters": 0}}}}, as_="admin")
    aws.client("sqs").send_message(QueueUrl=aws.queue_url("emails-high-dlq"), MessageBody="{}")
    # THEN stats show it under the high priority (the job queue's own dead letters unchanged)
    emails = stats_of(api)
    assert (emails["dead_letter"], emails["priorities"]["high"]["dead_letter"]) == (0, 1)
    assert emails["priorities"]["normal"]["dead_letter"] == 0
    # AND health counts it against the queue's dead-letter threshold, naming the priority
    response = api.get("/api/queues/health", as_="admin")
    assert response.status_code == 503
    [check] = [c for c in body(response)["checks"] if not c["ok"]]
    assert (check["queue"], check["check"], check["value"]) == ("emails", "dead_letters", 1)
    assert "1 of the high-priority queue's" in check["message"]


def test_health_turns_503_when_the_dead_letters_cross_the_setting_and_alerts_once(api, clock, poller, register, alerts):
    # GIVEN a threshold of one dead letter for emails
    api.put("/api/settings/queues.health", {"value": {"queues": {"emails": {"max_dead_letters": 1}}}}, as_="admin")
    register("emails", "send", boom)
    send(1, fail=True)
    poller.run_once("emails")
    assert api.get("/api/queues/health", as_="admin").status_code == 200
    # WHEN a second job fails
    send(1, fail=True)
    poller.run_once("emails")
    response = api.get("/api/queues/health", as_="admin")
    # THEN the health is 503 naming the check, and one critical alert is raised
    assert response.status_code == 503
    assert body(response)["status"] == "unhealthy"
    assert "emails.dead_letters" in failing_checks(response)
    assert [a.level for a in alerts] == ["critical"]
    assert "emails dead_letters" in alerts[0].message
    # AND looking again raises no second alert; recovering raises an info alert
    assert api.get("/api/queues/health", as_="admin").status_code == 503
    assert len(alerts) == 1
    api.post("/api/queues/emails/clean", {"state": "failed", "older_than_seconds": 0}, as_="admin")
    assert api.get("/api/queues/health", as_="admin").status_code == 200
    assert [a.level for a in alerts] == ["critical", "info"]


def test_health_fails_on_the_failure_rate_of_the_last_hour(api, clock, poller, register, long_tokens):
    api.token("admin")
    register("emails", "send", boom)
    send(2)
    send(2, fail=True)
    poller.run_once("emails")
    response = api.get("/api/queues/health", as_="admin")
    assert failing_checks(response) == ["emails.failure_rate"]  # 2 of 4 failed > 25 %
    clock.advance(3601)  # an hour later those failures no longer count
    api.put("/api/settings/queues.health", {"value": {"max_dead_letters": 5}}, as_="admin")
    assert api.get("/api/queues/health", as_="admin").status_code == 200


def test_health_fails_when_a_job_waits_too_long_and_when_paused_too_long(api, consumers, long_tokens):
    api.token("admin")
    send(1)
    assert api.get("/api/queues/health", as_="admin").status_code == 200
    api.post("/api/queues/articles/pause", as_="admin")
    consumers.clock.advance(301)
    assert failing_checks(api.get("/api/queues/health", as_="admin")) == ["emails.oldest_waiting"]
    api.put("/api/settings/queues.health", {"value": {"max_paused_seconds": 0}}, as_="admin")
    # moto stamps the mapping's change with the real clock: any pause is "too long" at 0 s
    consumers.clock.advance(1)
    assert "articles.paused" in failing_checks(api.get("/api/queues/health", as_="admin"))


def test_a_malformed_health_setting_falls_back_to_the_defaults(api, clock):
    for value in ("nope", {"max_dead_letters": "ten"}, {"queues": []}, {"max_failure_rate": -1}):
        api.put("/api/settings/queues.health", {"value": value}, as_="admin")
        assert api.get("/api/queues/health", as_="admin").status_code == 200


# --- access --------------------------------------------------------------------------------------

ROUTES = [
    ("GET", "/api/queues/stats", None),
    ("GET", "/api/queues/health", None),
    ("POST", "/api/queues/emails/retry-failed", None),
    ("POST", "/api/queues/emails/pause", None),
    ("POST", "/api/queues/emails/resume", None),
    ("POST", "/api/queues/emails/clean", {"state": "failed", "older_than_seconds": 0}),
    ("DELETE", "/api/jobs/" + "0" * 32, None),
]


@pytest.mark.parametrize(("method", "path", "payload"), ROUTES)
def test_only_admins_may_use_the_dashboard_api(api, clock, method, path, payload):
    assert api.request(method, path, payload).status_code == 401
    assert api.request(method, path, payload, token="not-a-token").status_code == 401
    for role in ("editor", "viewer"):
        assert api.request(method, path, payload, as_=role).status_code == 403


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [(m, p.replace("/emails/", "/nope/"), b) for m, p, b in ROUTES if "/emails/" in p],
)
def test_an_unknown_queue_is_a_404(api, clock, method, path, payload):
    assert api.request(method, path, payload, as_="admin").status_code == 404


@pytest.mark.parametrize(
    ("method", "path", "payload"),
    [(m, p.replace("/emails/", "/audit/"), b) for m, p, b in ROUTES if "/emails/" in p]
    + [("GET", "/api/queues/audit/jobs", None), ("GET", "/api/queues/audit/jobs?state=failed", None)],
)
def test_the_audit_fallback_queue_is_not_a_dashboard_queue(api, clock, method, path, payload):
    response = api.request(method, path, payload, as_="admin")
    assert response.status_code == 404, response.body
    assert "queue audit" in body(response)["Message"]
    assert "audit" not in body(api.get("/api/queues/stats", as_="admin"))["queues"]


# --- audit ---------------------------------------------------------------------------------------


def test_every_control_action_is_audited_with_its_actor_and_resource(api, consumers, register):
    api.token("admin")  # before the pollers move the clock
    register("emails", "send", boom)
    [dead] = send(1, fail=True)
    consumers.step("emails")
    admin = api.user("admin")["id"]
    api.post("/api/queues/emails/pause", as_="admin")
    api.post("/api/queues/emails/resume", as_="admin")
    api.post("/api/queues/emails/retry-failed", as_="admin")
    api.delete(f"/api/jobs/{dead['id']}", as_="admin")
    api.post("/api/queues/emails/clean", {"state": "completed", "older_than_seconds": 0}, as_="admin")
    expected = {
        "queue.pause": ("queue", "emails"),
        "queue.resume": ("queue", "emails"),
        "job.retry": ("queue", "emails"),
        "job.remove": ("job", dead["id"]),
        "queue.clean": ("queue", "emails"),
    }
    for action, (kind, ident) in expected.items():
        items = body(api.get(f"/api/audit?action={action}", as_="admin"))["items"]
        assert len(items) == 1, (action, items)
        assert items[0]["actor"]["user_id"] == admin
        assert (items[0]["resource"]["type"], items[0]["resource"]["id"]) == (kind, ident)
