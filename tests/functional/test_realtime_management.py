"""The light management API client (chalicelib.realtime.management): botocore's own SigV4 for the
same request, credentials that rotate, and API Gateway's answers (410, 413, throttling retried)
from a scripted HTTP endpoint. The local stack's management API: tests/e2e/test_local_stack.py."""

from __future__ import annotations

import datetime
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials, RefreshableCredentials

from chalicelib.realtime import management, sender

NOW = datetime.datetime(2026, 11, 29, 10, 30, 5, tzinfo=datetime.UTC)


def botocore_headers(url: str, body: bytes, creds: tuple[str, str, str | None], method: str = "POST") -> Any:
    request = AWSRequest(method=method, url=url, data=body)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("botocore.auth.get_current_datetime", lambda: NOW.replace(tzinfo=None))
        SigV4Auth(Credentials(*creds), "execute-api", "eu-west-1").add_auth(request)
    return request.headers


@pytest.mark.parametrize(
    ("url", "creds"),
    [
        (
            "https://abc123.execute-api.eu-west-1.amazonaws.com/api/@connections/L0SM9cOFvHcCIhw%3D",
            ("AKID", "secret", None),
        ),
        ("https://abc123.execute-api.eu-west-1.amazonaws.com/api/@connections/x-_.~y", ("ASIA", "s3cr/t+", "tok/en==")),
        ("http://127.0.0.1:8001/@connections/conn-1", ("testing", "testing", None)),
        ("https://example.com:8443/prod/@connections/a%2Fb", ("AKID", "secret", "token")),
    ],
)
@pytest.mark.parametrize("method", ["POST", "DELETE"])
def test_the_signature_is_botocores_for_the_same_request(url: str, creds: Any, method: str) -> None:
    body = b'{"type":"system.alert","seq":1}' if method == "POST" else b""
    expected = botocore_headers(url, body, creds, method)
    signer = management.Signer("eu-west-1", lambda: creds)

    ours = signer.headers(method, url, body, now=NOW.timestamp())

    assert ours["Authorization"] == expected["Authorization"]
    assert ours["X-Amz-Date"] == expected["X-Amz-Date"]
    assert ours.get("X-Amz-Security-Token") == expected.get("X-Amz-Security-Token")


def test_rotating_session_credentials_are_picked_up(monkeypatch: pytest.MonkeyPatch) -> None:
    """Lambda's (or an assumed role's) temporary credentials: botocore refreshes them when they
    are about to expire, and every request is signed with the current ones."""
    issued = iter(range(1, 10))

    def refresh() -> dict[str, str]:
        n = next(issued)
        # Within botocore's mandatory refresh window (10 minutes): the next read refreshes.
        expiry = datetime.datetime.now(datetime.UTC) + datetime.timedelta(minutes=5)
        return {
            "access_key": f"ASIA{n}",
            "secret_key": f"secret{n}",
            "token": f"token{n}",
            "expiry_time": expiry.isoformat(),
        }

    rotating = RefreshableCredentials.create_from_metadata(refresh(), refresh, "sts-assume-role")

    monkeypatch.delenv("INKWELL_AWS_ENDPOINT", raising=False)
    monkeypatch.setattr(management.aws.session(), "get_credentials", lambda: rotating)
    signer = management.Signer("eu-west-1", management.session_credentials)
    url = "https://abc.execute-api.eu-west-1.amazonaws.com/api/@connections/c1"

    first, second = (signer.headers("POST", url, b"x", now=NOW.timestamp()) for _ in range(2))

    assert first["X-Amz-Security-Token"] != second["X-Amz-Security-Token"]
    for ours in (first, second):
        n = ours["X-Amz-Security-Token"].removeprefix("token")
        expected = botocore_headers(url, b"x", (f"ASIA{n}", f"secret{n}", f"token{n}"))
        assert ours["Authorization"] == expected["Authorization"]


# --- API Gateway's answers, scripted --------------------------------------------------------------


