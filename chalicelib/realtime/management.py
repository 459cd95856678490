"""API Gateway's management API (`PostToConnection`, `DeleteConnection`) without botocore's
per-request machinery: a kept-alive HTTP/1.1 connection per thread and a small SigV4 signer.

A fan-out is thousands of identical small requests, and botocore spent ~0.9 ms of CPU on each
(events, serialization, user agent, signing, parsing: `make bench`), all under one GIL. Here a
post costs a signature (the signing key is derived once per day and secret) and one HTTP round
trip on a kept-alive connection. The signature is botocore's SigV4 for the same request (a test
compares them); credentials are read from the boto3 session on every request, so Lambda's
rotating session credentials are picked up as botocore would.

The answers keep botocore's shape: an error is a `botocore.exceptions.ClientError` with the
service's error code (`GoneException` for 410, `PayloadTooLargeException` for 413), so the sender
treats both clients alike. Throttling (429) and server errors (5xx), and a connection that fails,
are retried with exponential backoff and jitter, ATTEMPTS in all, as botocore's standard mode did.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import json
import random
import socket
import threading
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import quote, urlsplit

from chalicelib import aws, config

SERVICE = "execute-api"
ATTEMPTS = 4  # in all, as botocore's standard retry mode
BACKOFF_BASE = 0.05  # seconds; full jitter up to base x 2^attempt, at most BACKOFF_CAP
BACKOFF_CAP = 2.0
RETRIED = frozenset({429, 500, 502, 503, 504})
TIMEOUT = 30.0  # seconds, to connect and for each read
MAX_LINE = 65536  # bytes, of a status or header line
CLOSE_CODE_HEADER = "X-Inkwell-Close-Code"  # a DeleteConnection's close code, for the local gateway (AWS has none)

Credentials = Callable[[], tuple[str, str, str | None]]  # (access key, secret key, session token)


def sleep(seconds: float) -> None:
    """The pause between retries; tests replace it."""
    time.sleep(seconds)


def session_credentials() -> tuple[str, str, str | None]:
    """The boto3 session's credentials now (refreshed by botocore when they are about to expire);
    the emulator's fake ones against the local stack, as `aws.client` uses."""
    if config.get().aws_endpoint:
        return "testing", "testing", None
    found = aws.session().get_credentials()
    if found is None:
        raise config.ConfigError("no AWS credentials to sign management API requests with")
    frozen = found.get_frozen_credentials()
    return frozen.access_key, frozen.secret_key, frozen.token


class Signer:
    """AWS Signature Version 4 of a request without query string, signing `host`, `x-amz-date`
    and (with temporary credentials) `x-amz-security-token`, as botocore's SigV4Auth does."""

    def __init__(self, region: str, credentials: Credentials, service: str = SERVICE) -> None:
        self._region, self._credentials, self._service = region, credentials, service
        self._keys: dict[tuple[str, str], bytes] = {}
        self._lock = threading.Lock()

    def _key(self, secret: str, day: str) -> bytes:
        key = self._keys.get((secret, day))
        if key is None:
            key = ("AWS4" + secret).encode()
            for part in (day, self._region, self._service, "aws4_request"):
                key = hmac.new(key, part.encode(), hashlib.sha256).digest()
            with self._lock:
                self._keys = {(secret, day): key}  # one key at a time: a new day or secret replaces it
        return key

    def headers(self, method: str, url: str, body: bytes, now: float | None = None) -> dict[str, str]:
        """The headers to send besides `Host` (which must be `host_of(url)`): `X-Amz-Date`, the
        token, and `Authorization`. `url`'s path must be percent-encoded as sent."""
        return self.sign(method, host_of(url), urlsplit(url).path or "/", body, now)

    def sign(self, method: str, host: str, path: str, body: bytes, now: float | None = None) -> dict[str, str]:
        access, secret, token = self._credentials()
        amz_date = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(time.time() if now is None else now))
        signed = {"host": host, "x-amz-date": amz_date, **({"x-amz-security-token": token} if token else {})}
        names = ";".join(signed)  # already in order
        canonical = "\n".join(
            [
                method,
                quote(path, safe="/~"),
                "",
                *(f"{name}:{value}" for name, value in signed.items()),
                "",
                names,
                hashlib.sha256(body).hexdigest(),
            ]
        )
        scope = f"{amz_date[:8]}/{self._region}/{self._service}/aws4_request"
        to_sign = f"AWS4-HMAC-SHA256\n{amz_date}\n{scope}\n{hashlib.sha256(canonical.encode()).hexdigest()}"
        signature = hmac.new(self._key(secret, amz_date[:8]), to_sign.encode(), hashlib.sha256).hexdigest()
        headers = {"X-Amz-Date": amz_date}
        if token:
            headers["X-Amz-Security-Token"] = token
        headers["Authorization"] = (
            f"AWS4-HMAC-SHA256 Credential={access}/{scope}, SignedHeaders={names}, Signature={signature}"
        )
        return headers


