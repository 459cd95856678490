"""Races on moto, in threads as Lambda runs them: the same SQS record delivered to several worker
invocations at once runs its job once (one generator call, one publication), and a cancel racing
a claim has exactly one winner."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib import events
from chalicelib.jobs import enqueue, service
from chalicelib.jobs.errors import JobStateRefused
from tests.conftest import body
from tests.functional.jobs.conftest import LambdaContext

DUPLICATES = 4


def at_once(*calls: Callable[[], Any]) -> list[Any]:
    """Run each call in its own thread, released together; their results (or exceptions), in order."""
    start = threading.Barrier(len(calls))
    results: list[Any] = [None] * len(calls)

    def run(i: int) -> None:
        start.wait(5)
        try:
            results[i] = calls[i]()
        except Exception as exc:  # noqa: BLE001 - the caller looks at it
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert not any(thread.is_alive() for thread in threads)
    return results


def _deliver(poller: Any, queue: str, messages: list[dict[str, Any]]) -> Callable[[], dict[str, Any]]:
    # each invocation its own Worker (app.job_worker) and context, as two Lambdas would have
    return lambda: poller.deliver(queue, messages, LambdaContext(poller.clock, 60))


def test_one_record_delivered_to_several_invocations_at_once_runs_once(poller, register, clock):
    # GIVEN a job whose run holds its lease until every other delivery has answered
    ran: list[str] = []
    others_answered = threading.Event()

    def slow(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
        ran.append(job["id"])
        assert others_answered.wait(10)
        return {}

    register("emails", "send", slow)
    job = enqueue("emails", "send", {})
    messages = poller.receive("emails")
    answered: list[dict[str, Any]] = []

    def deliver() -> dict[str, Any]:
        response = poller.deliver("emails", messages, LambdaContext(clock, 60), delete=False)
        answered.append(response)
        if len(answered) == DUPLICATES - 1:
            others_answered.set()
        return response

    # WHEN the same record reaches four invocations at once
    responses = at_once(*[deliver] * DUPLICATES)
    # THEN it ran once; the others found it running and sent a copy for after its lease (not dropped)
    assert ran == [job["id"]]
    assert all(r == {"batchItemFailures": []} for r in responses)
    state = service.get(job["id"])
    assert (state["state"], state["attempts"]) == ("completed", 1)
    clock.advance(24 * 60)
    poller.drain("emails")  # the copies find it completed
    assert ran == [job["id"]]


def test_one_generation_delivered_to_several_invocations_at_once_is_generated_and_published_once(
    api, poller, generator, clock
):
    # GIVEN an article being generated, the generator taking a while
    generator.delay = 0.3
    published: list[events.ArticleStatusChanged] = []
    stop = events.subscribe(events.ArticleStatusChanged, published.append)
    api.token("admin")
    article = body(api.post("/api/articles", {"title": "Tides", "topic": "How tides work"}, as_="editor"))
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    messages = poller.receive("articles")
    # WHEN its record reaches four invocations at once (and again after every lease could end)
    at_once(*[_deliver(poller, "articles", messages)] * DUPLICATES)
    clock.advance(24 * 60)
    poller.drain("articles")
    stop()
    # THEN the generator was called once, the article published once, the job completed in one attempt
    assert len(generator.requests) == 1
    assert [e.status for e in published if e.article_id == article["id"]] == ["PROCESSING", "PUBLISHED"]
    job = service.get(job_id)
    assert (job["state"], job["attempts"]) == ("completed", 1)
    assert body(api.get(f"/api/articles/{article['id']}", as_="admin"))["status"] == "PUBLISHED"
    assert poller.visible_and_hidden("articles") == (0, 0)


@pytest.mark.parametrize("round_", range(6))
def test_a_cancel_racing_a_claim_has_exactly_one_winner(api, poller, generator, clock, round_):
    # GIVEN an article being generated
    api.token("admin")
    article = body(api.post("/api/articles", {"title": "Tides", "topic": "How tides work"}, as_="editor"))
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    messages = poller.receive("articles")
    # WHEN the editor cancels it while a worker claims it
    cancelled, _ = at_once(lambda: service.cancel(job_id), _deliver(poller, "articles", messages))
    clock.advance(24 * 60)
    poller.drain("articles")
    # THEN either the cancel won (never generated, a draft again) or the run did (409, published)
    job = service.get(job_id)
    status = body(api.get(f"/api/articles/{article['id']}", as_="admin"))["status"]
    if isinstance(cancelled, JobStateRefused):
        assert (job["state"], status, len(generator.requests)) == ("completed", "PUBLISHED", 1)
    else:
        assert not isinstance(cancelled, Exception), cancelled
        assert (job["state"], status, generator.requests) == ("cancelled", "DRAFT", [])
    assert poller.visible_and_hidden("articles") == (0, 0)


def test_a_claim_landing_between_cancel_s_read_and_its_write_wins(api, poller, generator, clock, monkeypatch):
    # GIVEN a cancel that has read the job waiting, and a worker claiming it just then
    from chalicelib.jobs.records import JobStore

    api.token("admin")
    article = body(api.post("/api/articles", {"title": "Tides", "topic": "How tides work"}, as_="editor"))
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    messages = poller.receive("articles")
    real_cancel = JobStore.cancel

    def cancel_after_the_claim(store: JobStore, record: dict[str, Any]) -> dict[str, Any] | None:
        assert record["state"] == "waiting"
        # the worker is another invocation (its own thread), not code of the REST function's
        [delivered] = at_once(lambda: poller.deliver("articles", messages, LambdaContext(clock, 60)))
        assert not isinstance(delivered, Exception), delivered
        return real_cancel(store, record)

    monkeypatch.setattr(JobStore, "cancel", cancel_after_the_claim)
    # WHEN the editor's cancel goes ahead
    response = api.post(f"/api/jobs/{job_id}/cancel", as_="editor")
    # THEN it is refused with the state it lost to, and the run's outcome stands
    assert response.status_code == 409
    assert "completed" in body(response)["Message"]
    assert (service.get(job_id)["state"], len(generator.requests)) == ("completed", 1)
    assert body(api.get(f"/api/articles/{article['id']}", as_="admin"))["status"] == "PUBLISHED"
