"""Fan-out: WebSocket posts against an emulated management API answering in 20 ms per post.

The endpoint is served over HTTP/1.1 (keep-alive) by a separate process (asyncio: its own CPU per
request stays small next to the client's, which is what is measured), so the figures include
everything the sender does per post: serialization, signing, the pooled HTTP connection, the
thread pool. Each case prints the contract's line (Additions: Fan-out):
`fanout <connections> connections over <invocations> invocations: <ratio>x ideal, <cpu> ms CPU per post`,
the ideal being connections x post latency / workers in use, and the CPU the posting process's
(every thread's) CPU time over the posts.

Cases: today's sender (botocore's `apigatewaymanagementapi` client) on 1,000 connections; then a
whole `emit` on moto (seq counter, stored event, the room's members by Query, the fan-out).
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import time
from typing import Any

CONNECTIONS = 1000
POST_SECONDS = 0.020
BODY = '{"type":"system.alert","room":"admin","seq":1,"ts":"2026-11-28T02:00:00.000Z","data":{}}'


class _Api(asyncio.Protocol):
    """HTTP/1.1 requests on one connection, each answered 200 after POST_SECONDS (in order)."""

    def connection_made(self, transport: Any) -> None:
        self.transport, self.buffer = transport, b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while True:
            end = self.buffer.find(b"\r\n\r\n")
            if end < 0:
                return
            length = 0
            for header in self.buffer[:end].split(b"\r\n")[1:]:
                name, _, value = header.partition(b":")
                if name.strip().lower() == b"content-length":
                    length = int(value)
            if len(self.buffer) < end + 4 + length:
                return
            self.buffer = self.buffer[end + 4 + length :]
            asyncio.get_running_loop().call_later(POST_SECONDS, self._answer)

    def _answer(self) -> None:
        if not self.transport.is_closing():
            self.transport.write(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n")


def _serve(port: int) -> None:
    async def run() -> None:
        server = await asyncio.get_running_loop().create_server(_Api, "127.0.0.1", port, backlog=1024)
        await server.serve_forever()

    asyncio.run(run())


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


def line(connections: int, invocations: int, seconds: float, workers: int, cpu_seconds: float) -> str:
    """The contract's line: wall time against connections x POST_SECONDS / workers in use."""
    ideal = connections * POST_SECONDS / workers
    return (
        f"fanout {connections} connections over {invocations} invocations: {seconds / ideal:.2f}x ideal, "
        f"{cpu_seconds * 1000 / connections:.3f} ms CPU per post"
    )


def measure(out: Any, ids: list[str]) -> tuple[float, float]:
    """(wall seconds, process CPU seconds) of one broadcast, after one that warms the connections."""
    out.broadcast(ids[: out.workers], BODY)
    cpu, started = time.process_time(), time.perf_counter()
    result = out.broadcast(ids, BODY)
    wall, cpu = time.perf_counter() - started, time.process_time() - cpu
    assert result.sent == len(ids), result
    return wall, cpu


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
        ids = [f"conn-{i:05d}" for i in range(CONNECTIONS)]
        botocore_client = aws.client("apigatewaymanagementapi", endpoint_url=endpoint, max_pool_connections=32)
        before = sender.Sender(botocore_client)
        wall, cpu = measure(before, ids)
        print(f"botocore's client (before): {line(CONNECTIONS, 1, wall, before.workers, cpu)}, {wall:.2f} s")
        after = sender.sender()  # the management API's light client
        wall, cpu = measure(after, ids)
        print(f"{line(CONNECTIONS, 1, wall, after.workers, cpu)} ({wall:.2f} s)")
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
