"""The control server: what the local stack serves besides the REST and WebSocket APIs.

- `POST`/`GET`/`DELETE /@connections/{id}`: API Gateway's WebSocket management API (the app's
  sender and boto3's `apigatewaymanagementapi` client use it as their endpoint URL); a DELETE
  closes with 1000 as API Gateway does, or with the code of an `X-Inkwell-Close-Code` header (the
  app's 1008 for a connection past its frame limit, which AWS cannot send);
- `POST /generator`: the fake article generator; `POST /generator/faults` makes it fail on purpose;
  `POST /generator/load` sets random failures and a rate limit, `GET /generator/calls` its call log;
- `GET /schedules`; `POST /schedules/{name}/fire`: the EventBridge emulator's rules, fired on demand;
- `POST /faults` (a rule, or `{"rules": [...], "seed"?}` replacing them all), `GET /faults`,
  `DELETE /faults` and `DELETE /faults/{id}`: faults inside AWS and the emulators (`local.faults`;
  the management API served here obeys them too);
- `GET /connections` (the open WebSocket connections); `GET /health`.
"""

from __future__ import annotations

import json
import time
from typing import Any
from urllib.parse import unquote

from chalicelib.realtime.management import CLOSE_CODE_HEADER
from local import logs
from local.faults import BadRule, FaultInjector, error_code
from local.generator import FakeGenerator
from local.httpd import JsonHandler, Server
from local.scheduler import Scheduler, UnknownSchedule
from local.websocket import Gone, TooLarge, WebSocketGateway


class _AnswerLost(Exception):
    """The call was applied; the connection closes without its answer."""


def _error(kind: str, message: str) -> dict[str, str]:
    return {"message": message, "__type": kind}