class Scripted(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.answers: list[tuple[int, str | None]] = []  # (status, x-amzn-ErrorType); then 200s
        self.requests: list[tuple[str, str, bytes, dict[str, str]]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/api"


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Scripted

    def _answer(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.server.requests.append((self.command, self.path, body, dict(self.headers)))
        status, kind = self.server.answers.pop(0) if self.server.answers else (200, None)
        if status == 0:  # hang up without answering (a kept-alive connection the other end closed)
            self.close_connection = True
            return
        payload = b'{"message": "scripted"}' if status >= 300 else b""
        self.send_response(status)
        if kind:
            self.send_header("x-amzn-ErrorType", kind)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    do_POST = do_DELETE = _answer

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


CLIENTS: list[management.ManagementApi] = []


@pytest.fixture
def api(monkeypatch: pytest.MonkeyPatch) -> Iterator[Scripted]:
    server = Scripted()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    monkeypatch.setattr(management, "sleep", lambda seconds: None)
    yield server
    while CLIENTS:
        CLIENTS.pop().close()
    server.shutdown()
    server.server_close()


def client(api: Scripted) -> management.ManagementApi:
    CLIENTS.append(management.ManagementApi(api.url, management.Signer("us-east-1", lambda: ("AKID", "secret", "tok"))))
    return CLIENTS[-1]


def test_a_post_is_signed_and_sent_to_the_connection(api: Scripted) -> None:
    client(api).post_to_connection(ConnectionId="L0SM9cOFvHcCIhw=", Data='{"a":1}')

    [(method, path, body, headers)] = api.requests
    assert (method, path, body) == ("POST", "/api/@connections/L0SM9cOFvHcCIhw%3D", b'{"a":1}')
    assert headers["X-Amz-Security-Token"] == "tok"
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKID/")


def test_throttling_and_server_errors_are_retried_with_backoff(api: Scripted, monkeypatch: pytest.MonkeyPatch) -> None:
    pauses: list[float] = []
    monkeypatch.setattr(management, "sleep", pauses.append)
    api.answers = [(429, "LimitExceededException"), (500, None), (503, None)]

    client(api).post_to_connection(ConnectionId="c1", Data=b"x")

    assert len(api.requests) == 4
    assert len(pauses) == 3 and all(0 <= p <= management.BACKOFF_CAP for p in pauses)


def test_throttling_that_lasts_fails_the_post_after_every_attempt(api: Scripted) -> None:
    api.answers = [(429, "LimitExceededException")] * 10

    from botocore.exceptions import ClientError

    with pytest.raises(ClientError) as raised:
        client(api).post_to_connection(ConnectionId="c1", Data=b"x")

    assert raised.value.response["Error"]["Code"] == "LimitExceededException"
    assert len(api.requests) == management.ATTEMPTS


@pytest.mark.parametrize(
    ("status", "kind", "code"),
    [
        (410, "GoneException", "GoneException"),
        (413, "PayloadTooLargeException:http://internal.amazon.com/coral/", "PayloadTooLargeException"),
        (403, None, "HTTP403"),
    ],
)
def test_other_refusals_are_not_retried_and_keep_botocores_error_shape(
    api: Scripted, status: int, kind: str | None, code: str
) -> None:
    from botocore.exceptions import ClientError

    api.answers = [(status, kind)]

    with pytest.raises(ClientError) as raised:
        client(api).post_to_connection(ConnectionId="c1", Data=b"x")

    assert raised.value.response["Error"]["Code"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert sender.is_gone(raised.value) is (status == 410)
    assert len(api.requests) == 1


def test_the_sender_forgets_gone_connections_and_counts_a_too_large_post_as_failed(api: Scripted) -> None:
    api.answers = [(410, "GoneException")]  # the first post: c0 (a single worker keeps the order)
    out = sender.Sender(client(api), workers=1)

    result = out.broadcast(["c0", "c1"], "frame")
    api.answers = [(413, "PayloadTooLargeException")]
    too_large = out.broadcast(["c2"], "frame")

    assert (result.sent, result.gone, result.failed) == (1, ["c0"], [])
    assert (too_large.sent, too_large.failed) == (0, ["c2"])


def test_a_connection_closed_by_the_other_end_is_reopened_and_the_post_retried(api: Scripted) -> None:
    ours = client(api)
    ours.post_to_connection(ConnectionId="c1", Data=b"1")
    api.answers = [(0, None)]

    ours.post_to_connection(ConnectionId="c1", Data=b"2")

    assert [body for _, _, body, _ in api.requests] == [b"1", b"2", b"2"]


def test_delete_connection_sends_a_delete(api: Scripted) -> None:
    client(api).delete_connection(ConnectionId="c9")

    assert [(m, p) for m, p, _, _ in api.requests] == [("DELETE", "/api/@connections/c9")]


def test_a_refused_connection_is_retried_then_reported(monkeypatch: pytest.MonkeyPatch) -> None:
    from botocore.exceptions import ClientError

    monkeypatch.setattr(management, "sleep", lambda seconds: None)
    dead = management.ManagementApi("http://127.0.0.1:9", management.Signer("us-east-1", lambda: ("a", "b", None)))

    with pytest.raises(ClientError) as raised:
        dead.post_to_connection(ConnectionId="c1", Data=b"x")
    dead.close()

    assert raised.value.response["Error"]["Code"] == "RequestFailed"


@pytest.mark.parametrize(
    ("answer", "code"),
    [
        (
            b'HTTP/1.1 410 Gone\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n{"mes\r\n13;x=1\r\nsage": "gone!"}    \r\n0\r\n\r\n',
            "gone!",
        ),
        (b'HTTP/1.1 410 Gone\r\nConnection: close\r\n\r\n{"message": "gone!"}', "gone!"),
        (b'HTTP/1.0 410 Gone\r\nContent-Length: 20\r\n\r\n{"message": "gone!"}', "gone!"),
    ],
)
def test_answers_chunked_or_without_a_length_are_read_whole(answer: bytes, code: str) -> None:
    """API Gateway sends lengths; an answer chunked, or ending with its connection, is read too."""
    import socket

    from botocore.exceptions import ClientError

    listener = socket.create_server(("127.0.0.1", 0))
    requests: list[bytes] = []

    def serve() -> None:
        conn, _ = listener.accept()
        with conn:
            requests.append(conn.recv(65536))
            conn.sendall(answer)
            if b"Connection: close" in answer or b"HTTP/1.0" in answer:
                conn.shutdown(socket.SHUT_WR)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    ours = management.ManagementApi(
        f"http://127.0.0.1:{listener.getsockname()[1]}", management.Signer("us-east-1", lambda: ("a", "b", None))
    )
    try:
        with pytest.raises(ClientError) as raised:
            ours.post_to_connection(ConnectionId="c1", Data=b"hello")
    finally:
        ours.close()
        thread.join(5)
        listener.close()
    assert raised.value.response["Error"]["Message"] == code
    assert raised.value.response["ResponseMetadata"]["HTTPStatusCode"] == 410
    head, _, body = requests[0].partition(b"\r\n\r\n")
    assert head.startswith(b"POST /@connections/c1 HTTP/1.1\r\n") and body == b"hello"  # one send, whole
