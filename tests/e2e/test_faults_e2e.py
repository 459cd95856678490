"""Faults on the running stack: rules posted to the control server reach the app's AWS calls and
the SQS poller, never the pollers' own receives and deletes (Lambda's poller is AWS's)."""

from __future__ import annotations

from tests.e2e.conftest import LocalStack, eventually


def test_faults_reach_the_apps_calls_and_the_emulators_not_the_pollers_clients(stack: LocalStack) -> None:
    token = stack.login()
    rules = [
        {"kind": "error", "service": "sqs", "operation": "ReceiveMessage", "rate": 1},
        {"kind": "error", "service": "sqs", "operation": "DeleteMessageBatch", "rate": 1},
        {"kind": "lost_delete", "queue": "articles", "count": 1},
        {"kind": "latency", "service": "dynamodb", "seconds": 0, "count": 1},
    ]
    status, body, _ = stack.control("POST", "/faults", {"seed": 1, "rules": rules})
    assert status == 201, body
    try:
        status, article, _ = stack.request("POST", "/api/articles", {"title": "faults", "topic": "tides"}, token=token)
        assert status == 201, article
        status, accepted, _ = stack.request("POST", f"/api/articles/{article['id']}/generate", token=token)
        assert status == 202, accepted
        eventually(
            lambda: stack.request("GET", f"/api/articles/{article['id']}", token=token)[1]["status"] == "PUBLISHED",
            timeout=20,
        )
        injected = eventually(lambda: (i := stack.control("GET", "/faults")[1]["injected"]).get("lost_delete") and i)
        assert injected.get("latency") == 1 and "error" not in injected, injected
    finally:
        assert stack.control("DELETE", "/faults")[0] == 204
