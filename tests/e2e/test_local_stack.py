"""The local stack over real sockets: REST, the WebSocket gateway and its management API, the
SQS -> Lambda emulator (batch item failures, dead-letter queue, paused mappings), EventBridge
schedules fired on demand, and the fake article generator."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from typing import Any

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from local.generator import signed
from tests.e2e.conftest import LocalStack, eventually, start_stack, stop_stack

# --- REST ---------------------------------------------------------------------------------------


def test_health_answers_200_with_an_api_gateway_request_id(stack: LocalStack) -> None:
    status, body, headers = stack.request("GET", "/api/health")
    assert (status, body) == (200, {"status": "ok"})
    uuid.UUID(headers["x-amzn-requestid"])


def test_the_admin_printed_at_start_can_log_in_and_a_wrong_password_cannot(stack: LocalStack) -> None:
    token = stack.login()
    status, me, _ = stack.request("GET", "/api/auth/me", token=token)
    assert status == 200 and me["email"] == stack.admin_email and me["role"] == "admin"
    status, body, _ = stack.request("POST", "/api/auth/login", {"email": stack.admin_email, "password": "wrong-pass"})
    assert status == 401, body


def test_an_unknown_route_is_refused_like_api_gateway(stack: LocalStack) -> None:
    status, body, _ = stack.request("GET", "/api/no-such-route")
    assert status == 403 and body == {"message": "Missing Authentication Token"}


@pytest.mark.parametrize("method", ["TRACE", "CONNECT", "PROPFIND"])
def test_a_method_api_gateway_does_not_route_is_a_4xx_not_a_501(stack: LocalStack, method: str) -> None:
    """Found by Schemathesis: http.server answered 501 to TRACE (a 5xx a client could cause)."""
    status, _, _ = stack.request(method, "/api/health")
    assert 400 <= status < 500


def test_concurrent_requests_each_see_their_own_request(stack: LocalStack) -> None:
    # Chalice keeps the current request on the app object; threads sharing one app must not mix them.
    from concurrent.futures import ThreadPoolExecutor

    admin = stack.login()
    email = f"editor-{uuid.uuid4().hex[:8]}@example.com"
    status, editor, _ = stack.request(
        "POST", "/api/users", {"email": email, "password": "long enough password", "role": "editor"}, token=admin
    )
    assert status == 201, editor
    users = {
        stack.request("GET", "/api/auth/me", token=admin)[1]["id"]: admin,
        editor["id"]: stack.login(email, "long enough password"),
    }
    calls = [(user_id, token, f"title {i} by {user_id}") for i in range(12) for user_id, token in users.items()]

    def create(call: tuple[str, str, str]) -> tuple[str, str, dict[str, Any]]:
        user_id, token, title = call
        status, article, _ = stack.request("POST", "/api/articles", {"title": title, "topic": "t"}, token=token)
        assert status == 201, article
        return user_id, title, article

    with ThreadPoolExecutor(max_workers=8) as pool:
        results = list(pool.map(create, calls))
    assert all(article["author_id"] == user_id and article["title"] == title for user_id, title, article in results)


# --- WebSocket ----------------------------------------------------------------------------------


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 15))


@pytest.mark.parametrize("token", [None, "not-a-jwt"])
def test_a_websocket_without_valid_credentials_is_refused(stack: LocalStack, token: str | None) -> None:
    async def attempt() -> int:
        try:
            async with connect(stack.ws(token)):
                return 101
        except InvalidStatus as exc:
            return exc.response.status_code

    assert run(attempt()) == 401


def test_a_websocket_with_a_token_answers_ping_and_malformed_frames_and_stays_open(stack: LocalStack) -> None:
    token = stack.login()

    async def session() -> list[Any]:
        async with connect(stack.ws(token)) as ws:
            answers = []
            for frame in ('{"action":"ping"}', "not json", '{"no":"action"}', '{"action":"ping"}'):
                await ws.send(frame)
                answers.append(json.loads(await ws.recv()))
            return answers

    pong, bad_json, no_action, pong_again = run(session())
    assert pong == pong_again == {"type": "pong"}
    assert bad_json["type"] == no_action["type"] == "error" and bad_json["message"]


def test_the_management_api_posts_to_a_connection_and_answers_410_once_it_closed(stack: LocalStack) -> None:
    token = stack.login()
    client = stack.management()

    async def session() -> tuple[str, str, dict[str, Any]]:
        before = {c["id"] for c in stack.connections()}
        async with connect(stack.ws(token), user_agent_header="e2e-agent") as ws:
            opened = eventually(lambda: [c for c in stack.connections() if c["id"] not in before])
            conn_id = opened[0]["id"]
            await asyncio.to_thread(client.post_to_connection, ConnectionId=conn_id, Data=b'{"hello":"there"}')
            received = await ws.recv()
            info = await asyncio.to_thread(client.get_connection, ConnectionId=conn_id)
        return conn_id, received, info

    conn_id, received, info = run(session())
    assert json.loads(received) == {"hello": "there"}
    assert info["Identity"] == {"SourceIp": "127.0.0.1", "UserAgent": "e2e-agent"}
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId=conn_id, Data=b"late")
    with pytest.raises(client.exceptions.GoneException):
        client.get_connection(ConnectionId=conn_id)
    with pytest.raises(client.exceptions.GoneException):
        client.post_to_connection(ConnectionId="never-existed", Data=b"x")


def test_the_apps_light_management_client_posts_answers_410_and_413_and_deletes(stack: LocalStack) -> None:
    """chalicelib.realtime.management (what the sender uses) against the stack's management API."""
    from botocore.exceptions import ClientError

    from chalicelib.realtime import management

    token = stack.login()
    client = management.ManagementApi(
        stack.info["management_endpoint"], management.Signer(stack.info["region"], lambda: ("testing", "testing", None))
    )

    async def session() -> tuple[str, list[str], str | None, int | None]:
        before = {c["id"] for c in stack.connections()}
        async with connect(stack.ws(token), max_size=None) as ws:
            conn_id = eventually(lambda: [c for c in stack.connections() if c["id"] not in before])[0]["id"]
            received = []
            for n in range(3):  # one kept-alive connection for the three
                await asyncio.to_thread(client.post_to_connection, ConnectionId=conn_id, Data=json.dumps({"n": n}))
                received.append(await ws.recv())
            try:
                await asyncio.to_thread(client.post_to_connection, ConnectionId=conn_id, Data=b"x" * (128 * 1024 + 1))
                too_large = None
            except ClientError as exc:
                too_large = exc.response["Error"]["Code"]
            await asyncio.to_thread(client.delete_connection, ConnectionId=conn_id)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return conn_id, received, too_large, ws.close_code

    try:
        conn_id, received, too_large, close_code = run(session())
        with pytest.raises(ClientError) as gone:
            client.post_to_connection(ConnectionId=conn_id, Data=b"late")
    finally:
        client.close()
    assert [json.loads(r) for r in received] == [{"n": 0}, {"n": 1}, {"n": 2}]
    assert too_large == "PayloadTooLargeException" and close_code == 1000
    assert gone.value.response["Error"]["Code"] == "GoneException"


