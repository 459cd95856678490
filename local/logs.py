"""One readable line per request, WebSocket event, job batch and schedule firing.

Every emulator logs through `line(kind, text)` so the terminal reads as one timeline:
`12:00:01.234 REST  POST /api/auth/login 200 41ms ip=127.0.0.1 id=…`.
"""

from __future__ import annotations

import logging
import sys
import time

log = logging.getLogger("local")


class _Format(logging.Formatter):
    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        return time.strftime("%H:%M:%S", time.gmtime(record.created)) + f".{int(record.msecs):03d}"


_handler = logging.StreamHandler(sys.stderr)
_handler.setFormatter(_Format("%(asctime)s %(message)s"))


def setup(level: int = logging.INFO) -> None:
    """Log to stderr, quietly for the libraries (moto's werkzeug would log every AWS call)."""
    root = logging.getLogger()
    root.handlers[:] = [_handler]
    root.setLevel(logging.WARNING)
    log.setLevel(level)
    for noisy in ("werkzeug", "botocore", "boto3", "urllib3", "websockets", "moto"):
        logging.getLogger(noisy).setLevel(logging.ERROR)


def adopt(app_log: logging.Logger) -> None:
    """Chalice gives the app's logger its own stdout handler (for CloudWatch); share ours instead."""
    app_log.handlers[:] = [_handler]
    app_log.setLevel(logging.WARNING)


def line(kind: str, text: str) -> None:
    log.info("%-5s %s", kind, text)


def ms(started: float) -> str:
    return f"{(time.perf_counter() - started) * 1000:.0f}ms"
