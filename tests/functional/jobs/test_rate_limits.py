"""Rate limits on moto: a queue's limit shared by concurrent Lambdas, jobs over it waiting
without using an attempt; and a generator's 429 with Retry-After."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest

from chalicelib.jobs import enqueue, ratelimit, service
from chalicelib.jobs.ratelimit import RateLimit
from chalicelib.observe import metrics
from tests.conftest import body
from tests.functional.jobs.conftest import LambdaContext

LAMBDAS = 4


@pytest.fixture
def limits(aws_mock: None) -> Iterator[ratelimit.LimitSettings]:
    ratelimit.forget()
    yield ratelimit.settings()
    ratelimit.forget()


def deliver_in_parallel(poller: Any, queue: str, lambdas: int = LAMBDAS) -> int:
    """Receive what is visible and hand it to `lambdas` concurrent invocations, each with its own
    Worker (app.job_worker), started together; returns the messages delivered."""
    messages: list[dict[str, Any]] = []
    while batch := poller.receive(queue):
        messages += batch
    if not messages:
        return 0
    shares = [messages[i::lambdas] for i in range(lambdas)]
    start = threading.Barrier(sum(1 for share in shares if share))
    errors: list[BaseException] = []

    def invocation(share: list[dict[str, Any]]) -> None:
        try:
            start.wait(5)
            poller.deliver(queue, share, LambdaContext(poller.clock, 60))
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=invocation, args=(share,)) for share in shares if share]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not errors, errors
    return len(messages)


def test_concurrent_lambdas_never_start_more_than_the_limit_per_window(poller, register, clock, limits):
    # GIVEN a limit of 2 starts per 10 s on a queue, and a fake generator that notes each start
    limits.set("emails", RateLimit(2, 10), None)
    starts: list[float] = []
    lock = threading.Lock()

    def generator(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
        with lock:
            starts.append(clock.t)
        return {"ok": True}

    register("emails", "send", generator)
    sent = [enqueue("emails", "send", {"n": n})["id"] for n in range(9)]
    # WHEN 4 Lambdas at a time take whatever is visible, round after round
    first = deliver_in_parallel(poller, "emails")
    assert first == 9 and len(starts) <= 2
    for _ in range(120):
        clock.advance(1)
        deliver_in_parallel(poller, "emails")
        if all(service.get(j)["state"] == "completed" for j in sent):
            break
    # THEN every job ran once, and no window of 10 s saw more than 2 starts
    assert len(starts) == 9
    per_window = Counter(int(t // 10) for t in starts)
    assert max(per_window.values()) == 2, per_window
    # AND the jobs over the limit waited without using an attempt
    assert {service.get(j)["attempts"] for j in sent} == {1}


def test_a_job_over_the_limit_is_put_back_without_using_an_attempt(poller, register, clock, limits, sqs_calls):
    limits.set("emails", RateLimit(1, 60), None)
    register("emails", "send", lambda job, ctx: {"ok": True})
    first, second = (enqueue("emails", "send", {"n": n})["id"] for n in range(2))
    response = poller.run_once("emails")
    # THEN the first started, the second was acknowledged and sent again, delayed, untouched
    assert response == {"batchItemFailures": []}
    assert service.get(first)["state"] == "completed"
    job = service.get(second)
    assert (job["state"], job["attempts"]) == ("waiting", 0)
    resent = [p for op, p in sqs_calls if op == "SendMessage" and '"' + second + '"' in p["MessageBody"]]
    assert len(resent) == 2  # the enqueue, then the put-back
    assert 1 <= resent[1]["DelaySeconds"] <= 900
    [counted] = [d for d in metrics.flush() if "JobRateLimited" in d]  # and it is counted, per queue
    assert (counted["Queue"], counted["JobRateLimited"]) == ("emails", 1)
    # WHEN the window has passed, it runs with its first attempt
    clock.advance(121)
    poller.drain("emails")
    job = service.get(second)
    assert (job["state"], job["attempts"]) == ("completed", 1)


def test_without_a_limit_nothing_waits(poller, register, clock, limits):
    register("emails", "send", lambda job, ctx: {"ok": True})
    sent = [enqueue("emails", "send", {"n": n})["id"] for n in range(5)]
    poller.run_once("emails")
    assert {service.get(j)["state"] for j in sent} == {"completed"}


def test_a_changed_limit_is_read_again_after_the_cache_expires(limits, monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(ratelimit.time, "monotonic", lambda: now[0])
    assert ratelimit.limit_of("emails") is None
    ratelimit.settings().set("emails", RateLimit(3, 1.5), None)  # this container forgets at once
    assert ratelimit.limit_of("emails") == RateLimit(3, 1.5)
    ratelimit.LimitSettings(ratelimit.aws.table("settings"))._table.delete_item(
        Key={"scope": "dashboard", "key": "limits#emails"}
    )  # another container's change: seen here within CACHE_SECONDS
    assert ratelimit.limit_of("emails") == RateLimit(3, 1.5)
    now[0] += ratelimit.CACHE_SECONDS
    assert ratelimit.limit_of("emails") is None


# --- a generator's 429 with Retry-After ------------------------------------------------------------


def _generate(api: Any) -> tuple[str, str]:
    api.token("admin")
    article = body(api.post("/api/articles", {"title": "Tides", "topic": "How tides work"}, as_="editor"))
    accepted = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))
    return article["id"], accepted["job_id"]


def _delays(sqs_calls: list[tuple[str, dict[str, Any]]], job_id: str) -> list[int]:
    return [p.get("DelaySeconds", 0) for op, p in sqs_calls if op == "SendMessage" and job_id in p["MessageBody"]]


def test_a_429_with_retry_after_waits_that_long_without_using_an_attempt(api, poller, generator, clock, sqs_calls):
    generator.answers = [(429, {"error": "slow down"}, {"Retry-After": "30"}), (200, None)]
    article_id, job_id = _generate(api)
    poller.run_once("articles")
    # THEN the job waits, delayed, its attempt given back, its message put back for 30 s
    job = service.get(job_id)
    assert (job["state"], job["attempts"], job["error"]["kind"]) == ("delayed", 0, "webhook_throttled")
    assert _delays(sqs_calls, job_id) == [0, 30]
    clock.advance(29)
    assert poller.run_once("articles") is None  # not before
    clock.advance(2)
    poller.drain("articles")
    job = service.get(job_id)
    assert (job["state"], job["attempts"]) == ("completed", 1)
    assert len(generator.requests) == 2
    assert body(api.get(f"/api/articles/{article_id}", as_="admin"))["status"] == "PUBLISHED"


def test_a_generator_that_only_answers_429_fails_the_job_after_a_bounded_number_of_waits(
    api, poller, generator, clock, sqs_calls
):
    from chalicelib.jobs.worker import MAX_THROTTLED_WAITS

    generator.answers = [(429, {}, {"Retry-After": "3600"})]  # an hour: capped at SQS's 900 s
    article_id, job_id = _generate(api)
    for _ in range(60):
        if service.get(job_id)["state"] == "failed":
            break
        poller.run_once("articles")
        clock.advance(901)
    job = service.get(job_id)
    assert (job["state"], job["attempts"]) == ("failed", 3)
    assert len(generator.requests) == MAX_THROTTLED_WAITS + 3
    assert _delays(sqs_calls, job_id)[1 : MAX_THROTTLED_WAITS + 1] == [900] * MAX_THROTTLED_WAITS
    from chalicelib.content import articles

    assert articles.articles().get(article_id)["status"] == "DRAFT"  # rolled back (the token expired meanwhile)


def test_a_429_without_retry_after_is_an_ordinary_failed_attempt(api, poller, generator, clock):
    generator.answers = [(429, {}), (200, None)]
    _, job_id = _generate(api)
    poller.run_once("articles")
    assert service.get(job_id)["attempts"] == 1 and service.get(job_id)["state"] == "delayed"
