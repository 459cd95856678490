"""The article generator's client: the generation webhook, as the contract describes it, and its call log.

`ArticleGenerator.generate` POSTs `{"article_id","title","topic","keywords"}` with
`X-Inkwell-Signature: sha256=<hex HMAC-SHA256 of the body with WEBHOOK_SECRET>` and the
timestamped signature (`signed_headers`: `X-Inkwell-Timestamp`, `X-Inkwell-Delivery`,
`X-Inkwell-Signature-V2`) and `Idempotency-Key: <job id>` (a generator answers a repeated key with
its first result: a run killed after the call, redelivered, does not generate twice), within a
timeout that never runs past the Lambda's deadline. A 200 `{"content": str}` is the content; a
timeout, a connection error, a 5xx or a 429 is retried (a plain exception); a 429 with
`Retry-After` (seconds or an HTTP date) raises `Throttled`, which the worker waits out without
using an attempt (a bounded number of times); any other 4xx or an unexpected status fails the
job at once (PermanentError). Every call is written to the
`webhook_logs` table (with a TTL), whatever its outcome. The HTTP function is injected, so tests
need no server; the default uses urllib (no extra dependency) and never follows redirects.
Its expired log items that TTL has not removed yet go with content's cleanup (`cleanup.py`).
"""

from __future__ import annotations

import email.utils
import hashlib
import hmac
import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib import timeutil
from chalicelib.jobs.errors import DeadlineExceeded, JobError, PermanentError, Throttled
from chalicelib.observe import metrics
from chalicelib.util import to_dynamo

log = logging.getLogger("inkwell.webhook")

LOG_RETENTION_SECONDS = 14 * 86400
MAX_RESPONSE_BYTES = 2 * 1024 * 1024
EXCERPT = 300
MIN_TIMEOUT = 1.0

# (url, body, headers, timeout) -> (status, body) or (status, body, response headers)
Post = Callable[[str, bytes, dict[str, str], float], tuple[Any, ...]]


class WebhookUnavailable(JobError):
    """A timeout, a connection error, a 5xx or a 429: worth another attempt."""

    kind = "webhook_unavailable"


def sign(body: bytes, secret: str) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signed_headers(body: bytes, secret: str, now: float, delivery: str) -> dict[str, str]:
    """The signature headers of one call: the contract's body signature, and the one a generator
    should check, over `<timestamp>.<delivery>.<body>` (docs/api.md, Article generation webhook):
    a captured call replayed later is stale, and one replayed at once repeats its delivery id."""
    stamp = str(int(now))
    signed = f"{stamp}.{delivery}.".encode() + body
    return {
        "X-Inkwell-Signature": sign(body, secret),
        "X-Inkwell-Timestamp": stamp,
        "X-Inkwell-Delivery": delivery,
        "X-Inkwell-Signature-V2": "sha256=" + hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest(),
    }


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # a 3xx is answered as it is (and refused), never re-sent elsewhere


_opener = urllib.request.build_opener(_NoRedirects)


def urllib_post(url: str, body: bytes, headers: dict[str, str], timeout: float) -> tuple[int, bytes, dict[str, str]]:
    """POST with urllib: (status, body, headers). Raises TimeoutError / OSError when there is no answer."""
    request = urllib.request.Request(url, data=body, headers=headers, method="POST")
    try:
        with _opener.open(request, timeout=timeout) as response:
            return response.status, response.read(MAX_RESPONSE_BYTES), dict(response.headers)
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, exc.read(MAX_RESPONSE_BYTES), dict(exc.headers or {})
    except urllib.error.URLError as exc:
        reason = exc.reason
        if isinstance(reason, TimeoutError):
            raise reason from None
        raise ConnectionError(str(reason)) from None


@dataclass(frozen=True)
class Outcome:
    outcome: str  # ok | retriable | rejected | invalid_response
    content: str | None = None
    detail: str = ""


def classify(status: int, body: bytes) -> Outcome:
    """What an HTTP answer means for the job (pure)."""
    if status == 200:
        try:
            data = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            return Outcome("invalid_response", detail="the 200 answer is not JSON")
        content = data.get("content") if isinstance(data, dict) else None
        if not isinstance(content, str) or not content.strip():
            return Outcome("invalid_response", detail='the 200 answer has no "content" string')
        return Outcome("ok", content=content)
    if status == 429 or 500 <= status <= 599:
        return Outcome("retriable", detail=f"HTTP {status}")
    return Outcome("rejected", detail=f"HTTP {status}")


