"""The article state machine on moto: conditional writes, so of concurrent requests exactly one
wins and the others get InvalidTransition (409); rollback and completion only for their job."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import pytest

from chalicelib.content import articles

RACERS = 6


@pytest.fixture
def store(aws_mock):
    return articles.articles()


def _draft(store) -> str:
    return store.create(articles.NewArticle(title="t", topic="x"), "author-1")["id"]


def _race(work: Callable[[int], Any]) -> list[Any]:
    """Run work(i) in RACERS threads released at the same moment; each result or exception."""
    barrier = threading.Barrier(RACERS)
    results: list[Any] = [None] * RACERS

    def run(i: int) -> None:
        barrier.wait()
        try:
            results[i] = work(i)
        except Exception as exc:  # collected and asserted on below
            results[i] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(RACERS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return results


@pytest.mark.parametrize("action", ["generate", "archive"])
def test_of_concurrent_transitions_exactly_one_wins(store, action):
    article_id = _draft(store)
    results = _race(lambda i: articles.articles().transition(article_id, action, {"job_id": f"job-{i}"}))
    winners = [r for r in results if isinstance(r, dict)]
    losers = [r for r in results if isinstance(r, articles.InvalidTransition)]
    assert len(winners) == 1 and len(losers) == RACERS - 1, results
    final = store.get(article_id)
    assert final["status"] == articles.TRANSITIONS[action][1]
    assert final["job_id"] == winners[0]["job_id"]


def test_completion_and_rollback_race_for_the_same_job_only_one_applies(store):
    article_id = _draft(store)
    store.transition(article_id, "generate", {"job_id": "job-1"})
    results = _race(
        lambda i: (
            articles.articles().complete_generation(article_id, "job-1", "text")
            if i % 2
            else articles.articles().rollback(article_id, "job-1")
        )
    )
    winners = [r for r in results if isinstance(r, dict)]
    assert len(winners) == 1, results
    assert all(isinstance(r, articles.InvalidTransition) for r in results if not isinstance(r, dict))
    assert store.get(article_id)["status"] in ("PUBLISHED", "DRAFT")


def test_generate_remembers_the_status_to_roll_back_to(store):
    article_id = _draft(store)
    store.transition(article_id, "archive")
    moved = store.transition(article_id, "generate", {"job_id": "job-1"})
    assert (moved["status"], moved["previous_status"]) == ("PROCESSING", "ARCHIVED")
    back = store.rollback(article_id, "job-1")
    assert back["status"] == "ARCHIVED" and "previous_status" not in back


def test_completion_publishes_the_content_for_its_own_job_only(store):
    article_id = _draft(store)
    store.transition(article_id, "generate", {"job_id": "job-1"})
    with pytest.raises(articles.InvalidTransition):
        store.complete_generation(article_id, "job-2", "stale")
    done = store.complete_generation(article_id, "job-1", "fresh")
    assert (done["status"], done["content"]) == ("PUBLISHED", "fresh")
    with pytest.raises(articles.InvalidTransition):
        store.rollback(article_id, "job-1")  # too late: it succeeded


def test_an_invalid_transition_names_the_current_status(store):
    article_id = _draft(store)
    with pytest.raises(articles.InvalidTransition) as info:
        store.transition(article_id, "publish")  # a draft has no content to publish
    assert info.value.status == "DRAFT"


def test_a_transition_of_a_missing_article_is_not_found(store):
    with pytest.raises(articles.ArticleNotFound):
        store.transition("0" * 32, "generate")
