"""Faults inside AWS for in-process tests: make a chosen operation of the app's clients fail
before it is applied, or lose its answer after it was applied, a given number of times.

    def test_x(faults: Faults) -> None:
        faults.fail("PutItem", times=OUTLAST)             # throttled through every SDK attempt
        faults.lose("UpdateItem", match='"inkwell-test-jobs"')  # applied, the answer lost once

It works on the botocore `before-send` event of the session every client of `chalicelib.aws` is
built from: moto's in-process stub is wrapped, so a failure before the call never reaches moto
(nothing is applied) and a lost answer is applied by moto and then raised as a closed connection,
which the SDK retries itself, exactly as on AWS. The SDK's backoff sleeps are cut to nothing.
`match` narrows a fault to requests whose body holds the text (a table or queue name). The local
stack's fault injection for `make run` and the chaos bench is a different thing (local/).
"""

from __future__ import annotations

import io
import json
import threading
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

THROTTLE = "ThrottlingException"
INTERNAL = "InternalServerError"
TIMEOUT = "ReadTimeout"  # no answer in time: the request never reached the service
# The app's clients retry 4 times after the first try (chalicelib/aws.py: `max_attempts` counts
# retries), so a fault met 5 times in a row outlasts the SDK and reaches the code.
OUTLAST = 5


@dataclass
class _Fault:
    operation: str
    kind: str  # "fail" (before the call) | "lose" (after it was applied)
    times: int
    code: str
    status: int
    match: str | None


class _Raw(io.BytesIO):
    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self.getvalue()


class Faults:
    """What is planned, and what was met: `met[operation]` counts the faults injected."""

    def __init__(self) -> None:
        self._plan: list[_Fault] = []
        self._lock = threading.Lock()
        self.met: Counter[str] = Counter()

    def fail(self, operation: str, times: int = 1, code: str = THROTTLE, match: str | None = None) -> None:
        """`operation` is refused before it is applied, `times` times in a row (OUTLAST outlasts
        the SDK's attempts): `code` ThrottlingException (400), InternalServerError (500), ReadTimeout
        (no answer at all) or any other error code (400)."""
        status = 500 if code == INTERNAL else 400
        self._plan.append(_Fault(operation, "fail", times, code, status, match))

    def lose(self, operation: str, times: int = 1, match: str | None = None) -> None:
        """`operation` is applied, then its answer is lost (a closed connection), `times` times."""
        self._plan.append(_Fault(operation, "lose", times, "", 0, match))

    def clear(self) -> None:
        self._plan.clear()

    def _take(self, operation: str, body: bytes) -> _Fault | None:
        with self._lock:
            for fault in self._plan:
                if fault.operation == operation and fault.times > 0:
                    if fault.match is not None and fault.match.encode() not in body:
                        continue
                    fault.times -= 1
                    self.met[operation] += 1
                    return fault
        return None

    def hook(self, stub: Any) -> Any:
        """moto's `before-send` stub wrapped with the planned faults."""
        from botocore.awsrequest import AWSResponse
        from botocore.exceptions import ConnectionClosedError, ReadTimeoutError

        def before_send(event_name: str, request: Any, **kwargs: Any) -> Any:
            operation = event_name.rsplit(".", 1)[-1]
            body = request.body if isinstance(request.body, bytes) else str(request.body or "").encode()
            fault = self._take(operation, body)
            if fault is not None and fault.code == TIMEOUT:
                raise ReadTimeoutError(endpoint_url=request.url)
            if fault is not None and fault.kind == "fail":
                headers = {
                    "x-amzn-ErrorType": fault.code,
                    "x-amzn-query-error": f"{fault.code};Sender",
                    "Content-Type": "application/x-amz-json-1.0",
                }
                payload = json.dumps({"__type": fault.code, "message": "injected fault"}).encode()
                return AWSResponse(request.url, fault.status, headers, _Raw(payload))
            response = stub(event_name=event_name, request=request, **kwargs)
            if fault is not None:  # applied by moto; the answer never arrives
                raise ConnectionClosedError(endpoint_url=request.url)
            return response

        return before_send


@pytest.fixture
def faults(aws_mock: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[Faults]:
    """Faults on the app's AWS clients (over the test's moto); clients are built anew with it."""
    from botocore.retries.standard import ExponentialBackoff
    from moto.core.models import botocore_stubber

    from chalicelib import aws

    monkeypatch.setattr(ExponentialBackoff, "delay_amount", lambda self, context: 0)
    plan = Faults()
    hooked = plan.hook(botocore_stubber)
    events = aws.session().events
    events.unregister("before-send", botocore_stubber)
    events.register("before-send", hooked)
    aws.client.cache_clear()
    monkeypatch.setattr(aws, "_generation", aws._generation + 1)  # each thread's resource anew
    try:
        yield plan
    finally:
        events.unregister("before-send", hooked)
        events.register("before-send", botocore_stubber)
        aws.client.cache_clear()
