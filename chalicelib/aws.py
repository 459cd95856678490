"""Lazily built, cached boto3 clients and tables.

Nothing here runs at import: boto3 itself is imported on first use, which keeps cold starts of
handlers that never touch AWS cheap. Locally, `INKWELL_AWS_ENDPOINT` points every client at the
embedded moto server; on AWS it is unset and boto3 uses the real endpoints.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from typing import Any

from chalicelib import config

_lock = threading.Lock()
_local = threading.local()  # this thread's DynamoDB resource (boto3 resources are not thread-safe)
_generation = 0  # bumped by reset(): every thread's resource is then built again


@functools.cache
def session() -> Any:
    """The one boto3 session every client and resource is built from. Its botocore events are the
    hook for whoever wants to see every call: `session().events.register(...)` before the first
    client is built (the test suite records every AWS operation the code makes this way, see
    infra/iam.py). `reset()` starts a new session."""
    import boto3

    return boto3.session.Session()


def _session_kwargs() -> dict[str, Any]:
    settings = config.get()
    kwargs: dict[str, Any] = {"region_name": settings.region}
    if settings.aws_endpoint:
        kwargs["endpoint_url"] = settings.aws_endpoint
        # Never real credentials against the emulator.
        kwargs["aws_access_key_id"] = "testing"
        kwargs["aws_secret_access_key"] = "testing"
    return kwargs


@functools.cache
def client(service: str, endpoint_url: str | None = None, max_pool_connections: int = 10) -> Any:
    """A boto3 client (thread-safe), cached per service and endpoint. Clients used from a thread
    pool (the WebSocket fan-out) ask for as many pooled HTTP connections as the pool has threads."""
    kwargs = _session_kwargs()
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    with _lock:  # a boto3 session is not thread-safe while it creates clients
        return session().client(service, config=_retries(max_pool_connections), **kwargs)


def _retries(max_pool_connections: int = 10) -> Any:
    """How every client and resource retries: standard mode, 4 retries after the first try (a
    fault outlasting them reaches the code: `unavailable`), with bounded connect and read timeouts."""
    from botocore.config import Config

    return Config(
        retries={"max_attempts": 4, "mode": "standard"},
        connect_timeout=5,
        read_timeout=30,
        max_pool_connections=max_pool_connections,
    )


def _dynamodb() -> Any:
    """This thread's DynamoDB resource: the local stack and the dashboard run handlers on threads,
    and a boto3 resource must not be shared between them."""
    if getattr(_local, "generation", None) != _generation:
        with _lock:
            _local.resource = session().resource("dynamodb", config=_retries(), **_session_kwargs())
        _local.tables = {}
        _local.generation = _generation
    return _local.resource


def table(name: str) -> Any:
    """The DynamoDB Table resource for a catalogue table's logical name, built once per thread
    (boto3 builds a Table class anew each time: it was the largest CPU cost of a request)."""
    physical = config.get().resource_name(name)
    resource = _dynamodb()
    found = _local.tables.get(physical)
    if found is None:
        with _lock:  # building a Table class reads the session's shared model caches: not thread-safe
            found = _local.tables[physical] = resource.Table(physical)
    return found


def query_pages(table: Any, **kwargs: Any) -> Iterator[dict[str, Any]]:
    """Each page a Query answers (`Items`, `Count`...), following `LastEvaluatedKey` until the
    last; stop iterating to stop reading."""
    while True:
        result = table.query(**kwargs)
        yield result
        if not result.get("LastEvaluatedKey"):
            return
        kwargs["ExclusiveStartKey"] = result["LastEvaluatedKey"]


@functools.cache
def queue_url(name: str) -> str:
    """The URL of a catalogue queue (or `<name>-dlq`), looked up once per container."""
    return client("sqs").get_queue_url(QueueName=config.get().resource_name(name))["QueueUrl"]


# What a dependency answers while it is overloaded or failing: after the SDK's own retries, the
# request is worth trying again later (503 + Retry-After), not a fault of the request or the code.
THROTTLING_CODES = frozenset(
    {
        "Throttling",
        "ThrottlingException",
        "ThrottledException",
        "RequestThrottled",
        "RequestThrottledException",
        "TooManyRequestsException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "LimitExceededException",
        "TransactionInProgressException",
        "TransactionConflictException",
        "SlowDown",
        "RequestTimeout",
        "RequestTimeoutException",
        "ServiceUnavailable",
        "InternalServerError",
        "InternalFailure",
        "InternalError",
    }
)


def unavailable(exc: BaseException) -> bool:
    """Whether `exc` is AWS still refusing after the SDK's retries: throttling, a 5xx, a
    connection that failed or timed out. Anything else (a refused condition, a validation error,
    a bug) is not."""
    from botocore.exceptions import ClientError, ConnectionError, HTTPClientError

    if isinstance(exc, (ConnectionError, HTTPClientError)):
        return True
    if not isinstance(exc, ClientError):
        return False
    code = exc.response.get("Error", {}).get("Code", "")
    status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode") or 0
    return code in THROTTLING_CODES or int(status) >= 500


def reset() -> None:
    """Drop cached clients (tests switch endpoints and environments)."""
    global _generation
    session.cache_clear()
    client.cache_clear()
    queue_url.cache_clear()
    _generation += 1