def test_deleting_a_connection_closes_the_client(stack: LocalStack) -> None:
    token = stack.login()
    client = stack.management()

    async def session() -> int | None:
        before = {c["id"] for c in stack.connections()}
        async with connect(stack.ws(token)) as ws:
            conn_id = eventually(lambda: [c for c in stack.connections() if c["id"] not in before])[0]["id"]
            await asyncio.to_thread(client.delete_connection, ConnectionId=conn_id)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(session()) == 1000


def test_a_connection_the_app_closes_for_its_frame_rate_gets_1008(stack: LocalStack) -> None:
    """The app's management client asks for 1008 (policy violation), which only the local gateway
    can send: API Gateway's DeleteConnection takes no close code."""
    from chalicelib.realtime import management

    token = stack.login()
    signer = management.Signer(stack.info["region"], lambda: ("testing", "testing", None))
    client = management.ManagementApi(stack.info["management_endpoint"], signer)

    async def session() -> int | None:
        before = {c["id"] for c in stack.connections()}
        async with connect(stack.ws(token)) as ws:
            conn_id = eventually(lambda: [c for c in stack.connections() if c["id"] not in before])[0]["id"]
            await asyncio.to_thread(client.delete_connection, ConnectionId=conn_id, CloseCode=1008)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    try:
        assert run(session()) == 1008
    finally:
        client.close()


