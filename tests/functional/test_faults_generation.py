"""A generation whose invocation was killed part-way (tests/faults.py's kind of fault, on the
emulator's side: the work abandoned, the message back after its visibility timeout): the
redelivered run does not call the generator again, and announces and audits the publication
exactly once, whether the killed run got to announce it or not. The webhook call carries the job
id as its `Idempotency-Key`, and the local generator answers a repeated key with its first result."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import audit, timeutil
from chalicelib.content import articles as content
from chalicelib.content import generation_job
from chalicelib.content.actions import status_changed
from chalicelib.content.generator import ArticleGenerator
from chalicelib.jobs.processor import JobContext
from chalicelib.realtime import live, rooms
from chalicelib.realtime.delivery import emit_many
from local.generator import FakeGenerator
from tests.faults import OUTLAST
from tests.functional.audit_helpers import all_events

JOB = "c" * 32


class Generator:
    """The webhook client's stand-in: counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def generate(self, request: dict[str, Any], **_: Any) -> str:
        self.calls += 1
        return "the article's text"


def _ctx() -> JobContext:
    return JobContext(
        job={"progress": 0}, attempt=1, final_attempt=False, report_progress=lambda p: None, remaining=lambda: 60.0
    )


@pytest.fixture
def processing(api: Any, faults: Any) -> dict[str, Any]:
    """An article PROCESSING under JOB, its author's room open (someone joined it), and the job."""
    author = api.user("editor")
    articles = content.articles()
    item = articles.create(content.NewArticle(title="T", topic="t"), author["id"])
    articles.transition(item["id"], "generate", extra={"job_id": JOB})
    live.event_log().open_room(rooms.user_room(author["id"]), 1)
    payload = {"article_id": item["id"], "title": "T", "topic": "t", "keywords": []}
    return {"id": JOB, "attempts": 1, "payload": payload, "progress": 0, "author": author["id"]}


def _heard(job: dict[str, Any]) -> list[int]:
    """The seqs of the PUBLISHED announcements of the job's article in its author's room."""
    log = live.event_log()
    stored, _ = log.replay(rooms.user_room(job["author"]), 0, 1000)
    frames = [json.loads(body) for _, body in stored]
    return [
        f["seq"]
        for f in frames
        if f["type"] == "article.status" and f["data"]["status"] == "PUBLISHED" and f["data"]["job_id"] == JOB
    ]


def _audited(api: Any, job: dict[str, Any]) -> int:
    events = all_events(api, resource_type="article", resource_id=job["payload"]["article_id"])
    return sum(
        1 for e in events if e["action"] == "article.status_changed" and e["details"].get("status") == "PUBLISHED"
    )


def _redeliver(job: dict[str, Any], hook: Generator) -> dict[str, Any]:
    result = generation_job.run_generate(job, _ctx(), content.articles(), hook)  # type: ignore[arg-type]
    audit.flush()
    return result


def test_a_run_killed_after_publishing_is_finished_once_without_generating_again(api, processing):
    # GIVEN a run killed right after it published (nothing announced, nothing audited)
    content.articles().complete_generation(processing["payload"]["article_id"], JOB, "the article's text")
    hook = Generator()
    # WHEN the job is delivered again, twice (a duplicate delivery after the redelivery)
    assert _redeliver(processing, hook)["status"] == "PUBLISHED"
    _redeliver(processing, hook)
    # THEN no second generation; announced once, audited once
    assert hook.calls == 0
    assert len(_heard(processing)) == 1
    assert _audited(api, processing) == 1


def test_a_run_killed_after_announcing_is_not_announced_again(api, processing, monkeypatch):
    # GIVEN a run killed after it published, announced and audited (before its job was completed)
    item = content.articles().complete_generation(processing["payload"]["article_id"], JOB, "the article's text")
    status_changed(item, JOB)
    audit.flush()
    # and its author's room busy since: a slow emitter's event stamped before the change (its ts
    # taken before a wait), then more events than a fixed look back would read
    stamped = timeutil.iso_ms(timeutil.parse_iso(item["updated_at"]) - 5)
    with monkeypatch.context() as patched:
        patched.setattr(timeutil, "iso_ms", lambda ts=None: stamped)
        emit_many("job.progress", rooms.user_room(processing["author"]), [{"job_id": "slow"}])
    emit_many("job.completed", rooms.user_room(processing["author"]), [{"job_id": "x", "n": n} for n in range(250)])
    hook = Generator()
    # WHEN the job is delivered again
    _redeliver(processing, hook)
    # THEN nothing is generated, announced or audited a second time
    assert (hook.calls, len(_heard(processing)), _audited(api, processing)) == (0, 1, 1)


def test_a_full_run_announces_and_audits_once(api, processing):
    hook = Generator()
    _redeliver(processing, hook)
    assert (hook.calls, len(_heard(processing)), _audited(api, processing)) == (1, 1, 1)


def test_the_webhook_call_carries_the_job_as_idempotency_key_and_a_repeat_is_answered_first_result():
    fake = FakeGenerator("k", delay=0, sleep=lambda s: None)
    fake.set_load(0, None)
    seen: list[dict[str, str]] = []

    def post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes]:
        seen.append(headers)
        lowered = {k.lower(): v for k, v in headers.items()}
        status, answer, _ = fake.call(lowered, body)
        return status, json.dumps(answer).encode()

    class Logs:
        def record(self, article_id: str, entry: dict[str, Any]) -> None:
            pass

    client = ArticleGenerator("http://gen/hook", "k", Logs(), post=post)  # type: ignore[arg-type]
    request = {"article_id": "a" * 32, "title": "T", "topic": "t", "keywords": []}
    first = client.generate(request, job_id=JOB, attempt=1, time_left=30)
    fake.add_fault(500)  # a generation would fail now: a repeated key is not generated again
    again = client.generate(request, job_id=JOB, attempt=2, time_left=30)
    assert first == again
    assert [h["Idempotency-Key"] for h in seen] == [JOB, JOB]
    assert [(c["status"], c.get("replayed", False)) for c in fake.log] == [(200, False), (200, True)]
    assert seen[0]["X-Inkwell-Delivery"] != seen[1]["X-Inkwell-Delivery"]


def test_a_redelivery_that_cannot_read_back_announces_and_audits_rather_than_lose_them(api, processing, faults):
    # GIVEN a run killed right after it published, and DynamoDB refusing the read-backs for good
    content.articles().complete_generation(processing["payload"]["article_id"], JOB, "the article's text")
    faults.fail("Query", times=OUTLAST, match="ws_events")
    faults.fail("Query", times=OUTLAST, match="audit_events")
    # WHEN the job is delivered again
    _redeliver(processing, Generator())
    # THEN both checks failed, and the publication was announced and audited all the same
    assert faults.met["Query"] == 2 * OUTLAST
    assert (len(_heard(processing)), _audited(api, processing)) == (1, 1)
