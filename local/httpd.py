"""A threaded HTTP server on a background thread, and a JSON-answering request handler base.

Shared by the REST gateway and the control server; `stop()` returns within a second. Connections
run on reused threads (`local.threads`), not on a new thread each.
"""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Self

from local.threads import Workers

BACKLOG = 1024  # connections waiting to be accepted: API Gateway takes bursts (the stdlib's 5 reset some)


class Server(ThreadingHTTPServer):
    daemon_threads = True  # a kept-alive client must not keep the process alive
    allow_reuse_address = True
    request_queue_size = BACKLOG

    def __init__(self, port: int, handler: type[BaseHTTPRequestHandler], **attrs: Any) -> None:
        super().__init__(("127.0.0.1", port), handler)
        for name, value in attrs.items():
            setattr(self, name, value)
        self._thread = threading.Thread(target=self.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
        self._workers = Workers(f"http-{self.port}")

    def process_request(self, request: Any, client_address: Any) -> None:
        """Each connection on a reused thread (the app's per-thread clients survive it)."""
        self._workers.submit(lambda: self.process_request_thread(request, client_address))

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    def start(self) -> Self:
        self._thread.name = f"http-{self.port}"
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread.is_alive():
            self.shutdown()
            self._thread.join(timeout=2)
        self.server_close()


class JsonHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body are two writes: no delayed-ACK wait between them
    MAX_BODY = 10 * 1024 * 1024  # API Gateway's payload limit

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        pass  # each server logs its own line

    def read_body(self) -> bytes | None:
        """The request body; None (after answering 413) when it is over the limit."""
        length = int(self.headers.get("content-length") or 0)
        if length > self.MAX_BODY:
            self.reply(413, {"message": "Request Too Long"})
            self.close_connection = True
            return None
        return self.rfile.read(length) if length > 0 else b""

    def reply(self, status: int, body: Any = None, headers: dict[str, str] | None = None) -> None:
        data = b"" if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
        self.send_response(status)
        sent = {k.lower() for k in (headers or {})}
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        if data and "content-type" not in sent:
            self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)
