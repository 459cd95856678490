"""Log formats, the correlation keys of an invocation, and EMF documents (pure, no I/O)."""

from __future__ import annotations

import io
import json
import logging

import pytest

from chalicelib import config, runtime
from chalicelib.observe import logs, metrics

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJlc2lnbmF0dXJl"


def _logger(formatter: logging.Formatter) -> tuple[logging.Logger, io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(formatter)
    log = logging.getLogger("inkwell.test-observe")
    log.handlers[:] = [handler]
    log.propagate = False
    log.setLevel(logging.DEBUG)
    return log, out


def test_the_log_format_defaults_to_json_on_lambda_and_text_elsewhere(monkeypatch):
    assert config.log_format() == "text"
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "inkwell-prod")
    assert config.log_format() == "json"
    monkeypatch.setenv("INKWELL_LOG_FORMAT", "TEXT")
    assert config.log_format() == "text"
    monkeypatch.setenv("INKWELL_LOG_FORMAT", "xml")
    with pytest.raises(config.ConfigError, match="INKWELL_LOG_FORMAT"):
        config.log_format()


def test_the_log_level_is_configurable_and_checked(monkeypatch):
    assert config.log_level() == "INFO"
    monkeypatch.setenv("INKWELL_LOG_LEVEL", "debug")
    assert config.log_level() == "DEBUG"
    monkeypatch.setenv("INKWELL_LOG_LEVEL", "loud")
    with pytest.raises(config.ConfigError, match="INKWELL_LOG_LEVEL"):
        config.log_level()


def test_a_json_line_carries_the_invocation_and_its_correlation_keys_and_masks_credentials(monkeypatch):
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "inkwell-test-jobs_articles")
    log, out = _logger(logs.JsonFormatter())
    inv = runtime.Invocation(kind="sqs", request_id="req-7", cold_start=True)
    token = runtime._current.set(inv)
    try:
        with runtime.correlate(queue="articles"):
            runtime.annotate(job_id="j1", attempt=2)
            log.warning("sent Bearer %s", JWT, extra={"fields": {"password": "hunter2", "state": "active"}})
        log.info("after")
    finally:
        runtime._current.reset(token)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first["message"] == "sent [REDACTED]" and first["password"] == "[REDACTED]"
    assert (first["level"], first["service"], first["function"]) == ("WARNING", "inkwell", "inkwell-test-jobs_articles")
    assert (first["request_id"], first["cold_start"], first["state"]) == ("req-7", True, "active")
    assert (first["queue"], first["job_id"], first["attempt"]) == ("articles", "j1", 2)
    assert "job_id" not in second and "queue" not in second  # the block ended: its keys are gone
    assert JWT not in out.getvalue()


def test_a_text_line_is_readable_with_its_keys_and_masked():
    log, out = _logger(logs.TextFormatter())
    inv = runtime.Invocation(kind="websocket", request_id="r1", correlation={"connection_id": "c-1"})
    token = runtime._current.set(inv)
    try:
        try:
            raise ValueError(f"token {JWT}")
        except ValueError:
            log.exception("failed")
    finally:
        runtime._current.reset(token)
    text = out.getvalue()
    assert text.splitlines()[0].endswith("ERROR inkwell.test-observe failed request_id=r1 connection_id=c-1")
    assert "Traceback" in text and JWT not in text


def test_metrics_are_aggregated_per_dimensions_into_emf_documents(capsys):
    inv = runtime.Invocation(kind="sqs", request_id="r")
    token = runtime._current.set(inv)
    try:
        metrics.count("JobCompleted", Queue="emails")
        metrics.count("JobCompleted", Queue="emails")
        metrics.timing("JobDuration", 12.5, Queue="emails")
        metrics.timing("JobDuration", 30, Queue="emails")
        metrics.count("JobFailed", Queue="cleanup")
        metrics.count("WebSocketPosts", 3)
        documents = metrics.flush()
        assert metrics.flush() == []  # flushed once
    finally:
        runtime._current.reset(token)
    written = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert written == documents and len(documents) == 3
    emails = next(d for d in documents if d.get("Queue") == "emails")
    [directive] = emails["_aws"]["CloudWatchMetrics"]
    assert directive["Namespace"] == "Inkwell" and directive["Dimensions"] == [["Queue"]]
    assert directive["Metrics"] == [
        {"Name": "JobCompleted", "Unit": "Count"},
        {"Name": "JobDuration", "Unit": "Milliseconds"},
    ]
    assert (emails["JobCompleted"], emails["JobDuration"]) == (2, [12.5, 30.0])
    posts = next(d for d in documents if "WebSocketPosts" in d)
    assert posts["WebSocketPosts"] == 3 and posts["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [[]]


def test_a_metric_flushes_itself_at_emfs_limit_of_values(capsys):
    inv = runtime.Invocation(kind="sqs", request_id="r")
    token = runtime._current.set(inv)
    try:
        for _ in range(metrics.MAX_VALUES + 1):
            metrics.timing("JobQueueWait", 1, Queue="articles")
        early = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
        rest = metrics.flush()
    finally:
        runtime._current.reset(token)
    assert [len(d["JobQueueWait"]) for d in early] == [metrics.MAX_VALUES] and rest[0]["JobQueueWait"] == 1


def test_a_metric_refuses_unknown_names_and_wrong_dimensions():
    with pytest.raises(KeyError):
        metrics.count("JobsDone", Queue="emails")
    with pytest.raises(ValueError, match="Queue"):
        metrics.count("JobCompleted")


def test_the_rate_limit_hook_counts_by_queue(capsys):
    inv = runtime.Invocation(kind="sqs", request_id="r")
    token = runtime._current.set(inv)
    try:
        metrics.count("JobRateLimited", Queue="articles")  # what flow control calls when it puts a job back
        [document] = metrics.flush()
    finally:
        runtime._current.reset(token)
    assert (document["Queue"], document["JobRateLimited"]) == ("articles", 1)


def test_generator_statuses_are_classes():
    assert [metrics.status_class(s) for s in (200, 201, 404, 429, 503, None)] == [
        "2xx",
        "2xx",
        "4xx",
        "429",
        "5xx",
        "error",
    ]
