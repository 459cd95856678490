"""Article generation on the local stack, over real sockets: the REST API, the SQS -> Lambda
emulator running the jobs worker, the fake generator, the dead-letter queue and a retry."""

from __future__ import annotations

from typing import Any

from chalicelib import timeutil
from tests.e2e.conftest import LocalStack, eventually


def _article(stack: LocalStack, token: str, title: str) -> dict[str, Any]:
    status, article, _ = stack.request("POST", "/api/articles", {"title": title, "topic": "tides"}, token=token)
    assert status == 201, article
    return article


def _get(stack: LocalStack, path: str, token: str) -> dict[str, Any]:
    status, body, _ = stack.request("GET", path, token=token)
    assert status == 200, body
    return body


def _webhook_calls(stack: LocalStack, article_id: str) -> list[dict[str, Any]]:
    items = stack.aws("dynamodb").query(
        TableName=stack.resource_name("webhook_logs"),
        KeyConditionExpression="article_id = :a",
        ExpressionAttributeValues={":a": {"S": article_id}},
        ConsistentRead=True,
    )["Items"]
    return [{"at": i["at"]["S"], "outcome": i["outcome"]["S"]} for i in items]


def _dead_letters(stack: LocalStack) -> int:
    attrs = stack.aws("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url("articles-dlq"),
        AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"]) + int(attrs["ApproximateNumberOfMessagesNotVisible"])


def test_generate_goes_processing_then_published(stack: LocalStack) -> None:
    token = stack.login()
    article = _article(stack, token, "e2e: generate")
    status, accepted, _ = stack.request("POST", f"/api/articles/{article['id']}/generate", token=token)
    assert status == 202 and accepted["queue"] == "articles", accepted
    assert _get(stack, f"/api/articles/{article['id']}", token)["status"] in ("PROCESSING", "PUBLISHED")
    done = eventually(
        lambda: (a := _get(stack, f"/api/articles/{article['id']}", token))["status"] == "PUBLISHED" and a, timeout=20
    )
    assert "tides" in done["content"]
    # the job is recorded completed just after the article is published
    job = eventually(lambda: (j := _get(stack, f"/api/jobs/{accepted['job_id']}", token))["state"] == "completed" and j)
    assert (job["progress"], job["attempts"]) == (100, 1)


def test_a_failing_webhook_retries_with_growing_gaps_rolls_back_dead_letters_then_a_retry_publishes(
    stack: LocalStack,
) -> None:
    token = stack.login()
    article = _article(stack, token, "e2e: failing webhook")
    before = _dead_letters(stack)
    assert (
        stack.control("POST", "/generator/faults", {"status": 500, "times": 3, "article_id": article["id"]})[0] == 204
    )
    status, accepted, _ = stack.request("POST", f"/api/articles/{article['id']}/generate", token=token)
    assert status == 202, accepted
    job_path = f"/api/jobs/{accepted['job_id']}"

    failed = eventually(lambda: (j := _get(stack, job_path, token))["state"] == "failed" and j, timeout=40)
    assert failed["attempts"] == 3
    assert failed["error"]["kind"] == "webhook_retriable"
    # three calls, each logged; the gaps grow (about 2 s, then about 4 s)
    calls = sorted(_webhook_calls(stack, article["id"]), key=lambda c: c["at"])
    assert [c["outcome"] for c in calls] == ["retriable"] * 3
    at = [timeutil.parse_iso(c["at"]) for c in calls]
    first_gap, second_gap = at[1] - at[0], at[2] - at[1]
    assert 1.0 <= first_gap < second_gap, (first_gap, second_gap)
    assert second_gap >= 2.5
    # rolled back (by the final-failure hook, which runs once the job is recorded failed and its
    # events are out), and the message waits in the dead-letter queue
    eventually(lambda: _get(stack, f"/api/articles/{article['id']}", token)["status"] == "DRAFT", timeout=10)
    eventually(lambda: _dead_letters(stack) == before + 1, timeout=10)

    # an admin retries: the same job runs again (the fault is spent) and publishes
    status, retried, _ = stack.request("POST", f"{job_path}/retry", token=token)
    assert status == 202, retried
    done = eventually(
        lambda: (a := _get(stack, f"/api/articles/{article['id']}", token))["status"] == "PUBLISHED" and a, timeout=20
    )
    assert done["content"]
    eventually(lambda: _get(stack, job_path, token)["state"] == "completed")
    eventually(lambda: _dead_letters(stack) == before, timeout=10)
