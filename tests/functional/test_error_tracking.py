"""Error tracking against a local stand-in for Sentry (an HTTP server that keeps the envelopes):
one event per unhandled exception in a REST route, an SQS handler and a WebSocket handler, none
for a refusal, and no credential in what is sent."""

from __future__ import annotations

import gzip
import json
import threading
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from chalicelib.observe import tracking
from chalicelib.realtime import sender as sender_module
from chalicelib.realtime import store
from tests.conftest import body
from tests.functional.ws_support import Context, FakeManagement, Gateway


class StandIn:
    """Sentry's ingestion endpoint: keeps every envelope's event items."""

    def __init__(self) -> None:
        self.raw: list[bytes] = []
        received = self.raw

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                data = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                encoding = self.headers.get("Content-Encoding", "")
                if encoding == "gzip":
                    data = gzip.decompress(data)
                elif encoding == "deflate":
                    data = zlib.decompress(data)
                assert encoding in ("", "gzip", "deflate"), encoding
                received.append(data)
                self.send_response(200)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.dsn = f"http://publickey@127.0.0.1:{self.server.server_address[1]}/1"

    def events(self) -> list[dict[str, Any]]:
        found = []
        for envelope in self.raw:
            lines = envelope.split(b"\n")
            for header, payload in zip(lines[1::2], lines[2::2], strict=False):
                if json.loads(header).get("type") == "event":
                    found.append(json.loads(payload))
        return found

    def text(self) -> str:
        return b"\n".join(self.raw).decode("utf-8", "replace")


@pytest.fixture
def sentry(app: Any, monkeypatch: pytest.MonkeyPatch) -> Any:
    stand_in = StandIn()
    monkeypatch.setenv("SENTRY_DSN", stand_in.dsn)
    assert tracking.configure(app.log)
    yield stand_in
    tracking.shutdown()
    stand_in.server.shutdown()
    stand_in.server.server_close()


def _exception(event: dict[str, Any]) -> tuple[str, str]:
    [value] = event["exception"]["values"]
    return value["type"], value["value"]


def test_a_rest_route_that_raises_is_reported_once_with_its_request_and_no_credential(api, sentry, monkeypatch):
    from chalicelib.content import articles

    token = api.token("editor")
    article_id = body(api.post("/api/articles", {"title": "T", "topic": "t"}, as_="editor"))["id"]

    def broken(_id: str) -> Any:
        raise RuntimeError(f"database on fire (caller sent Bearer {token})")

    monkeypatch.setattr(articles, "find", broken)
    response = api.get(f"/api/articles/{article_id}", token=token)
    assert response.status_code == 500

    [event] = sentry.events()
    kind, message = _exception(event)
    assert kind == "RuntimeError" and message.startswith("database on fire")
    assert event["tags"]["kind"] == "rest"
    assert event["tags"]["route"] == "GET /api/articles/{article_id}"
    assert event["tags"]["request_id"]
    assert event["user"] == {"id": api.user("editor")["id"]}
    assert token not in sentry.text() and token.split(".")[2] not in sentry.text()


def test_a_refusal_is_not_reported(api, sentry):
    assert api.get("/api/articles/00000000000000000000000000000000", as_="editor").status_code == 404
    assert api.get("/api/articles", headers={"authorization": "Bearer not-a-token"}).status_code == 401
    assert api.post("/api/articles", {"title": ""}, as_="editor").status_code == 400
    assert sentry.events() == []


def test_an_sqs_handler_that_raises_is_reported_once_with_its_invocation(app, sentry, monkeypatch):
    import app as app_module
    from chalicelib.audit import logger

    def broken(_body: str) -> int:
        raise ValueError("audit store unreachable")

    monkeypatch.setattr(logger, "process_fallback_message", broken)
    event = {"Records": [{"messageId": "m-1", "receiptHandle": "r-1", "body": "{}", "attributes": {}}]}
    with pytest.raises(ValueError):
        app_module.audit_fallback(event, Context())

    [reported] = sentry.events()
    assert _exception(reported) == ("ValueError", "audit store unreachable")
    assert reported["tags"]["kind"] == "sqs" and reported["tags"]["request_id"] == Context.aws_request_id


def test_a_refusal_escaping_a_handler_that_answers_no_request_is_reported(app, sentry, monkeypatch):
    # GIVEN a schedule Lambda whose job cannot be queued (jobs.EnqueueError: a 503 on a REST route)
    import app as app_module
    from chalicelib import jobs
    from chalicelib.schedules import service as schedules
    from tests.functional.schedules.conftest import cw_event

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise jobs.EnqueueError("the job could not be queued; try again")

    monkeypatch.setattr(schedules, "_enqueue", lambda: refuse)
    # WHEN it fires, THEN the failure is the Lambda's, and reported: nobody was answered with it
    with pytest.raises(jobs.EnqueueError):
        app_module.session_cleanup(cw_event("2026-11-28T10:00:00Z"), Context())
    [reported] = sentry.events()
    assert _exception(reported) == ("EnqueueError", "the job could not be queued; try again")
    assert reported["tags"]["kind"] == "schedule"


def test_a_websocket_frame_that_fails_is_reported_once_with_its_connection(app, api, sentry, monkeypatch):
    import app as app_module

    management = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: management)
    gw = Gateway(app_module, management)
    ticket = body(api.post("/api/realtime/ticket", as_="admin"))["ticket"]
    cid, response = gw.connect(ticket=ticket)
    assert response["statusCode"] == 200

    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("event log on fire")

    monkeypatch.setattr(store.EventLog, "current", broken)
    assert gw.send(cid, {"action": "rooms"})[0]["type"] == "error"

    [reported] = sentry.events()
    assert _exception(reported) == ("RuntimeError", "event log on fire")
    assert reported["tags"]["kind"] == "websocket" and reported["tags"]["connection_id"] == cid
    assert ticket not in sentry.text()


def test_a_websocket_handler_that_raises_is_reported_once(app, sentry, monkeypatch):
    import app as app_module
    from chalicelib.realtime import disconnect
    from tests.functional.ws_support import ws_event

    def broken(_event: Any) -> None:
        raise KeyError("connections table")

    monkeypatch.setattr(disconnect, "disconnect", broken)
    with pytest.raises(KeyError):
        app_module.ws_disconnect(ws_event("$disconnect", "conn-9"), Context())
    [reported] = sentry.events()
    assert reported["tags"]["connection_id"] == "conn-9"


def test_without_a_dsn_nothing_is_loaded_or_sent(app, monkeypatch):
    monkeypatch.delenv("SENTRY_DSN", raising=False)
    assert tracking.configure(app.log) is False
    tracking.report(RuntimeError("nowhere to go"))  # no client: a no-op
