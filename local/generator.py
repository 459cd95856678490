"""The fake article generator: the webhook `ARTICLE_WEBHOOK_URL` points at when none is given.

It checks `X-Inkwell-Signature: sha256=<hex HMAC-SHA256(body, WEBHOOK_SECRET)>` (401 otherwise),
answers 400 to a body that is not the contract's `{"article_id","title","topic","keywords"}`,
then, after a short delay, 200 `{"content": ...}` derived only from the request, so runs are
deterministic and `make run` works offline. Tests make it fail on purpose with faults
(`POST /generator/faults {"status": 500, "times": 2, "article_id"?: ...}`; `"delay": seconds`
makes those calls slow, and with status 200 only slow) or per request with the `X-Fake-Status`
header.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def content_for(request: dict[str, Any]) -> str:
    """Deterministic article text for a generation request."""
    title, topic = str(request.get("title", "")), str(request.get("topic", ""))
    keywords = [str(k) for k in request.get("keywords") or []]
    digest = hashlib.sha256(json.dumps(request, sort_keys=True).encode()).hexdigest()[:8]
    paragraphs = [
        f"# {title}",
        f"This article is about {topic}." + (f" It covers {', '.join(keywords)}." if keywords else ""),
        f"(Generated locally by the fake generator, draft {digest}.)",
    ]
    return "\n\n".join(paragraphs)


@dataclass
class Fault:
    status: int
    times: int
    article_id: str | None = None
    delay: float | None = None  # seconds this call takes instead of the generator's delay


class FakeGenerator:
    def __init__(self, secret: str, delay: float = 0.2, sleep: Callable[[float], None] = time.sleep) -> None:
        self._secret, self._delay, self._sleep = secret, delay, sleep
        self._faults: list[Fault] = []
        self._lock = threading.Lock()
        self.calls = 0

    def add_fault(self, status: int, times: int = 1, article_id: str | None = None, delay: float | None = None) -> None:
        if not 100 <= status <= 599 or times < 1:
            raise ValueError("status must be an HTTP status and times at least 1")
        if delay is not None and not 0 <= delay <= 60:
            raise ValueError("delay must be between 0 and 60 seconds")
        with self._lock:
            self._faults.append(Fault(status, times, article_id, delay))

    def _take_fault(self, article_id: str | None) -> Fault | None:
        with self._lock:
            for fault in self._faults:
                if fault.article_id in (None, article_id):
                    fault.times -= 1
                    if fault.times == 0:
                        self._faults.remove(fault)
                    return fault
        return None

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """(status, JSON answer) for one webhook call; headers are lower-cased."""
        self.calls += 1
        given = headers.get("x-inkwell-signature", "")
        if not hmac.compare_digest(given.encode(), signature(body, self._secret).encode()):
            return 401, {"message": "bad or missing X-Inkwell-Signature"}
        try:
            request = json.loads(body)
        except ValueError:
            return 400, {"message": "the body must be JSON"}
        if not isinstance(request, dict) or not all(k in request for k in ("article_id", "title", "topic")):
            return 400, {"message": "expected {article_id, title, topic, keywords}"}
        forced = headers.get("x-fake-status")
        fault = None if forced and forced.isdigit() else self._take_fault(str(request["article_id"]))
        status = int(forced) if forced and forced.isdigit() else fault.status if fault else None
        self._sleep(self._delay if fault is None or fault.delay is None else fault.delay)
        if status and status != 200:
            return status, {"message": f"fake generator failing on purpose ({status})"}
        return 200, {"content": content_for(request)}
