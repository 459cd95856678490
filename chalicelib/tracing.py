"""X-Ray tracing of what a handler calls: every AWS call (DynamoDB, SQS, SSM, the WebSocket
management API) and the article generator's HTTP call become subsegments of the invocation's
trace, which Lambda opens when the function has active tracing.

`install()` is called by app.py (section 1), never by an import: it does nothing unless the
process runs on Lambda with tracing on (Lambda then sets `AWS_XRAY_DAEMON_ADDRESS`, and
`_X_AMZN_TRACE_ID` per invocation); otherwise, as locally and in tests, aws-xray-sdk is not even
imported. When on, it patches botocore (every client of `chalicelib.aws`) and `http.client`
(which urllib, the webhook's HTTP client, uses). The WebSocket management API's light client
(realtime/management.py) speaks HTTP on its own socket: its calls are recorded by `subsegment`,
one per call or per broadcast (with how many posts it made), not one per post.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping
from typing import Any

ENVIRONMENT = ("AWS_XRAY_DAEMON_ADDRESS", "_X_AMZN_TRACE_ID")
PATCHED = ("botocore", "httplib")
_installed = False


def enabled(environ: Mapping[str, str] = os.environ) -> bool:
    """True on a Lambda function with active tracing."""
    return any(environ.get(name) for name in ENVIRONMENT)


def install(environ: Mapping[str, str] = os.environ, recorder: Any = None) -> bool:
    """Patch the AWS and HTTP clients for X-Ray when tracing is on; True when they are patched."""
    global _installed
    if _installed or not enabled(environ):
        return _installed
    from aws_xray_sdk.core import patch, xray_recorder

    # outside an invocation (a client made at cold start) there is no segment: nothing to record
    (recorder or xray_recorder).configure(service="inkwell", context_missing="IGNORE_ERROR")
    patch(PATCHED)
    _installed = True
    return True


@contextlib.contextmanager
def subsegment(name: str, operation: str) -> Iterator[dict[str, Any]]:
    """A subsegment of the invocation's trace (namespace `aws`, `aws.operation`) around the block,
    when tracing is installed; the dict the block fills goes in as the subsegment's `aws` fields
    (counts). Nothing otherwise, and nothing outside an invocation's segment."""
    fields: dict[str, Any] = {}
    if not _installed:
        yield fields
        return
    from aws_xray_sdk.core import xray_recorder

    with xray_recorder.in_subsegment(name, namespace="aws") as sub:
        try:
            yield fields
        finally:
            if sub is not None:
                sub.set_aws({"operation": operation, **fields})
