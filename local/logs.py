"""One readable line per request, WebSocket event, job batch and schedule firing.

Every emulator logs through `line(kind, text)` so the terminal reads as one timeline:
`12:00:01.234 REST  POST /api/auth/login 200 41ms ip=127.0.0.1 id=…`, and the app's own lines
(`adopt`: job states, webhook calls, at INKWELL_LOG_LEVEL, INFO by default) join it as
`12:00:01.240 APP   INFO inkwell.jobs job completed job_id=…`.

With `INKWELL_LOG_FORMAT=json` every line is one JSON object instead, the stack's (`"kind"`:
REST, WS, SQS, ...) and the app's (as on Lambda, `chalicelib.observe.logs.JsonFormatter`), the
banner included (`announce`).
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Any

from chalicelib import config
from chalicelib.observe.logs import JsonFormatter, TextFormatter

log = logging.getLogger("local")


class _Format(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}"


class _AppText(TextFormatter):
    """The app's lines in the stack's timeline: its time format, `APP`, then as on Lambda's text."""

    def __init__(self) -> None:
        logging.Formatter.__init__(self, "%(asctime)s APP   %(levelname)s %(name)s %(message)s")

    formatTime = _Format.formatTime  # noqa: N815


class _Stderr(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on whatever sys.stderr is when a line is written."""

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stderr

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


_handler = _Stderr()
_handler.setFormatter(_Format("%(asctime)s %(message)s"))
_app_handler = _Stderr()  # the same stream: one timeline
_app_handler.setFormatter(_AppText())


def json_lines() -> bool:
    return config.log_format() == "json"


def setup(level: int = logging.INFO) -> None:
    """Log to stderr, quietly for the libraries (moto's werkzeug would log every AWS call); one
    JSON object per line with INKWELL_LOG_FORMAT=json."""
    if json_lines():
        _handler.setFormatter(JsonFormatter())
        _app_handler.setFormatter(JsonFormatter())
    else:
        _handler.setFormatter(_Format("%(asctime)s %(message)s"))
        _app_handler.setFormatter(_AppText())
    root = logging.getLogger()
    root.handlers[:] = [_handler]
    root.setLevel(logging.WARNING)
    log.setLevel(level)
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "websockets", "moto"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def adopt(app_log: logging.Logger) -> None:
    """Chalice gives the app's logger its own stdout handler (for CloudWatch); the stack's stream
    instead, at INKWELL_LOG_LEVEL (job states and webhook calls are INFO)."""
    app_log.handlers[:] = [_app_handler]
    app_log.setLevel(config.log_level())
    app_log.propagate = False


def line(kind: str, text: str) -> None:
    if json_lines():
        log.info("%s", text, extra={"fields": {"kind": kind}})
    else:
        log.info("%-5s %s", kind, text)


def announce(banner: str) -> None:
    """The banner: printed as it is, or one JSON line holding its lines."""
    if json_lines():
        lines = banner.splitlines()
        log.info("%s", lines[0], extra={"fields": {"kind": "STACK", "banner": lines[1:]}})
    else:
        print(banner, flush=True)


def ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f}ms"