def test_a_frame_over_32_kb_closes_with_1009_and_a_fragmented_message_over_128_kb_too(stack: LocalStack) -> None:
    token = stack.login()

    async def send(payload: Any) -> int | None:
        async with connect(stack.ws(token), max_size=None) as ws:
            await ws.send(payload)
            with pytest.raises(ConnectionClosed):
                await ws.recv()
            return ws.close_code

    assert run(send("x" * (33 * 1024))) == 1009
    assert run(send(["y" * (30 * 1024)] * 5)) == 1009  # five 30 KB frames, one 150 KB message


# --- SQS -> Lambda ------------------------------------------------------------------------------


def probe_records(stack: LocalStack, tag: str) -> dict[str, dict[str, Any]]:
    items = stack.aws("dynamodb").query(
        TableName=stack.resource_name("settings"),
        KeyConditionExpression="#s = :s",
        ExpressionAttributeNames={"#s": "scope"},
        ExpressionAttributeValues={":s": {"S": f"e2e#{tag}"}},
    )["Items"]
    return {item["key"]["S"]: json.loads(item["value"]["S"]) for item in items}


def dead_letters(stack: LocalStack, tag: str) -> list[dict[str, Any]]:
    sqs = stack.aws("sqs")
    found = []
    for _ in range(3):  # peek without hiding them from anyone else
        for message in sqs.receive_message(
            QueueUrl=stack.queue_url("e2e-probe-dlq"), MaxNumberOfMessages=10, VisibilityTimeout=0
        ).get("Messages", []):
            body = json.loads(message["Body"])
            if body.get("tag") == tag and body not in found:
                found.append(body)
    return found


def send_probe(stack: LocalStack, tag: str, name: str, outcome: str) -> None:
    body = json.dumps({"tag": tag, "name": name, "outcome": outcome})
    stack.aws("sqs").send_message(QueueUrl=stack.queue_url("e2e-probe"), MessageBody=body)


