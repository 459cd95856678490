"""Logs and metrics of one article job, driven as deployed: the generate route, then the articles
queue's Lambda handler (app.py's middleware, app.job_worker), with INKWELL_LOG_FORMAT=json."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import catalog
from chalicelib.observe import logs
from tests.conftest import body
from tests.functional.jobs.conftest import LambdaContext


@pytest.fixture
def json_logs(monkeypatch: pytest.MonkeyPatch, app: Any) -> Any:
    monkeypatch.setenv("INKWELL_LOG_FORMAT", "json")
    logs.configure_logging(app.log)
    yield
    for name in ("INKWELL_LOG_FORMAT", "INKWELL_LOG_LEVEL", "AWS_LAMBDA_FUNCTION_NAME"):
        monkeypatch.delenv(name, raising=False)
    logs.configure_logging(app.log)  # as app.py left it


def _lines(out: str) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(log lines, EMF documents) of captured stdout; every line must be one JSON object."""
    parsed = [json.loads(line) for line in out.splitlines() if line.strip()]
    return [p for p in parsed if "_aws" not in p], [p for p in parsed if "_aws" in p]


def _metric(documents: list[dict[str, Any]], name: str, **dimensions: str) -> list[Any]:
    found = []
    for doc in documents:
        [directive] = doc["_aws"]["CloudWatchMetrics"]
        assert directive["Namespace"] == "Inkwell"
        names = {m["Name"]: m["Unit"] for m in directive["Metrics"]}
        if name in names and all(doc.get(k) == v for k, v in dimensions.items()):
            assert directive["Dimensions"] == [sorted(dimensions)]
            found.append((names[name], doc[name]))
    return found


def test_one_article_job_logs_its_correlation_keys_and_emits_its_metrics(
    api, poller, generator, clock, json_logs, capsys, monkeypatch
):
    import app

    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "inkwell-test-jobs_articles")
    api.token("admin")
    article = body(api.post("/api/articles", {"title": "Tides", "topic": "How tides work"}, as_="editor"))
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", as_="editor"))["job_id"]
    rest_out = capsys.readouterr().out
    clock.advance(2)  # two seconds in the queue

    messages = poller.receive("articles")
    context = LambdaContext(clock, catalog.queue("articles").function_timeout)
    answer = app.jobs_articles(poller.event(messages, "articles"), context)
    assert answer == {"batchItemFailures": []}

    lines, documents = _lines(capsys.readouterr().out)
    job_lines = [line for line in lines if line.get("job_id") == job_id]
    assert {line.get("event") for line in job_lines} >= {"job.active", "job.progress", "job.completed"}
    for line in job_lines:
        assert (line["queue"], line["run"], line["attempt"]) == ("articles", 1, 1), line
        assert line["request_id"] == context.aws_request_id
        assert line["service"] == "inkwell" and line["function"] == "inkwell-test-jobs_articles"
        assert line["level"] in ("INFO", "WARNING") and line["timestamp"].endswith("Z")
        assert isinstance(line["cold_start"], bool)
    [completed] = [line for line in job_lines if line.get("event") == "job.completed"]
    assert (completed["state"], completed["message"]) == ("completed", f"job.completed {job_id}")

    assert _metric(documents, "JobStarted", Queue="articles") == [("Count", 1)]
    assert _metric(documents, "JobCompleted", Queue="articles") == [("Count", 1)]
    assert _metric(documents, "JobFailed", Queue="articles") == []
    [(unit, wait)] = _metric(documents, "JobQueueWait", Queue="articles")
    assert unit == "Milliseconds" and wait >= 2000
    [(unit, duration)] = _metric(documents, "JobDuration", Queue="articles")
    assert unit == "Milliseconds" and duration >= 0
    assert _metric(documents, "GeneratorCalls", Status="2xx") == [("Count", 1)]
    [(unit, _latency)] = _metric(documents, "GeneratorLatency", Status="2xx")
    assert unit == "Milliseconds"

    # the generate request: its API metrics, by route and status
    _, rest_documents = _lines(rest_out)
    route = "POST /api/articles/{article_id}/generate"
    assert _metric(rest_documents, "ApiRequests", Route=route, Status="202") == [("Count", 1)]
    assert len(_metric(rest_documents, "ApiLatency", Route=route, Status="202")) == 1


def test_no_credential_reaches_a_log_line(api, poller, generator, json_logs, capsys, monkeypatch):
    """Through the real paths, at DEBUG: logins (right and wrong password), WebSocket connects with
    ?ticket= and ?token=, a signed webhook call, bad Authorization headers."""
    import app
    from chalicelib.content import generator as webhook
    from chalicelib.realtime import sender as sender_module
    from tests.conftest import ROLE_PASSWORD
    from tests.functional.ws_support import FakeManagement, Gateway

    monkeypatch.setenv("INKWELL_LOG_LEVEL", "DEBUG")
    logs.configure_logging(app.app.log)
    management = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: management)
    gw = Gateway(app, management)

    token = api.token("admin")
    email = api.user("admin")["email"]
    assert api.post("/api/auth/login", {"email": email, "password": "wrong " + ROLE_PASSWORD}).status_code == 401
    ticket = body(api.post("/api/realtime/ticket", as_="admin"))["ticket"]
    assert gw.connect(ticket=ticket)[1]["statusCode"] == 200
    assert gw.connect(ticket=ticket)[1]["statusCode"] == 401  # used: refused, and logged as refused
    assert gw.connect(token=token)[1]["statusCode"] == 401  # refused, and logged as refused
    assert gw.connect(token=token + "x")[1]["statusCode"] == 401
    tampered = token[:-4] + "AAAA"
    for header in (f"Bearer {tampered}", f"Basic {ROLE_PASSWORD}", f"Token {token}"):
        assert api.get("/api/articles", headers={"authorization": header}).status_code == 401
    article = body(api.post("/api/articles", {"title": "T", "topic": "t"}, as_="admin"))
    api.post(f"/api/articles/{article['id']}/generate", as_="admin")
    poller.drain("articles")
    [call] = generator.requests
    signature = call["headers"]["X-Inkwell-Signature"]
    assert signature == webhook.sign(call["body"], "test-webhook-secret")

    out = capsys.readouterr().out
    lines, _ = _lines(out)
    assert any(line["level"] == "DEBUG" or line.get("event") for line in lines)  # something was logged
    for secret in (ROLE_PASSWORD, token, token.split(".")[2], tampered, ticket, signature, signature[7:]):
        assert secret not in out, secret
