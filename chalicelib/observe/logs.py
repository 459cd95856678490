"""Log lines: one JSON object per line on Lambda, readable text elsewhere (INKWELL_LOG_FORMAT).

Every line carries what is running, read from the invocation (`runtime.current()`): the request
id, the cold start, the user, and the correlation keys set with `runtime.correlate` (`job_id`,
`queue`, `run`, `attempt`, `connection_id`, `schedule`, `slot`). A call site passes none of them;
it may add its own fields with `extra={"fields": {...}}`. Credentials are masked in every line
(the audit trail's redaction: JWTs, bearer headers, webhook signatures, keys naming a secret).

A small formatter of our own rather than Powertools Logger: it costs `import app` nothing (the
Powertools logger and metrics modules add ~10 ms to a 60 ms import, `python -m bench cold`), and
it reads the correlation from the invocation, so every stdlib logger gets it without wrapping.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
import traceback
from typing import Any

from chalicelib import config, runtime
from chalicelib.redact import redact, scrub

SERVICE = "inkwell"
KEYS = ("job_id", "queue", "run", "attempt", "connection_id", "user_id", "schedule", "slot")


class _Stdout(logging.StreamHandler):  # type: ignore[type-arg]
    """A handler on whatever sys.stdout is when a line is written (Lambda ships stdout)."""

    def __init__(self) -> None:
        super().__init__()

    @property  # type: ignore[override]
    def stream(self) -> Any:
        return sys.stdout

    @stream.setter
    def stream(self, value: Any) -> None:
        pass


def context() -> dict[str, Any]:
    """What the running invocation says about itself: request id, cold start, correlation keys."""
    inv = runtime.peek()
    if inv is None:
        return {}
    out: dict[str, Any] = {"request_id": inv.request_id}
    if inv.cold_start is not None:
        out["cold_start"] = inv.cold_start
    if inv.user and inv.user.get("id"):
        out["user_id"] = inv.user["id"]
    out.update(inv.correlation)
    return out


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "timestamp": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}Z",
            "level": record.levelname,
            "message": scrub(record.getMessage()),
            "logger": record.name,
            "service": SERVICE,
            "function": os.environ.get(config.LAMBDA_FUNCTION),
        }
        line.update(context())
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update({k: v for k, v in redact(fields).items() if k not in line})
        if record.exc_info:
            line["exception"] = scrub_text("".join(traceback.format_exception(*record.exc_info)))
        return json.dumps(line, default=str, separators=(",", ":"))


class TextFormatter(logging.Formatter):
    """`2026-11-28 02:00:00,123 INFO inkwell.jobs job.completed job_id=... queue=articles`."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = scrub_text(super().format(record))
        keys = dict(context())
        keys.pop("cold_start", None)
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            keys.update(redact(fields))
        extra = " ".join(f"{k}={json.dumps(v, default=str) if not isinstance(v, str) else v}" for k, v in keys.items())
        first, newline, rest = text.partition("\n")  # keys on the first line, before a traceback
        return f"{first} {extra}{newline}{rest}" if extra else text


def scrub_text(text: str) -> str:
    """`scrub` for text of any length (a traceback): credential-looking parts masked."""
    return "\n".join(scrub(part) for part in text.split("\n"))


def configure_logging(app_log: logging.Logger | None = None) -> logging.Handler:
    """Send Inkwell's lines (`app_log`, the Chalice app's logger `inkwell`, and its children) to
    stdout in INKWELL_LOG_FORMAT at INKWELL_LOG_LEVEL; on Lambda every other library's lines too
    (the root logger). Replaces what an earlier call (or Chalice) set; returns the handler."""
    handler = _Stdout()
    handler.setFormatter(JsonFormatter() if config.log_format() == "json" else TextFormatter())
    level = config.log_level()
    log = app_log or logging.getLogger(SERVICE)
    log.handlers[:] = [handler]
    log.setLevel(level)
    log.propagate = False
    if config.on_lambda():  # the runtime's own root handler would write a second, unstructured line
        root = logging.getLogger()
        root.handlers[:] = [handler]
        root.setLevel(logging.WARNING)
    return handler
