"""X-Ray (issue 14): subsegments for the generator call and AWS calls, only with tracing on.

aws-xray-sdk patches botocore and http.client for the whole process, so each case runs in a
fresh interpreter; the recorder there sends its segments to an in-process emitter, not a daemon.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]

TRACED = r"""
import http.server, json, os, sys, threading
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.context import Context
from moto import mock_aws

import app  # noqa: F401  (app.py section 1 installs tracing)
from chalicelib import aws, catalog, config
from chalicelib.content import generator as webhook
from infra import provision

class Emitter:
    def __init__(self): self.sent = []
    def send_entity(self, entity): self.sent.append(json.loads(entity.serialize()))
    def set_daemon_address(self, address): pass

class Generator(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        self.rfile.read(int(self.headers["Content-Length"]))
        body = b'{"content": "text"}'
        self.send_response(200); self.send_header("Content-Length", str(len(body))); self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args): pass

server = http.server.HTTPServer(("127.0.0.1", 0), Generator)
threading.Thread(target=server.serve_forever, daemon=True).start()
emitter = Emitter()
xray_recorder.configure(emitter=emitter, sampling=False, context=Context())
with mock_aws():
    provision.create_tables(aws.client("dynamodb"))
    xray_recorder.begin_segment("invocation")
    aws.client("dynamodb").get_item(TableName=config.get().resource_name("articles"), Key={"id": {"S": "a1"}})
    status = webhook.urllib_post(f"http://127.0.0.1:{server.server_port}/generate", b"{}", {}, 5.0)[0]
    xray_recorder.end_segment()
subsegments = [s for segment in emitter.sent for s in segment.get("subsegments", [])]
print(json.dumps({"status": status, "subsegments": subsegments}))
"""

MODULES = "import sys, app; print(sorted(m for m in sys.modules if m.startswith('aws_xray_sdk'))[:1])"


def run(code: str, **env: str) -> str:
    base = {k: v for k, v in os.environ.items() if not k.startswith(("INKWELL_", "AWS_", "_X_AMZN"))}
    base.update(
        INKWELL_STAGE="local",
        AWS_DEFAULT_REGION="us-east-1",
        AWS_ACCESS_KEY_ID="testing",
        AWS_SECRET_ACCESS_KEY="testing",
        **env,
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, env=base, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.strip().splitlines()[-1]


def test_generator_call_and_dynamodb_call_are_subsegments_on_lambda_with_tracing() -> None:
    # GIVEN a Lambda with active tracing (the daemon's address is set); WHEN a handler reads an
    # article from DynamoDB and calls the generator within the invocation's segment
    out = json.loads(run(TRACED, AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000"))
    assert out["status"] == 200
    by_namespace: dict[str, list[dict[str, Any]]] = {}
    for sub in out["subsegments"]:
        by_namespace.setdefault(sub.get("namespace", ""), []).append(sub)
    # THEN the DynamoDB call is an AWS subsegment naming its operation and table
    (dynamo,) = by_namespace["aws"]
    assert dynamo["name"] == "dynamodb"
    assert dynamo["aws"]["operation"] == "GetItem" and dynamo["aws"]["table_name"] == "inkwell-local-articles"
    # AND the generator call remote ones (aws-xray-sdk records the request and the body's read),
    # with its URL and status
    assert {sub["http"]["request"]["url"] for sub in by_namespace["remote"]} == {"http://127.0.0.1/generate"}
    statuses = {sub["http"]["response"]["status"] for sub in by_namespace["remote"] if "response" in sub["http"]}
    assert statuses == {200}


def test_tracing_is_not_loaded_without_it() -> None:
    # locally, in tests and on a Lambda without tracing, aws-xray-sdk is never imported
    assert run(MODULES) == "[]"
    assert run(MODULES, AWS_XRAY_DAEMON_ADDRESS="169.254.79.129:2000") == "['aws_xray_sdk']"


POSTS = r"""
import json
from aws_xray_sdk.core import xray_recorder
from aws_xray_sdk.core.context import Context

import app  # noqa: F401  (app.py section 1 installs tracing)
from chalicelib.realtime.sender import Sender

class Emitter:
    def __init__(self): self.sent = []
    def send_entity(self, entity): self.sent.append(json.loads(entity.serialize()))
    def set_daemon_address(self, address): pass

class Management:  # the light management client's interface
    def post_to_connection(self, ConnectionId, Data): pass
    def delete_connection(self, ConnectionId): pass

emitter = Emitter()
xray_recorder.configure(emitter=emitter, sampling=False, context=Context())
sender = Sender(Management())
xray_recorder.begin_segment("invocation")
sender.broadcast(["c1", "c2", "c3"], {"type": "x"})
sender.broadcast_many(["c1", "c2"], ["a", "b"])
sender.close("c1")
xray_recorder.end_segment()
print(json.dumps([s for segment in emitter.sent for s in segment.get("subsegments", [])]))
"""


def test_management_api_calls_of_the_light_client_are_subsegments_one_per_broadcast() -> None:
    # GIVEN tracing on; WHEN an invocation broadcasts twice and closes a connection
    subsegments = json.loads(run(POSTS, AWS_XRAY_DAEMON_ADDRESS="127.0.0.1:2000"))
    # THEN each is one subsegment of the management API, with how many posts it made
    found = [(s["name"], s["namespace"], s["aws"]) for s in subsegments]
    assert found == [
        ("execute-api", "aws", {"operation": "PostToConnection", "posts": 3, "connections": 3}),
        ("execute-api", "aws", {"operation": "PostToConnection", "posts": 4, "connections": 2}),
        ("execute-api", "aws", {"operation": "DeleteConnection"}),
    ]