class ControlHandler(JsonHandler):
    server: ControlServer

    def _route(self) -> None:
        started = time.perf_counter()
        path = self.path.split("?", 1)[0]
        body = self.read_body()
        if body is None:
            return
        try:
            status, answer, headers = self._dispatch(self.command, path, body)
        except _AnswerLost:
            self.close_connection = True
            logs.line("CTRL", f"{self.command} {unquote(path)} applied, answer lost {logs.ms(started)}")
            return
        except Exception as exc:  # a slow client (send timeout) or a bug: answer, never hang up
            logs.log.exception("control %s %s failed", self.command, path)
            status, answer, headers = 500, _error("InternalServerError", repr(exc)), None
        self.reply(status, answer, headers)
        if not path.startswith("/health"):
            logs.line("CTRL", f"{self.command} {unquote(path)} {status} {logs.ms(started)}")

    do_GET = do_POST = do_DELETE = do_PUT = _route

    def _dispatch(self, method: str, path: str, body: bytes) -> tuple[int, Any, dict[str, str] | None]:
        gateway, generator, scheduler = self.server.gateway, self.server.generator, self.server.scheduler
        if path.startswith("/@connections/"):
            code = self.headers.get(CLOSE_CODE_HEADER, "")
            close_code = int(code) if code.isdigit() and 1000 <= int(code) <= 4999 else 1000
            return self._management(gateway, method, unquote(path[len("/@connections/") :]), body, close_code)
        if path == "/generator" and method == "POST":
            headers = {k.lower(): v for k, v in self.headers.items()}
            status, answer, out = generator.call(headers, body)
            return status, answer, out or None
        if path == "/generator/load" and method == "POST":
            try:
                spec = json.loads(body or b"{}")
                rate = None if spec.get("rate_limit") is None else int(spec["rate_limit"])
                generator.set_load(float(spec.get("failure_rate", 0)), rate, spec.get("seed"))
            except (ValueError, TypeError, AttributeError) as exc:
                return 400, {"message": f"expected {{failure_rate?, rate_limit?, seed?}}: {exc}"}, None
            return 204, None, None
        if path == "/generator/calls" and method == "GET":
            return 200, {"items": generator.log}, None
        if path == "/generator/faults" and method == "POST":
            try:
                spec = json.loads(body or b"{}")
                delay = None if spec.get("delay") is None else float(spec["delay"])
                generator.add_fault(int(spec["status"]), int(spec.get("times", 1)), spec.get("article_id"), delay)
            except (ValueError, KeyError, TypeError) as exc:
                return 400, {"message": f"expected {{status, times?, article_id?, delay?}}: {exc}"}, None
            return 204, None, None
        if path == "/faults" or path.startswith("/faults/"):
            return self._faults(method, unquote(path[len("/faults/") :]) if path != "/faults" else "", body)
        if path == "/schedules" and method == "GET":
            return 200, {"items": scheduler.describe()}, None
        if path.startswith("/schedules/") and path.endswith("/fire") and method == "POST":
            name = unquote(path[len("/schedules/") : -len("/fire")])
            try:
                return 200, scheduler.fire(name), None
            except UnknownSchedule:
                return 404, {"message": f"no schedule {name!r}"}, None
        if path == "/connections" and method == "GET":
            return 200, {"items": gateway.connections()}, None
        if path == "/health":
            return 200, {"status": "ok", "connections": gateway.connection_count}, None
        return 404, {"message": "not found"}, None

    def _faults(self, method: str, rule_id: str, body: bytes) -> tuple[int, Any, dict[str, str] | None]:
        faults = self.server.faults
        if rule_id:
            if method != "DELETE":
                return 405, {"message": "method not allowed"}, None
            return (204, None, None) if faults.remove(rule_id) else (404, {"message": f"no fault {rule_id!r}"}, None)
        if method == "GET":
            return 200, faults.describe(), None
        if method == "DELETE":
            faults.clear()
            return 204, None, None
        if method != "POST":
            return 405, {"message": "method not allowed"}, None
        try:
            rules = faults.configure(json.loads(body or b"{}"))
        except ValueError as exc:  # BadRule, or a body that is not JSON
            return 400, {"message": str(exc) if isinstance(exc, BadRule) else f"the body must be JSON: {exc}"}, None
        return 201, {"rules": [r.describe() for r in rules]}, None

    def _management(
        self, gateway: WebSocketGateway, method: str, connection_id: str, body: bytes, close_code: int = 1000
    ) -> tuple[int, Any, dict[str, str] | None]:
        operation = {"POST": "PostToConnection", "GET": "GetConnection", "DELETE": "DeleteConnection"}.get(method, "")
        fault = self.server.faults.server_fault("apigatewaymanagementapi", operation)
        if fault is not None and fault.kind != "lost_answer":
            status, code = error_code(fault.error, "apigatewaymanagementapi")
            return status, _error(code, f"injected fault: {code}"), {"x-amzn-ErrorType": code}
        try:
            if method == "POST":
                gateway.post(connection_id, body)
                answer: tuple[int, Any, dict[str, str] | None] = (200, None, None)
            elif method == "GET":
                answer = (200, gateway.info(connection_id), None)
            elif method == "DELETE":
                gateway.delete(connection_id, close_code)
                answer = (204, None, None)
            else:
                return 405, {"message": "method not allowed"}, None
        except Gone:
            return (
                410,
                _error("GoneException", f"connection {connection_id} is gone"),
                {"x-amzn-ErrorType": "GoneException"},
            )
        except TooLarge as exc:
            return (
                413,
                _error("PayloadTooLargeException", f"message too large: {exc}"),
                {"x-amzn-ErrorType": "PayloadTooLargeException"},
            )
        if fault is not None:  # applied; its answer is lost: the connection closes unanswered
            raise _AnswerLost
        return answer


class ControlServer(Server):
    """Bound at construction (its URL goes into the app's configuration before the app is
    imported); the parts it serves are attached before `start()`."""

    gateway: WebSocketGateway
    generator: FakeGenerator
    scheduler: Scheduler

    def __init__(self, port: int, faults: FaultInjector | None = None) -> None:
        super().__init__(port, ControlHandler)
        self.faults = faults or FaultInjector()