def host_of(url: str) -> str:
    """The `Host` header (and signed host) of `url`: its port only when not the scheme's default."""
    parts = urlsplit(url)
    default_port = {"http": 80, "https": 443}.get(parts.scheme)
    return f"{parts.hostname}:{parts.port}" if parts.port and parts.port != default_port else parts.hostname or ""


class _Connection:
    """One kept-alive HTTP/1.1 connection: a request goes out in one send, headers and body
    together, and the answer's status line and the few headers needed are read by hand
    (http.client sends a body apart and parses headers with the email package: most of its CPU
    per request). Any failure closes it; the next request opens a new one."""

    def __init__(self, host: str, port: int | None, context: Any) -> None:
        self._address = (host, port or (443 if context is not None else 80))
        self._context = context
        self._sock: Any = None
        self._file: Any = None

    def close(self) -> None:
        if self._sock is not None:
            self._file.close()
            self._sock.close()
        self._sock = self._file = None

    def exchange(self, request: bytes) -> tuple[int, str | None, bytes]:
        """Send a whole request; (status, x-amzn-ErrorType, body) of its answer."""
        if self._sock is None:
            sock = socket.create_connection(self._address, timeout=TIMEOUT)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            if self._context is not None:
                sock = self._context.wrap_socket(sock, server_hostname=self._address[0])
            self._sock, self._file = sock, sock.makefile("rb")
        self._sock.sendall(request)
        version, status, _ = (self._file.readline(MAX_LINE) + b"  ").split(b" ", 2)
        if not version.startswith(b"HTTP/"):
            raise ConnectionError("no HTTP answer (the connection was closed)")
        length, chunked, close, error_type = None, False, version == b"HTTP/1.0", None
        while (line := self._file.readline(MAX_LINE)) not in (b"\r\n", b"\n"):
            if not line:
                raise ConnectionError("the connection was closed within the answer's headers")
            name, _, value = line.partition(b":")
            name, value = name.strip().lower(), value.strip()
            if name == b"content-length":
                length = int(value)
            elif name == b"transfer-encoding":
                chunked = b"chunked" in value.lower()
            elif name == b"connection":
                close = value.lower() == b"close"
            elif name == b"x-amzn-errortype":
                error_type = value.decode("latin-1")
        if chunked:
            body = self._chunked()
        elif length is not None:
            body = self._read(length)
        elif int(status) in (204, 304):
            body = b""
        else:  # no length: the body runs to the end of the connection
            body, close = self._file.read(), True
        if close:
            self.close()
        return int(status), error_type, body

    def _read(self, size: int) -> bytes:
        data = self._file.read(size)
        if len(data) < size:
            raise ConnectionError("the connection was closed within the answer's body")
        return bytes(data)

    def _chunked(self) -> bytes:
        body = b""
        while size := int(self._file.readline(MAX_LINE).split(b";")[0], 16):
            body += self._read(size)
            self._file.readline(MAX_LINE)
        while self._file.readline(MAX_LINE) not in (b"\r\n", b"\n", b""):  # trailers
            pass
        return body


