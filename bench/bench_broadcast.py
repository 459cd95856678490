"""Broadcast to 1,000 WebSocket connections against a management endpoint taking 20 ms per post.

The endpoint is a fake `apigatewaymanagementapi` served over HTTP/1.1 (keep-alive) by a separate
process, so the figure includes everything the real sender does per post: botocore's
serialization and signing, the pooled HTTP connection, the thread pool. Target: <= 1.5 s
(posting one after the other would take 20 s).

Two figures: the sender alone (`Sender.broadcast` over 1,000 ids), and a whole `emit` on moto
(seq counter, stored event, the room's members by Query, the fan-out).
"""

from __future__ import annotations

import multiprocessing
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

CONNECTIONS = 1000
POST_SECONDS = 0.020
TARGET_SECONDS = 1.5


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def do_POST(self) -> None:  # noqa: N802 (http.server's name)
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        time.sleep(POST_SECONDS)
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002
        pass


def _serve(port: int) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    server.serve_forever()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(port: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise RuntimeError("the fake management endpoint did not start")


def _environment(endpoint: str) -> None:
    os.environ.update(
        {
            "INKWELL_STAGE": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "INKWELL_WS_MANAGEMENT_ENDPOINT": endpoint,
        }
    )
    os.environ.pop("INKWELL_AWS_ENDPOINT", None)


def main() -> None:
    port = _free_port()
    server = multiprocessing.get_context("spawn").Process(target=_serve, args=(port,), daemon=True)
    server.start()
    try:
        _wait_for(port)
        endpoint = f"http://127.0.0.1:{port}"
        _environment(endpoint)
        from chalicelib import aws, config
        from chalicelib.realtime import sender

        config.reset()
        aws.reset()
        ids = [f"conn-{i:04d}" for i in range(CONNECTIONS)]
        body = '{"type":"system.alert","room":"admin","seq":1,"ts":"2026-11-28T02:00:00.000Z","data":{}}'
        out = sender.sender()
        out.broadcast(ids[: sender.FANOUT_WORKERS], body)  # warm the pool's connections
        started = time.perf_counter()
        result = out.broadcast(ids, body)
        alone = time.perf_counter() - started
        assert result.sent == CONNECTIONS, result
        print(
            f"broadcast to {CONNECTIONS} connections, {POST_SECONDS * 1000:.0f} ms per post, "
            f"{sender.FANOUT_WORKERS} workers: {alone:.2f} s (target <= {TARGET_SECONDS} s; sequential "
            f"{CONNECTIONS * POST_SECONDS:.0f} s) {'OK' if alone <= TARGET_SECONDS else 'OVER TARGET'}"
        )
        _whole_emit(ids)
    finally:
        server.terminate()
        server.join(5)


def _whole_emit(ids: list[str]) -> None:
    from moto import mock_aws

    from chalicelib import aws, config
    from chalicelib.realtime import emitters
    from infra import provision

    with mock_aws():
        config.reset()
        aws.reset()
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        members = emitters.connections()
        for cid in ids:
            members.open(cid, {"id": cid, "email": f"{cid}@example.com", "role": "admin", "jti": "j"}, ["admin"], None)
        started = time.perf_counter()
        emitters.emit_system_alert("info", "bench")
        whole = time.perf_counter() - started
    print(f"emit_system_alert to a room of {len(ids)} (moto in-process for DynamoDB): {whole:.2f} s")


if __name__ == "__main__":
    main()
