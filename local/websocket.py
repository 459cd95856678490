"""API Gateway's WebSocket API, emulated with the `websockets` library.

A handshake becomes a `$connect` event for the app's connect handler; a non-2xx answer refuses
the handshake with that status. Each message becomes a `$default` event and a close a
`$disconnect` event, shaped as API Gateway sends them. The management API
(`POST`/`GET`/`DELETE /@connections/{id}`, served by `local.control`) reaches connections through
`post`/`info`/`delete`, answering 410 for unknown or closed ones, so the app's own sender works
unchanged. API Gateway's limits hold: 128 KB messages, 32 KB frames (close 1009), a 10-minute
idle timeout and a 2-hour maximum age (close 1001), the last two configurable for tests.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import secrets
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from chalice.local import LambdaContext
from websockets.asyncio.server import ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from local import logs
from local.httpd import BACKLOG
from local.sources import Invoke

MAX_MESSAGE = 128 * 1024
MAX_FRAME = 32 * 1024
IDLE_TIMEOUT = 10 * 60.0
MAX_AGE = 2 * 3600.0
FUNCTION = "websocket"


class Gone(Exception):
    """The connection is unknown or closed (the management API's 410)."""


class TooLarge(Exception):
    """Over the 128 KB message limit (the management API's 413)."""


def new_connection_id() -> str:
    # API Gateway's ids look like "L0SM9cOFvHcCIhw=" (11 random bytes, base64); URL-safe here.
    return base64.urlsafe_b64encode(secrets.token_bytes(11)).decode()


@dataclass
class Connection:
    id: str
    source_ip: str
    user_agent: str | None
    connected_at: float = field(default_factory=time.time)  # epoch seconds
    opened: float = field(default_factory=time.monotonic)
    last_active: float = field(default_factory=time.monotonic)
    last_active_at: float = field(default_factory=time.time)
    ws: ServerConnection | None = None

    def touch(self) -> None:
        self.last_active, self.last_active_at = time.monotonic(), time.time()


def request_context(conn: Connection, route_key: str, event_type: str, *, domain: str, stage: str, api_id: str) -> dict:
    now = time.time()
    return {
        "routeKey": route_key,
        "eventType": event_type,
        "extendedRequestId": str(uuid.uuid4()),
        "requestTime": time.strftime("%d/%b/%Y:%H:%M:%S +0000", time.gmtime(now)),
        "messageDirection": "IN",
        "stage": stage,
        "connectedAt": int(conn.connected_at * 1000),
        "requestTimeEpoch": int(now * 1000),
        "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
        "requestId": str(uuid.uuid4()),
        "domainName": domain,
        "connectionId": conn.id,
        "apiId": api_id,
    }


class WebSocketGateway:
    def __init__(
        self,
        handlers: dict[str, Invoke],
        port: int,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_age: float = MAX_AGE,
        stage: str = "local",
        api_id: str = "local",
    ) -> None:
        self._handlers = handlers
        self.port = port
        self.idle_timeout, self.max_age = idle_timeout, max_age
        self._stage, self._api_id = stage, api_id
        self._conns: dict[str, Connection] = {}
        self._pending: dict[ServerConnection, Connection] = {}
        self._pool = ThreadPoolExecutor(max_workers=8, thread_name_prefix="ws-lambda")
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stopping: asyncio.Event | None = None
        self._ready = threading.Event()
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="ws-gateway", daemon=True)

    # --- lifecycle ------------------------------------------------------------------------------

    def start(self) -> int:
        self._thread.start()
        self._ready.wait(10)
        if self._error:
            raise self._error
        return self.port

    def stop(self, timeout: float = 3.0) -> None:
        if self._loop and self._stopping:
            self._loop.call_soon_threadsafe(self._stopping.set)
        if self._thread.is_alive():
            self._thread.join(timeout)
        self._pool.shutdown(wait=False, cancel_futures=True)

    async def _main(self) -> None:
        self._loop, self._stopping = asyncio.get_running_loop(), asyncio.Event()
        try:
            server = await serve(
                self._session,
                "127.0.0.1",
                self.port,
                process_request=self._on_handshake,
                max_size=(MAX_MESSAGE, MAX_FRAME),
                compression=None,  # API Gateway negotiates no extension
                ping_interval=None,  # nor pings its clients
                close_timeout=1,
                backlog=BACKLOG,  # bursts of hundreds of handshakes at once
            )
        except BaseException as exc:
            self._error = exc
            self._ready.set()
            return
        self.port = server.sockets[0].getsockname()[1]
        self._ready.set()
        await self._stopping.wait()
        server.close()  # closes every connection with 1001; their sessions run $disconnect
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(server.wait_closed(), 2.5)

    # --- events ---------------------------------------------------------------------------------

    def _context(self, conn: Connection, route_key: str, event_type: str) -> dict:
        return request_context(
            conn,
            route_key,
            event_type,
            domain=f"127.0.0.1:{self.port}",
            stage=self._stage,
            api_id=self._api_id,
        )

    def _invoke(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        handler = self._handlers.get(route_key)
        if handler is None:
            return {"statusCode": 200}
        try:
            return handler(event, LambdaContext(FUNCTION, 512, 60_000)) or {"statusCode": 200}
        except Exception as exc:
            logs.log.exception("%s handler failed", route_key)
            return {"statusCode": 500, "body": "Internal server error", "error": repr(exc)}

    async def _call(self, route_key: str, event: dict[str, Any]) -> dict[str, Any]:
        assert self._loop is not None
        return await self._loop.run_in_executor(self._pool, self._invoke, route_key, event)

    async def _on_handshake(self, ws: ServerConnection, request: Request) -> Response | None:
        started = time.perf_counter()
        ip = ws.remote_address[0] if ws.remote_address else "127.0.0.1"
        conn = Connection(new_connection_id(), ip, request.headers.get("User-Agent"))
        url = urlsplit(request.path)
        pairs = parse_qsl(url.query, keep_blank_values=True)
        multi: dict[str, list[str]] = {}
        for key, value in pairs:
            multi.setdefault(key, []).append(value)
        headers: dict[str, str] = {}
        multi_headers: dict[str, list[str]] = {}
        for key, value in request.headers.raw_items():
            headers[key] = value
            multi_headers.setdefault(key, []).append(value)
        event = {
            "headers": headers,
            "multiValueHeaders": multi_headers,
            "queryStringParameters": {k: v[-1] for k, v in multi.items()} or None,
            "multiValueQueryStringParameters": multi or None,
            "requestContext": self._context(conn, "$connect", "CONNECT"),
            "isBase64Encoded": False,
        }
        answer = await self._call("$connect", event)
        status = int(answer.get("statusCode") or 200)
        logs.line("WS", f"$connect {conn.id} {status} ip={ip} {logs.ms(started)}")
        if not 200 <= status < 300:
            body = answer.get("body")
            return ws.respond(status, body if isinstance(body, str) and body else "Forbidden\n")
        self._pending[ws] = conn
        return None

    async def _session(self, ws: ServerConnection) -> None:
        conn = self._pending.pop(ws)
        conn.ws = ws
        conn.touch()
        self._conns[conn.id] = conn
        watchdog = asyncio.create_task(self._watch(conn))
        try:
            async for message in ws:
                conn.touch()
                await self._message(conn, message)
        except ConnectionClosed:
            pass
        finally:
            watchdog.cancel()
            self._conns.pop(conn.id, None)
            await self._disconnect(conn, ws)

    async def _message(self, conn: Connection, message: str | bytes) -> None:
        started = time.perf_counter()
        binary = isinstance(message, bytes)
        context = {
            **self._context(conn, "$default", "MESSAGE"),
            "messageId": base64.urlsafe_b64encode(secrets.token_bytes(11)).decode(),
        }
        event = {
            "requestContext": context,
            "body": base64.b64encode(message).decode() if isinstance(message, bytes) else message,
            "isBase64Encoded": binary,
        }
        answer = await self._call("$default", event)
        status = int(answer.get("statusCode") or 200)
        logs.line("WS", f"$default {conn.id} {len(message)} bytes {status} {logs.ms(started)}")
        if status >= 500 and conn.ws is not None:
            # What API Gateway sends the client when the integration fails.
            error = {
                "message": "Internal server error",
                "connectionId": conn.id,
                "requestId": context["requestId"],
            }
            with contextlib.suppress(ConnectionClosed):
                await conn.ws.send(_json(error))

    async def _disconnect(self, conn: Connection, ws: ServerConnection) -> None:
        close = ws.protocol.close_rcvd or ws.protocol.close_sent  # 1009 and the like are only "sent"
        code, reason = (close.code, close.reason) if close else (1006, "")
        event = {
            "headers": {"Host": f"127.0.0.1:{self.port}"},
            "requestContext": {
                **self._context(conn, "$disconnect", "DISCONNECT"),
                "disconnectStatusCode": code,
                "disconnectReason": reason,
            },
            "isBase64Encoded": False,
        }
        started = time.perf_counter()
        answer = await self._call("$disconnect", event)
        logs.line("WS", f"$disconnect {conn.id} code={code} {answer.get('statusCode', 200)} {logs.ms(started)}")

    async def _watch(self, conn: Connection) -> None:
        while conn.ws is not None:
            now = time.monotonic()
            idle_left = conn.last_active + self.idle_timeout - now
            age_left = conn.opened + self.max_age - now
            if idle_left <= 0 or age_left <= 0:
                why = "idle timeout" if idle_left <= 0 else "maximum connection age"
                logs.line("WS", f"closing {conn.id}: {why}")
                await conn.ws.close(1001, "Going away")
                return
            await asyncio.sleep(min(idle_left, age_left))

    # --- management API (thread-safe; called from the control server's threads) ---------------

    def _live(self, connection_id: str) -> Connection:
        conn = self._conns.get(connection_id)
        if conn is None or conn.ws is None or self._loop is None:
            raise Gone(connection_id)
        return conn

    def _run(self, coro: Any) -> Any:
        assert self._loop is not None
        try:
            return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=5)
        except (ConnectionClosed, RuntimeError) as exc:
            raise Gone(str(exc)) from None

    def post(self, connection_id: str, data: bytes) -> None:
        conn = self._live(connection_id)
        if len(data) > MAX_MESSAGE:
            raise TooLarge(f"{len(data)} bytes")
        try:
            payload: str | bytes = data.decode()
        except UnicodeDecodeError:
            payload = data
        assert conn.ws is not None
        self._run(conn.ws.send(payload))
        conn.touch()

    def info(self, connection_id: str) -> dict[str, Any]:
        conn = self._live(connection_id)
        # The wire names (boto3 shows them as ConnectedAt, Identity.SourceIp, ...).
        return {
            "connectedAt": _iso(conn.connected_at),
            "identity": {"sourceIp": conn.source_ip, "userAgent": conn.user_agent},
            "lastActiveAt": _iso(conn.last_active_at),
        }

    def delete(self, connection_id: str, code: int = 1000) -> None:
        conn = self._live(connection_id)
        assert conn.ws is not None
        ws = conn.ws
        assert self._loop is not None
        reason = "Policy violation" if code == 1008 else "Connection deleted"
        # Start the close and return, as API Gateway does; $disconnect follows on the loop.
        asyncio.run_coroutine_threadsafe(ws.close(code, reason), self._loop)

    def connections(self) -> list[dict[str, Any]]:
        found = []
        for conn_id in list(self._conns):
            with contextlib.suppress(Gone):
                found.append({"id": conn_id, **self.info(conn_id)})
        return found

    @property
    def connection_count(self) -> int:
        return len(self._conns)


def _iso(ts: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(ts)) + f".{int(ts * 1000) % 1000:03d}Z"


def _json(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"))