class ManagementApi:
    """`post_to_connection(ConnectionId=, Data=)` and `delete_connection(ConnectionId=)` on one
    endpoint (`https://{api}.execute-api.{region}.amazonaws.com/{stage}`), thread-safe: each
    thread keeps its own HTTP/1.1 connection alive (the fan-out's threads live as long as the
    container)."""

    def __init__(self, endpoint: str, signer: Signer) -> None:
        self._endpoint = endpoint.rstrip("/")
        parts = urlsplit(self._endpoint)
        self._https, self._hostname, self._port = parts.scheme == "https", parts.hostname or "", parts.port
        self._host, self._path = host_of(self._endpoint), parts.path
        self._signer = signer
        self._local = threading.local()
        self._opened: list[_Connection] = []
        self._lock = threading.Lock()

    def close(self) -> None:
        """Close every thread's connection (they reopen on the next request)."""
        with self._lock:
            for connection in self._opened:
                connection.close()

    def post_to_connection(self, *, ConnectionId: str, Data: bytes | str) -> None:  # noqa: N803 (boto3's names)
        body = Data.encode() if isinstance(Data, str) else Data
        self._call("POST", "PostToConnection", ConnectionId, body)

    def delete_connection(self, *, ConnectionId: str, CloseCode: int | None = None) -> None:  # noqa: N803
        # AWS's DeleteConnection has no close code; the local gateway honours this header
        extra = {CLOSE_CODE_HEADER: str(CloseCode)} if CloseCode is not None else {}
        self._call("DELETE", "DeleteConnection", ConnectionId, b"", extra)

    def _connection(self) -> _Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            context = None
            if self._https:
                import ssl

                from botocore.httpsession import get_cert_path  # botocore's CA bundle, as its client used

                context = ssl.create_default_context(cafile=get_cert_path(True))
            connection = self._local.connection = _Connection(self._hostname, self._port, context)
            with self._lock:
                self._opened.append(connection)
        return connection

    def _call(
        self, method: str, operation: str, connection_id: str, body: bytes, extra: dict[str, str] | None = None
    ) -> None:
        path = f"{self._path}/@connections/{quote(connection_id, safe='~')}"
        for attempt in range(ATTEMPTS):
            last = attempt == ATTEMPTS - 1
            headers = self._signer.sign(method, self._host, path, body)
            head = f"{method} {path} HTTP/1.1\r\nHost: {self._host}\r\nContent-Length: {len(body)}\r\n"
            head += "".join(f"{name}: {value}\r\n" for name, value in {**headers, **(extra or {})}.items())
            connection = self._connection()
            try:
                status, error_type, answer = connection.exchange(head.encode() + b"\r\n" + body)
            except (OSError, ValueError) as exc:  # refused, reset, closed, timed out, not HTTP
                connection.close()
                if last:
                    raise _client_error(operation, 0, "RequestFailed", repr(exc)) from exc
            else:
                if status < 300:
                    return
                if status not in RETRIED or last:
                    raise _error_of(operation, status, error_type, answer)
            sleep(random.uniform(0, min(BACKOFF_CAP, BACKOFF_BASE * 2**attempt)))


def _error_of(operation: str, status: int, error_type: str | None, body: bytes) -> Exception:
    """botocore's ClientError for an error answer: the code from `x-amzn-ErrorType` or the body."""
    message, code = "", (error_type or "").split(":", 1)[0]
    try:
        answer = json.loads(body or b"{}")
    except ValueError:
        answer = {}
    if isinstance(answer, dict):
        code = code or str(answer.get("__type") or "").rsplit("#", 1)[-1]
        message = str(answer.get("message") or answer.get("Message") or "")
    return _client_error(operation, status, code or f"HTTP{status}", message)


def _client_error(operation: str, status: int, code: str, message: str) -> Exception:
    from botocore.exceptions import ClientError

    return ClientError(
        {"Error": {"Code": code, "Message": message}, "ResponseMetadata": {"HTTPStatusCode": status}},  # type: ignore[typeddict-item]
        operation,
    )


@functools.cache
def client(endpoint: str) -> ManagementApi:
    """One client per endpoint and container (its HTTP connections are kept between invocations)."""
    return ManagementApi(endpoint, Signer(config.get().region, session_credentials))
