"""API Gateway's REST API in front of the Chalice app, over a threaded HTTP server.

Chalice's `LocalGateway` turns each HTTP request into the API Gateway proxy event; the event is
completed with what API Gateway adds and Chalice local leaves out (the caller's real address in
`identity.sourceIp`, a `requestId`, stage and time), so the app sees what it sees on AWS.
Chalice keeps the current request on the app object (one invocation per Lambda container);
here threads share one app, so those attributes become thread-local.
"""

from __future__ import annotations

import base64
import threading
import time
import uuid
from typing import Any

from chalice.local import LocalGateway, LocalGatewayException

from local import logs
from local.httpd import JsonHandler, Server

STAGE = "api"  # .chalice/config.json's api_gateway_stage


class _GatewayConfig:
    function_name = "api_handler"
    lambda_timeout = 60
    lambda_memory_size = 512


class _Gateway(LocalGateway):
    def __init__(self, app: Any, source_ip: str, request_id: str) -> None:
        super().__init__(app, _GatewayConfig())  # type: ignore[arg-type]
        self._source_ip, self._request_id = source_ip, request_id

    def _generate_lambda_event(self, method: str, path: str, headers: Any, body: bytes | None) -> dict[str, Any]:
        event = super()._generate_lambda_event(method, path, headers, body)
        ctx = event["requestContext"]
        ctx.update(
            requestId=self._request_id,
            extendedRequestId=self._request_id,
            stage=STAGE,
            apiId="local",
            protocol="HTTP/1.1",
            domainName=event["headers"].get("host", "127.0.0.1"),
            requestTimeEpoch=int(time.time() * 1000),
            identity={"sourceIp": self._source_ip, "userAgent": event["headers"].get("user-agent")},
        )
        forwarded = event["headers"].get("x-forwarded-for")
        event["headers"]["x-forwarded-for"] = f"{forwarded}, {self._source_ip}" if forwarded else self._source_ip
        return event


def per_thread_invocation(app: Any) -> None:
    """Make `app.current_request` and `app.lambda_context` thread-local (see the docstring)."""
    state = threading.local()

    def slot(name: str) -> property:
        return property(lambda self: getattr(state, name, None), lambda self, value: setattr(state, name, value))

    cls = type(app)
    if getattr(cls, "_per_thread", False):
        return
    app.__class__ = type(
        cls.__name__,
        (cls,),
        {"_per_thread": True, "current_request": slot("current_request"), "lambda_context": slot("lambda_context")},
    )


class RestHandler(JsonHandler):
    server: RestServer

    def _handle(self) -> None:
        started = time.perf_counter()
        request_id = str(uuid.uuid4())
        body = self.read_body()
        if body is None:
            return
        headers = dict(self.headers)
        gateway = _Gateway(self.server.app, self.client_address[0], request_id)
        try:
            response = gateway.handle_request(self.command, self.path, headers, body or None)
            status = response["statusCode"]
            out = {**(response.get("headers") or {}), **(response.get("multiValueHeaders") or {})}
            payload = response.get("body")
            if response.get("isBase64Encoded") and payload is not None:
                payload = base64.b64decode(payload)
        except LocalGatewayException as exc:
            status, out, payload = exc.CODE, dict(exc.headers), exc.body
        except Exception:  # what API Gateway answers when the function itself fails
            logs.log.exception("REST %s %s failed outside the app's error handling", self.command, self.path)
            status, out, payload = 502, {}, b'{"message": "Internal server error"}'
        out.setdefault("x-amzn-RequestId", request_id)
        data = payload.encode() if isinstance(payload, str) else payload or b""
        self._send(status, out, data)
        logs.line(
            "REST",
            f"{self.command} {self.path} {status} {logs.ms(started)} ip={self.client_address[0]} id={request_id}",
        )

    def _send(self, status: int, headers: dict[str, Any], data: bytes) -> None:
        self.send_response(status)
        headers = {k: v for k, v in headers.items() if k.lower() != "content-length"}
        if data and not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/json"
        for name, value in headers.items():
            for item in value if isinstance(value, list) else [value]:
                self.send_header(name, str(item))
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        if data and self.command != "HEAD":
            self.wfile.write(data)

    do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _handle

    def __getattr__(self, name: str) -> Any:
        """Any other method (TRACE, ...) goes to the routes too, which refuse it with a 4xx as API
        Gateway does; http.server would answer 501, a server error no client can cause on AWS."""
        if name.startswith("do_"):
            return self._handle
        raise AttributeError(name)


class RestServer(Server):
    app: Any

    def __init__(self, port: int, app: Any) -> None:
        per_thread_invocation(app)
        super().__init__(port, RestHandler, app=app)
