"""Fan-out: WebSocket posts against an emulated management API answering in 20 ms per post.

The endpoint is served over HTTP/1.1 (keep-alive) by a separate process (asyncio: its own CPU per
request stays small next to the client's, which is what is measured), so the figures include
everything the sender does per post: serialization, signing, the pooled HTTP connection, the
thread pool. Each case prints the contract's line (Additions: Fan-out):
`fanout <connections> connections over <invocations> invocations: <ratio>x ideal, <cpu> ms CPU per post`,
the ideal being connections x post latency / workers in use, and the CPU the posting process's
(every thread's) CPU time over the posts.

Cases: 1,000 connections in one invocation, with botocore's `apigatewaymanagementapi` client (the
sender before issue 19) and with the light client (`chalicelib.realtime.management`); a whole
`emit` to 1,000 on moto (seq counter, stored event, the room's members by Query, the fan-out);
and a room of 10,000, emitted on moto above the fan-out threshold: its shard messages, taken from
the FIFO queue, are handed to parallel invocations (a process each, as Lambda gives each its own
container), each running app.py's fan-out handler on its group's shards in order.
"""

from __future__ import annotations

import asyncio
import json
import multiprocessing
import os
import socket
import time
from typing import Any

CONNECTIONS = 1000
ROOM_OF = 10_000  # the sharded case
# Its invocations: each group of connections is one invocation at a time. Four, the fewest the
# target names: they share this machine's cores, where on Lambda each has its own.
GROUPS = 4
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


def ratio(connections: int, seconds: float, workers: int) -> float:
    """Wall time against the ideal: connections x POST_SECONDS / workers in use."""
    return seconds / (connections * POST_SECONDS / workers)


def line(connections: int, invocations: int, seconds: float, workers: int, cpu_seconds: float) -> str:
    """The contract's line."""
    return (
        f"fanout {connections} connections over {invocations} invocations: "
        f"{ratio(connections, seconds, workers):.2f}x ideal, {cpu_seconds * 1000 / connections:.3f} ms CPU per post"
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
        after = sender.sender()  # the management API's light client
        now, now_cpu = measure(after, ids)
        print(line(CONNECTIONS, 1, now, after.workers, now_cpu))
        print(
            f"  {now:.2f} s with {after.workers} workers (target <= 1.5x ideal); before, with botocore's client: "
            f"{ratio(CONNECTIONS, wall, before.workers):.2f}x ideal ({wall:.2f} s), "
            f"{cpu * 1000 / CONNECTIONS:.3f} ms CPU per post"
        )
        _whole_emit(ids)
        _sharded(endpoint)
    finally:
        server.terminate()
        server.join(5)


def _whole_emit(ids: list[str]) -> None:
    from moto import mock_aws

    from chalicelib import aws, config
    from chalicelib.realtime import emitters, live
    from infra import provision

    with mock_aws():
        config.reset()
        aws.reset()
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        members = live.connections()
        for cid in ids:
            members.open(cid, {"id": cid, "email": f"{cid}@example.com", "role": "admin", "jti": "j"}, ["admin"], None)
        started = time.perf_counter()
        emitters.emit_system_alert("info", "bench")
        whole = time.perf_counter() - started
    print(f"  emit_system_alert to a room of {len(ids)} (moto in-process for DynamoDB): {whole:.2f} s")


def _sharded(endpoint: str) -> None:
    """A room of ROOM_OF: the emit (on moto) queues its shards; one process per FIFO group then
    runs `fanout.handle` on that group's shards, in order, all starting together."""
    from moto import mock_aws

    from chalicelib import aws, config
    from chalicelib.realtime import emitters, fanout, live, sender
    from infra import provision

    ids = [f"conn-{i:05d}" for i in range(ROOM_OF)]
    os.environ[config.FANOUT_GROUPS] = str(GROUPS)
    with mock_aws():
        config.reset()
        aws.reset()
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        with aws.table("ws_members").batch_writer() as batch:  # the members, without 10,000 $connects
            for cid in ids:
                batch.put_item(
                    Item={"room": "admin", "connection_id": cid, "endpoint": None, "ttl": int(time.time()) + 3600}
                )
        live.event_log().open_room("admin", ROOM_OF)
        started = time.perf_counter()
        emitters.emit_system_alert("info", "to everyone")
        emitted = time.perf_counter() - started
        by_group: dict[str, list[str]] = {}
        sqs, url = aws.client("sqs"), aws.queue_url(fanout.QUEUE)
        while True:
            got = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, MessageSystemAttributeNames=["All"])
            if not got.get("Messages"):
                break
            for message in got["Messages"]:
                by_group.setdefault(message["Attributes"]["MessageGroupId"], []).append(message["Body"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])
    context = multiprocessing.get_context("spawn")
    go, results = context.Event(), context.Queue()
    ready = context.Semaphore(0)
    invocations = [
        context.Process(target=_invocation, args=(endpoint, bodies, ready, go, results), daemon=True)
        for bodies in by_group.values()
    ]
    for process in invocations:
        process.start()
    for _ in invocations:
        ready.acquire()
    started = time.perf_counter()
    go.set()
    outcomes = [results.get(timeout=120) for _ in invocations]
    wall = time.perf_counter() - started
    for process in invocations:
        process.join(5)
    posts, cpu = sum(n for n, _ in outcomes), sum(c for _, c in outcomes)
    assert posts == ROOM_OF, posts
    workers = len(invocations) * sender.FANOUT_WORKERS
    print(line(ROOM_OF, len(invocations), wall, workers, cpu))
    print(
        f"  {wall:.2f} s with {len(invocations)} x {sender.FANOUT_WORKERS} workers (target <= 2x ideal); "
        f"the emit that queued {sum(len(b) for b in by_group.values())} shards: {emitted:.2f} s on moto"
    )


def _invocation(endpoint: str, bodies: list[str], ready: Any, go: Any, results: Any) -> None:
    """One fan-out invocation on a warm container: app.py's handler on its group's shards (each
    shard's claim and done mark on moto in-process, as DynamoDB answers them)."""
    _environment(endpoint)
    from moto import mock_aws

    from chalicelib import aws, config
    from chalicelib.realtime import fanout, sender
    from infra import provision

    with mock_aws():
        config.reset()
        aws.reset()
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        warm = sender.sender()
        warm.broadcast([f"warm-{i}" for i in range(warm.workers)], BODY)  # a warm container's connections
        records = [
            {"messageId": str(i), "receiptHandle": "", "body": body, "attributes": {}} for i, body in enumerate(bodies)
        ]
        ready.release()
        go.wait()
        cpu = time.process_time()
        posts = 0
        for record in records:
            assert fanout.handle({"Records": [record]}) == {"batchItemFailures": []}
            posts += len(json.loads(record["body"])["connections"])
        results.put((posts, time.process_time() - cpu))


if __name__ == "__main__":
    main()
