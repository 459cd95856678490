"""`make run`'s log lines: the stack's and the app's in one timeline, every line one JSON object
with INKWELL_LOG_FORMAT=json, the app's INFO lines (job states, webhook calls) included."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from local import logs

BANNER = "Inkwell local stack (stage local) is up in 1.0 s:\n  REST API  http://127.0.0.1:8000/api/health\nCtrl-C stops everything."


@pytest.fixture
def app_log() -> Iterator[logging.Logger]:
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    log = logging.getLogger("inkwell-logs-test")
    try:
        yield log
    finally:  # after monkeypatch's undo (set up first, torn down last): the stack's text format again
        logs.setup()
        root.handlers[:] = saved[0]
        root.setLevel(saved[1])
        log.handlers[:] = []


def emit(app_log: logging.Logger) -> None:
    logs.setup()
    logs.adopt(app_log)
    logs.line("REST", "POST /api/auth/login 200 41ms")
    logging.getLogger(app_log.name + ".jobs").info("job %s completed", "j1", extra={"fields": {"queue": "articles"}})
    logs.announce(BANNER)
    logs.log.warning("a stack warning")


def test_json_format_makes_every_line_json_with_the_apps_info_lines(app_log, monkeypatch, capsys):
    monkeypatch.setenv("INKWELL_LOG_FORMAT", "json")
    monkeypatch.delenv("INKWELL_LOG_LEVEL", raising=False)
    emit(app_log)
    out = capsys.readouterr()
    lines = [json.loads(line) for line in (out.err + out.out).splitlines()]  # each one JSON object
    assert [(line["level"], line["message"]) for line in lines] == [
        ("INFO", "POST /api/auth/login 200 41ms"),
        ("INFO", "job j1 completed"),
        ("INFO", BANNER.splitlines()[0]),
        ("WARNING", "a stack warning"),
    ]
    assert lines[0]["kind"] == "REST" and lines[1]["queue"] == "articles" and lines[1]["logger"].endswith(".jobs")
    assert lines[2]["banner"] == BANNER.splitlines()[1:]


def test_text_format_shows_the_apps_info_lines_in_the_stacks_timeline(app_log, monkeypatch, capsys):
    monkeypatch.delenv("INKWELL_LOG_FORMAT", raising=False)
    monkeypatch.delenv("INKWELL_LOG_LEVEL", raising=False)
    emit(app_log)
    out = capsys.readouterr()
    assert "REST  POST /api/auth/login 200 41ms" in out.err
    assert "APP   INFO inkwell-logs-test.jobs job j1 completed queue=articles" in out.err
    assert out.out == BANNER + "\n"