class WebhookLogs:
    """`webhook_logs`: one item per call, by article and time."""

    def __init__(self, table: Any) -> None:
        self._table = table

    def record(self, article_id: str, entry: dict[str, Any]) -> None:
        now = timeutil.now()
        item = {
            "article_id": article_id,
            "sk": f"{timeutil.iso_ms(now)}#{entry.get('job_id', '')}#{entry.get('attempt', 0)}",
            "at": timeutil.iso_ms(now),
            **entry,
            **timeutil.ttl_fields(now + LOG_RETENTION_SECONDS),
        }
        self._table.put_item(Item=to_dynamo(item))


class ArticleGenerator:
    def __init__(
        self,
        url: str,
        secret: str,
        logs: WebhookLogs,
        *,
        post: Post = urllib_post,
        timeout: float = 30.0,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._secret = secret
        self._logs = logs
        self._post = post
        self._timeout = timeout
        self._monotonic = monotonic

    def generate(self, request: dict[str, Any], *, job_id: str, attempt: int, time_left: float) -> str:
        """The generated content. Raises WebhookUnavailable (retried), PermanentError or
        DeadlineExceeded (too little time left for a call)."""
        if not self._url:
            raise PermanentError("ARTICLE_WEBHOOK_URL is not configured", kind="webhook_unconfigured")
        timeout = min(self._timeout, time_left)
        if timeout < MIN_TIMEOUT:
            raise DeadlineExceeded("too little time left for the webhook call")
        body = json.dumps(request, separators=(",", ":")).encode()
        headers = {
            "Content-Type": "application/json",
            "User-Agent": "Inkwell/1.0",
            **signed_headers(body, self._secret, timeutil.now(), uuid.uuid4().hex),
            "X-Inkwell-Job": job_id,
            "Idempotency-Key": job_id,
        }
        entry: dict[str, Any] = {
            "job_id": job_id,
            "attempt": attempt,
            "url": _loggable(self._url),
            "request_bytes": len(body),
            "timeout_seconds": round(timeout, 3),
        }
        started = self._monotonic()
        try:
            status, answer, *more = self._post(self._url, body, headers, timeout)
        except TimeoutError:
            self._measure(started, "timeout")
            self._log(request, entry, started, outcome="timeout", error=f"no answer within {timeout:.1f} s")
            raise WebhookUnavailable(
                f"the webhook did not answer within {timeout:.1f} s", kind="webhook_timeout"
            ) from None
        except OSError as exc:
            self._measure(started, "error")
            self._log(request, entry, started, outcome="connection_error", error=str(exc)[:EXCERPT])
            raise WebhookUnavailable(f"the webhook is unreachable: {exc}"[:300]) from None
        self._measure(started, metrics.status_class(status))
        result = classify(status, answer)
        excerpt = None if result.outcome == "ok" else answer[:EXCERPT].decode("utf-8", "replace")
        self._log(
            request,
            entry,
            started,
            outcome=result.outcome,
            status_code=status,
            response_bytes=len(answer),
            error=result.detail or None,
            response_excerpt=excerpt,
        )
        if result.outcome == "ok":
            assert result.content is not None
            return result.content
        if result.outcome == "rejected":
            raise PermanentError(f"the webhook refused the request ({result.detail})", kind="webhook_rejected")
        wait = retry_after(more[0] if more else {}) if status == 429 else None
        if wait is not None:
            raise Throttled(f"the webhook asked to wait {wait:.0f} s (HTTP 429)", wait, kind="webhook_throttled")
        raise WebhookUnavailable(f"the webhook failed ({result.detail})", kind=f"webhook_{result.outcome}")

    def _measure(self, started: float, status: str) -> None:
        metrics.count("GeneratorCalls", Status=status)
        metrics.timing("GeneratorLatency", (self._monotonic() - started) * 1000, Status=status)

    def _log(self, request: dict[str, Any], entry: dict[str, Any], started: float, **fields: Any) -> None:
        entry = dict(entry, duration_ms=int((self._monotonic() - started) * 1000), **fields)
        try:
            self._logs.record(str(request.get("article_id", "")), entry)
        except Exception:  # a lost log line must not turn a call into a retry (and a second call)
            log.exception("could not log the webhook call of job %s", entry.get("job_id"))


def retry_after(headers: dict[str, str]) -> float | None:
    """Seconds a `Retry-After` header asks to wait (delta seconds or an HTTP date), or None."""
    value = next((v for k, v in headers.items() if k.lower() == "retry-after"), None)
    if value is None:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - timeutil.now())


def _loggable(url: str) -> str:
    """The URL without its query or credentials (which may hold secrets)."""
    parts = urllib.parse.urlsplit(url)
    host = parts.hostname or ""
    if parts.port:
        host += f":{parts.port}"
    return urllib.parse.urlunsplit((parts.scheme, host, parts.path, "", ""))
