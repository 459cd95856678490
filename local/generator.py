"""The fake article generator: the webhook `ARTICLE_WEBHOOK_URL` points at when none is given.

It checks the timestamped signature as docs/api.md asks generators to (401 otherwise):
`X-Inkwell-Signature-V2: sha256=<hex HMAC-SHA256("<X-Inkwell-Timestamp>.<X-Inkwell-Delivery>.<body>",
WEBHOOK_SECRET)>`, a timestamp within TOLERANCE seconds of its clock (a captured call replayed
later is stale), and a delivery id it has not seen (one replayed at once); it
answers 400 to a body that is not the contract's `{"article_id","title","topic","keywords"}`,
then, after a short delay, 200 `{"content": ...}` derived only from the request, so runs are
deterministic and `make run` works offline. Tests make it fail on purpose with faults
(`POST /generator/faults {"status": 500, "times": 2, "article_id"?: ...}`; `"delay": seconds`
makes those calls slow, and with status 200 only slow) or per request with the `X-Fake-Status`
header.

Load runs (`bench/bench_load.py`) set `POST /generator/load {"failure_rate": 0-1, "rate_limit":
calls per second | null, "seed"?}`: that share of calls fails at random with 500, and a call over
`rate_limit` calls in the current second (aligned on the clock) answers 429 with `Retry-After`.
From then on every call is logged (`GET /generator/calls`: `{"items": [{"at", "article_id", "status"}]}`,
with `"replayed": true` for an answer repeated for its `Idempotency-Key`).

A call whose `Idempotency-Key` already had a 200 (within KEY_SECONDS) gets that first answer again
at once, without generating (nor failing on purpose), as docs/api.md asks of generators.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

TOLERANCE = 300  # seconds a signed call stays valid (and its delivery id remembered twice as long)
KEY_SECONDS = 86400  # how long an Idempotency-Key's first 200 answer is kept


def signature(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed(body: bytes, secret: str, now: float | None = None, delivery: str | None = None) -> dict[str, str]:
    """The signature headers (lower-cased) of a call made at `now`, as the app sends them."""
    stamp, delivery = str(int(time.time() if now is None else now)), delivery or uuid.uuid4().hex
    mac = hmac.new(secret.encode(), f"{stamp}.{delivery}.".encode() + body, hashlib.sha256).hexdigest()
    return {
        "x-inkwell-signature": signature(body, secret),
        "x-inkwell-timestamp": stamp,
        "x-inkwell-delivery": delivery,
        "x-inkwell-signature-v2": f"sha256={mac}",
    }


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
    def __init__(
        self,
        secret: str,
        delay: float = 0.2,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._secret, self._delay, self._sleep, self._clock = secret, delay, sleep, clock
        self._faults: list[Fault] = []
        self._seen: dict[str, float] = {}  # delivery id -> when it came
        self._answers: dict[str, tuple[float, dict[str, Any]]] = {}  # Idempotency-Key -> (when, its 200 answer)
        self._lock = threading.Lock()
        self.calls = 0
        self.failure_rate = 0.0
        self.rate_limit: int | None = None
        self._random = random.Random()
        self._recording = False
        self._second = (0, 0)  # (the current clock second, calls counted in it)
        self.log: list[dict[str, Any]] = []  # once set_load ran: every well-formed call's at, article_id, status

    def set_load(self, failure_rate: float, rate_limit: int | None, seed: int | None = None) -> None:
        """Fail `failure_rate` of calls at random (500); answer 429 above `rate_limit` calls a second."""
        if not 0 <= failure_rate <= 1:
            raise ValueError("failure_rate must be between 0 and 1")
        if rate_limit is not None and rate_limit < 1:
            raise ValueError("rate_limit must be at least 1 call a second, or null")
        with self._lock:
            self.failure_rate, self.rate_limit = failure_rate, rate_limit
            self._random = random.Random(seed)
            self.log, self._recording = [], True

    def _load_status(self, now: float) -> tuple[int | None, float]:
        """(status forced by the load settings or None, seconds until the next second) for a call."""
        with self._lock:
            second = math.floor(now)
            count = self._second[1] + 1 if self._second[0] == second else 1
            self._second = (second, count)
            if self.rate_limit is not None and count > self.rate_limit:
                return 429, second + 1 - now
            return (500 if self._random.random() < self.failure_rate else None), 0.0

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

    def _refused(self, headers: dict[str, str], body: bytes) -> str | None:
        """Why a call's signature is refused (None when it holds): forged, stale or replayed."""
        stamp, delivery = headers.get("x-inkwell-timestamp", ""), headers.get("x-inkwell-delivery", "")
        if not stamp.isdigit() or not delivery:
            return "missing X-Inkwell-Timestamp or X-Inkwell-Delivery"
        expected = signed(body, self._secret, int(stamp), delivery)["x-inkwell-signature-v2"]
        if not hmac.compare_digest(headers.get("x-inkwell-signature-v2", "").encode(), expected.encode()):
            return "bad or missing X-Inkwell-Signature-V2"
        now = self._clock()
        if abs(now - int(stamp)) > TOLERANCE:
            return "stale X-Inkwell-Timestamp (more than 5 minutes off)"
        with self._lock:
            self._seen = {d: at for d, at in self._seen.items() if at > now - 2 * TOLERANCE}
            if delivery in self._seen:
                return "replayed X-Inkwell-Delivery"
            self._seen[delivery] = now
        return None

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any]]:
        """(status, JSON answer) for one webhook call; headers are lower-cased."""
        status, answer, _ = self.call(headers, body)
        return status, answer

    def call(self, headers: dict[str, str], body: bytes) -> tuple[int, dict[str, Any], dict[str, str]]:
        """(status, JSON answer, response headers) for one webhook call; headers are lower-cased."""
        self.calls += 1
        refused = self._refused(headers, body)
        if refused:
            return 401, {"message": refused}, {}
        try:
            request = json.loads(body)
        except ValueError:
            return 400, {"message": "the body must be JSON"}, {}
        if not isinstance(request, dict) or not all(k in request for k in ("article_id", "title", "topic")):
            return 400, {"message": "expected {article_id, title, topic, keywords}"}, {}
        now = self._clock()
        key = headers.get("idempotency-key", "")
        first = self._first_answer(key, now) if key else None
        if first is not None:
            with self._lock:
                if self._recording:
                    self.log.append(
                        {"at": now, "article_id": str(request["article_id"]), "status": 200, "replayed": True}
                    )
            return 200, first, {}
        limited, wait = self._load_status(now)
        forced = headers.get("x-fake-status")
        fault = None if forced and forced.isdigit() else self._take_fault(str(request["article_id"]))
        status = int(forced) if forced and forced.isdigit() else fault.status if fault else limited
        with self._lock:
            if self._recording:
                self.log.append({"at": now, "article_id": str(request["article_id"]), "status": status or 200})
        if status == 429 and limited == 429:
            return 429, {"message": "rate limited"}, {"Retry-After": str(max(1, math.ceil(wait)))}
        self._sleep(self._delay if fault is None or fault.delay is None else fault.delay)
        if status and status != 200:
            return status, {"message": f"fake generator failing on purpose ({status})"}, {}
        answer = {"content": content_for(request)}
        if key:
            with self._lock:
                self._answers.setdefault(key, (now, answer))
        return 200, answer, {}

    def _first_answer(self, key: str, now: float) -> dict[str, Any] | None:
        """The 200 answer given to this Idempotency-Key before (kept KEY_SECONDS), or None."""
        with self._lock:
            if len(self._answers) > 10_000:
                self._answers = {k: v for k, v in self._answers.items() if v[0] > now - KEY_SECONDS}
            kept = self._answers.get(key)
        return kept[1] if kept and kept[0] > now - KEY_SECONDS else None