def test_batch_item_failures_are_redelivered_then_dead_lettered_and_successes_deleted(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex
    send_probe(stack, tag, "good", "ok")
    send_probe(stack, tag, "bad", "fail")

    eventually(lambda: [d for d in dead_letters(stack, tag) if d["name"] == "bad"], timeout=20)
    seen = probe_records(stack, tag)
    # the failed message came twice (the redrive policy's 2 receives), the good one once
    assert sorted(seen) == ["bad#1", "bad#2", "good#1"]
    assert seen["bad#1"]["messageId"] == seen["bad#2"]["messageId"]
    record = seen["good#1"]["record"]
    assert record["eventSource"] == "aws:sqs" and record["eventSourceARN"].endswith(":inkwell-local-e2e-probe")
    assert record["receiptHandle"] and record["attributes"]["ApproximateReceiveCount"] == "1"
    assert {"SentTimestamp", "ApproximateFirstReceiveTimestamp"} <= set(record["attributes"])
    assert [d["name"] for d in dead_letters(stack, tag)] == ["bad"]


def test_an_exception_fails_the_whole_batch(stack: LocalStack) -> None:
    tag = uuid.uuid4().hex
    send_probe(stack, tag, "boom", "raise")

    eventually(lambda: dead_letters(stack, tag), timeout=20)
    assert sorted(probe_records(stack, tag)) == ["boom#1", "boom#2"]


def test_a_disabled_event_source_mapping_stops_delivery_until_enabled_again(stack: LocalStack) -> None:
    lam = stack.aws("lambda")
    queue_arn = stack.aws("sqs").get_queue_attributes(
        QueueUrl=stack.queue_url("e2e-probe"), AttributeNames=["QueueArn"]
    )["Attributes"]["QueueArn"]
    (mapping,) = lam.list_event_source_mappings(
        FunctionName=stack.resource_name("e2e_probe"), EventSourceArn=queue_arn
    )["EventSourceMappings"]
    assert mapping["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    tag = uuid.uuid4().hex
    lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=False)
    try:
        time.sleep(1.2)  # the poller reads the mapping's state at most once a second
        send_probe(stack, tag, "waiting", "ok")
        time.sleep(1.5)  # a negative: nothing may arrive while paused
        assert probe_records(stack, tag) == {}
    finally:
        lam.update_event_source_mapping(UUID=mapping["UUID"], Enabled=True)
    eventually(lambda: probe_records(stack, tag).get("waiting#1"), timeout=10)


# --- EventBridge --------------------------------------------------------------------------------


def test_a_schedule_fired_on_demand_gets_a_scheduled_event_with_its_rule_arn(stack: LocalStack) -> None:
    rule_arn = stack.aws("events").describe_rule(Name=stack.resource_name("e2e_tick"))["Arn"]
    fired = stack.fire("e2e_tick")
    assert fired["status"] == "ok" and fired["rule_arn"] == rule_arn

    event = probe_records(stack, "schedule")[fired["event_id"]]
    assert event["detail-type"] == "Scheduled Event" and event["source"] == "aws.events"
    assert event["resources"] == [rule_arn]
    assert event["time"].endswith("Z") and event["id"] == fired["event_id"]
    status, listed, _ = stack.control("GET", "/schedules")
    assert any(s["name"] == "e2e_tick" and s["next_run"].endswith("T00:00:00Z") for s in listed["items"])
    assert stack.control("POST", "/schedules/no-such/fire")[0] == 404


# --- fake article generator ---------------------------------------------------------------------


def test_the_fake_generator_checks_the_signature_and_can_be_told_to_fail(stack: LocalStack) -> None:
    body = json.dumps({"article_id": "a1", "title": "T", "topic": "tea", "keywords": ["green"]}).encode()
    url = stack.info["generator_url"]
    path = url[len(stack.control_url) :]
    secret = "inkwell-local-development-secret-not-for-production:WEBHOOK_SECRET"

    def call(headers: dict[str, str] | None) -> tuple[int, Any]:
        status, answer, _ = stack.request("POST", path, raw=body, headers=headers or {}, base=stack.control_url)
        return status, answer

    assert call(None)[0] == 401
    assert call({**signed(body, secret), "x-inkwell-signature-v2": "sha256=" + "0" * 64})[0] == 401
    first, second = call(signed(body, secret)), call(signed(body, secret))
    assert first[0] == 200 and first == second and "tea" in first[1]["content"]

    assert stack.control("POST", "/generator/faults", {"status": 503, "times": 1, "article_id": "a1"})[0] == 204
    assert call(signed(body, secret))[0] == 503
    assert call(signed(body, secret))[0] == 200


# --- operations ---------------------------------------------------------------------------------

BARE_APP = "tests.e2e.bare_app:app"


def test_ctrl_c_stops_a_running_stack_within_5_seconds_and_frees_its_ports(tmp_path: Any) -> None:
    import signal
    import socket

    process, other = start_stack(tmp_path, INKWELL_LOCAL_APP=BARE_APP)
    assert other.info["startup_seconds"] < 10
    assert other.request("GET", "/api/health")[0] == 200
    seconds = stop_stack(process, signal.SIGINT)
    assert process.returncode == 0 and seconds < 5, other.log_tail()
    assert "STACK stopped" in other.log_tail()
    for url in (other.http_url, other.ws_url, other.control_url, other.aws_endpoint):
        port = int(url.rsplit(":", 1)[1])
        with socket.socket() as probe, pytest.raises(ConnectionRefusedError):
            probe.connect(("127.0.0.1", port))


def test_a_stack_whose_starter_is_killed_stops_itself(tmp_path: Any) -> None:
    import os
    import subprocess
    import sys

    from tests.e2e.conftest import ROOT, stack_env

    ready = tmp_path / "ready.json"
    starter = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import subprocess, sys, time\n"
            "subprocess.Popen([sys.executable, '-m', 'local'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)\n"
            "time.sleep(60)",
        ],
        cwd=ROOT,
        env=stack_env(ready, INKWELL_LOCAL_APP=BARE_APP),
    )
    try:
        pid = eventually(lambda: ready.exists() and json.loads(ready.read_text())["pid"], timeout=30)
    finally:
        starter.kill()  # SIGKILL: no chance to stop its child
        starter.wait()

    def gone() -> bool:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                return stat.read().split(") ", 1)[1].startswith("Z")  # a zombie nobody reaped yet
        except FileNotFoundError:
            return True

    try:
        eventually(gone, timeout=6)
    finally:
        if not gone():
            os.kill(pid, 9)
