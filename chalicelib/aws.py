"""Lazily built, cached boto3 clients and tables.

Nothing here runs at import: boto3 itself is imported on first use, which keeps cold starts of
handlers that never touch AWS cheap. Locally, `INKWELL_AWS_ENDPOINT` points every client at the
embedded moto server; on AWS it is unset and boto3 uses the real endpoints.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from typing import Any

from chalicelib import config

_lock = threading.Lock()
_observers: list[Callable[[Any], None]] = []


def observe(fn: Callable[[Any], None]) -> None:
    """Call `fn(client)` on every botocore client built from now on (the test suite registers a
    `before-call` hook this way to record every AWS operation the code makes; see infra/iam.py)."""
    if fn not in _observers:
        _observers.append(fn)


def _built(botocore_client: Any) -> Any:
    for fn in _observers:
        fn(botocore_client)
    return botocore_client


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
def client(service: str, endpoint_url: str | None = None) -> Any:
    """A boto3 client (thread-safe), cached per service and endpoint."""
    import boto3
    from botocore.config import Config

    kwargs = _session_kwargs()
    if endpoint_url:
        kwargs["endpoint_url"] = endpoint_url
    retry = Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=30)
    with _lock:  # boto3's default session is not thread-safe while it creates clients
        return _built(boto3.client(service, config=retry, **kwargs))


@functools.cache
def _dynamodb() -> Any:
    import boto3

    with _lock:
        resource = boto3.resource("dynamodb", **_session_kwargs())
    _built(resource.meta.client)
    return resource


def table(name: str) -> Any:
    """The DynamoDB Table resource for a catalogue table's logical name."""
    return _dynamodb().Table(config.get().resource_name(name))


@functools.cache
def queue_url(name: str) -> str:
    """The URL of a catalogue queue (or `<name>-dlq`), looked up once per container."""
    return client("sqs").get_queue_url(QueueName=config.get().resource_name(name))["QueueUrl"]


def reset() -> None:
    """Drop cached clients (tests switch endpoints and environments)."""
    client.cache_clear()
    _dynamodb.cache_clear()
    queue_url.cache_clear()
