"""local.faults on real HTTP: botocore clients against a moto server in this process, the
control server's `/faults` API and its management API under faults, and the gateways' bursts."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError

from local.control import ControlServer
from local.faults import FaultInjector
from local.httpd import JsonHandler, Server
from local.websocket import Gone, WebSocketGateway

TABLE = "faults-test"
ATTEMPTS = 5  # what Config(retries={"max_attempts": 4}) makes: botocore counts retries there


@pytest.fixture(autouse=True)
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's retries without its backoff sleeps (what is tested is that it retries)."""
    from botocore.retries import standard

    monkeypatch.setattr(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0)


@pytest.fixture(scope="module")
def endpoint() -> Iterator[str]:
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    url = f"http://{host}:{port}"
    ddb = _session().client("dynamodb", **_kwargs(url))
    ddb.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    yield url
    server.stop()


def _session() -> Any:
    return boto3.session.Session()


def _kwargs(url: str) -> dict[str, Any]:
    return {
        "endpoint_url": url,
        "region_name": "us-east-1",
        "aws_access_key_id": "testing",
        "aws_secret_access_key": "testing",
        # as chalicelib.aws builds them: standard retries, `max_attempts` 4 (botocore reads it as
        # retries: 5 attempts in all)
        "config": Config(retries={"max_attempts": 4, "mode": "standard"}, connect_timeout=5, read_timeout=10),
    }


class FakeTime:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def faulty(endpoint: str) -> tuple[FaultInjector, Any, FakeTime]:
    """An injector hooked on a fresh session, its clients' factory, and its (fake) time."""
    fake = FakeTime()
    injector = FaultInjector(seed=7, sleep=fake.sleep, clock=fake.clock)
    session = _session()
    injector.install(session)

    def client(service: str) -> Any:
        return session.client(service, **_kwargs(endpoint))

    return injector, client, fake


def _item(ddb: Any, key: str) -> dict[str, Any] | None:
    return ddb.get_item(TableName=TABLE, Key={"id": {"S": key}}, ConsistentRead=True).get("Item")


def test_an_error_before_the_call_is_retried_by_the_sdk_and_never_applied(faulty: Any) -> None:
    injector, client, _ = faulty
    ddb = client("dynamodb")
    injector.configure({"kind": "error", "service": "dynamodb", "operation": "PutItem", "count": 2})
    ddb.put_item(TableName=TABLE, Item={"id": {"S": "e1"}})  # two throttled attempts, the third applies
    assert _item(ddb, "e1") is not None
    assert injector.injected == {"error": 2}

    injector.configure({"kind": "error", "service": "dynamodb", "operation": "PutItem", "count": ATTEMPTS})
    with pytest.raises(ClientError) as refused:
        ddb.put_item(TableName=TABLE, Item={"id": {"S": "e2"}})
    assert refused.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert _item(ddb, "e2") is None  # no attempt reached DynamoDB


@pytest.mark.parametrize(
    ("service", "error", "code", "status"),
    [
        ("dynamodb", "internal", "InternalServerError", 500),
        ("sqs", "throttle", "ThrottlingException", 400),
        ("sqs", "internal", "InternalFailure", 500),
        ("ses", "throttle", "Throttling", 400),
    ],
)
def test_errors_are_answered_in_each_services_protocol(
    faulty: Any, service: str, error: str, code: str, status: int
) -> None:
    injector, client, _ = faulty
    injector.configure({"kind": "error", "service": service, "error": error, "count": ATTEMPTS})
    calls = {
        "dynamodb": lambda c: c.describe_table(TableName=TABLE),
        "sqs": lambda c: c.list_queues(),
        "ses": lambda c: c.get_send_quota(),
    }
    with pytest.raises(ClientError) as refused:
        calls[service](client(service))
    assert refused.value.response["Error"]["Code"] == code
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert refused.value.response["ResponseMetadata"]["RetryAttempts"] == ATTEMPTS - 1  # the SDK retried it


def test_a_lost_answer_was_applied_and_the_sdk_repeats_the_call(faulty: Any) -> None:
    injector, client, _ = faulty
    ddb = client("dynamodb")
    injector.configure({"kind": "lost_answer", "service": "dynamodb", "operation": "PutItem"})
    with pytest.raises(ClientError) as met_itself:  # the retry meets the first attempt's write
        ddb.put_item(TableName=TABLE, Item={"id": {"S": "l1"}}, ConditionExpression="attribute_not_exists(id)")
    assert met_itself.value.response["Error"]["Code"] == "ConditionalCheckFailedException"

    injector.configure({"kind": "lost_answer", "service": "dynamodb", "operation": "UpdateItem"})
    ddb.update_item(
        TableName=TABLE,
        Key={"id": {"S": "l2"}},
        UpdateExpression="ADD n :one",
        ExpressionAttributeValues={":one": {"N": "1"}},
    )
    assert (_item(ddb, "l2") or {}).get("n") == {"N": "2"}  # counted twice: once per attempt
    assert injector.injected == {"lost_answer": 2}


def test_latency_waits_before_the_call(faulty: Any) -> None:
    injector, client, fake = faulty
    injector.configure({"kind": "latency", "service": "dynamodb", "seconds": 1.5, "count": 1})
    client("dynamodb").describe_table(TableName=TABLE)
    assert fake.slept == [1.5]


def test_an_outage_fails_every_matching_call_until_it_ends(faulty: Any) -> None:
    injector, client, fake = faulty
    ddb, sqs = client("dynamodb"), client("sqs")
    injector.configure({"kind": "outage", "service": "dynamodb", "seconds": 3})
    for _ in range(3):
        with pytest.raises(ClientError):
            ddb.describe_table(TableName=TABLE)
    sqs.list_queues()  # another service is up
    fake.now += 3
    ddb.describe_table(TableName=TABLE)
    assert injector.describe()["rules"] == [] and injector.injected == {"outage": 3 * ATTEMPTS}


def test_services_and_operations_outside_a_rule_are_untouched(faulty: Any) -> None:
    injector, client, _ = faulty
    injector.configure({"kind": "error", "service": "dynamodb", "operation": "PutItem", "rate": 1.0})
    ddb = client("dynamodb")
    ddb.describe_table(TableName=TABLE)
    client("sqs").list_queues()
    client("sts").get_caller_identity()  # not a service the product's faults reach
    assert injector.injected == {}


# --- the control server ------------------------------------------------------------------------


class FakeGateway:
    def __init__(self) -> None:
        self.posted: list[tuple[str, bytes]] = []

    def post(self, connection_id: str, data: bytes) -> None:
        if connection_id == "gone":
            raise Gone(connection_id)
        self.posted.append((connection_id, data))


@pytest.fixture
def control() -> Iterator[tuple[str, FaultInjector, FakeGateway]]:
    injector = FaultInjector(seed=1)
    server = ControlServer(0, injector)
    server.gateway = FakeGateway()  # type: ignore[assignment]
    server.generator = server.scheduler = None  # type: ignore[assignment]
    server.start()
    yield f"http://127.0.0.1:{server.port}", injector, server.gateway  # type: ignore[misc]
    server.stop()


def _http(method: str, url: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
    data = None if body is None else body if isinstance(body, bytes) else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            status, payload, headers = answer.status, answer.read(), dict(answer.headers)
    except urllib.error.HTTPError as exc:
        status, payload, headers = exc.code, exc.read(), dict(exc.headers)
    return status, json.loads(payload) if payload else None, {k.lower(): v for k, v in headers.items()}


def test_the_fault_api_adds_lists_and_removes_rules(control: Any) -> None:
    url, injector, _ = control
    status, body, _ = _http("POST", url + "/faults", {"kind": "error", "service": "sqs", "rate": 0.05})
    assert status == 201 and body["rules"][0]["kind"] == "error" and body["rules"][0]["rate"] == 0.05
    rule_id = body["rules"][0]["id"]
    status, body, _ = _http("POST", url + "/faults", {"seed": 3, "rules": [{"kind": "lost_delete", "count": 2}]})
    assert status == 201 and [r["kind"] for r in _http("GET", url + "/faults")[1]["rules"]] == ["lost_delete"]
    assert _http("GET", url + "/faults")[1]["seed"] == 3
    assert _http("DELETE", url + f"/faults/{rule_id}")[0] == 404  # replaced by the list
    assert _http("DELETE", url + f"/faults/{body['rules'][0]['id']}")[0] == 204
    _http("POST", url + "/faults", {"kind": "latency", "seconds": 0.1})
    assert _http("DELETE", url + "/faults")[0] == 204 and injector.rules == []


@pytest.mark.parametrize(
    ("spec", "named"),
    [
        ({"kind": "explode"}, "kind"),
        ({"kind": "error", "service": "s3"}, "service"),
        ({"kind": "error", "error": "teapot"}, "error"),
        ({"kind": "error", "rate": 2}, "rate"),
        ({"kind": "error", "rate": 0.1, "count": 2}, "rate or count"),
        ({"kind": "error", "count": 0}, "count"),
        ({"kind": "latency", "seconds": -1}, "seconds"),
        ({"kind": "outage", "seconds": 600}, "seconds"),
        ({"kind": "error", "colour": "red"}, "colour"),
        ({"rules": "all"}, "rules"),
        ([1], "object"),
    ],
)
def test_a_bad_rule_is_a_400_naming_what_is_wrong(control: Any, spec: Any, named: str) -> None:
    url, injector, _ = control
    status, body, _ = _http("POST", url + "/faults", spec)
    assert status == 400 and named in body["message"]
    assert injector.rules == []
    assert _http("POST", url + "/faults", b"{not json")[0] == 400


def test_the_management_api_fails_throttles_and_loses_answers_on_demand(control: Any) -> None:
    url, injector, gateway = control
    injector.configure({"kind": "error", "service": "apigatewaymanagementapi", "count": 1})
    status, body, headers = _http("POST", url + "/@connections/c1", b"hello")
    assert (status, headers["x-amzn-errortype"]) == (429, "LimitExceededException") and gateway.posted == []
    injector.configure({"kind": "error", "error": "internal", "service": "apigatewaymanagementapi", "count": 1})
    assert _http("POST", url + "/@connections/c1", b"hello")[0] == 500
    injector.configure({"kind": "lost_answer", "service": "apigatewaymanagementapi", "operation": "PostToConnection"})
    with pytest.raises((urllib.error.URLError, ConnectionError, OSError)):  # closed without an answer
        _http("POST", url + "/@connections/c1", b"hello")
    assert gateway.posted == [("c1", b"hello")]  # applied all the same
    assert _http("POST", url + "/@connections/c1", b"again")[0] == 200
    assert _http("POST", url + "/@connections/gone", b"x")[0] == 410


def test_the_apps_management_client_retries_a_lost_answer_and_posts_twice(
    control: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chalicelib.realtime import management

    monkeypatch.setattr(management, "sleep", lambda seconds: None)
    url, injector, gateway = control
    api = management.ManagementApi(url, management.Signer("us-east-1", lambda: ("testing", "testing", None)))
    injector.configure({"kind": "lost_answer", "service": "apigatewaymanagementapi"})
    try:
        api.post_to_connection(ConnectionId="c1", Data=b"frame")
    finally:
        api.close()
    assert gateway.posted == [("c1", b"frame"), ("c1", b"frame")]  # what a lost answer does on AWS


# --- bursts ------------------------------------------------------------------------------------


class _Hello(JsonHandler):
    def do_GET(self) -> None:  # noqa: N802
        time.sleep(0.01)
        self.reply(200, {"ok": True})


BURST = 200


def test_the_http_servers_take_a_burst_of_connections_without_resetting_any() -> None:
    server = Server(0, _Hello).start()
    try:
        assert server.socket.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN) == 1
        assert server.request_queue_size >= 512
        barrier = threading.Barrier(BURST)

        def call(_: int) -> int:
            barrier.wait(10)
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}/", timeout=30) as answer:
                return answer.status

        with ThreadPoolExecutor(BURST) as pool:
            assert list(pool.map(call, range(BURST))) == [200] * BURST
    finally:
        server.stop()


def test_the_websocket_gateway_takes_a_burst_of_handshakes() -> None:
    from websockets.asyncio.client import connect

    gateway = WebSocketGateway({"$connect": lambda event, context: {"statusCode": 200}}, 0)
    gateway.start()

    async def burst() -> int:
        async def one() -> bool:
            async with connect(f"ws://127.0.0.1:{gateway.port}/", open_timeout=30) as ws:
                await ws.send(json.dumps({"action": "ping"}))
                return True

        return sum(await asyncio.gather(*(one() for _ in range(BURST))))

    try:
        assert asyncio.run(burst()) == BURST
    finally:
        gateway.stop(2.0)


def test_the_stacks_moto_applies_transactions_while_other_writes_run(
    endpoint: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """moto deep-copies a table for each transaction; concurrent writes to it broke the copy (a
    500) before local.moto_process served one DynamoDB request at a time."""
    from local.moto_process import serialize_dynamodb

    serialize_dynamodb(monkeypatch.setattr)
    ddb = _session().client("dynamodb", **{**_kwargs(endpoint), "config": Config(retries={"total_max_attempts": 1})})
    for n in range(80):
        ddb.put_item(TableName=TABLE, Item={"id": {"S": f"bulk{n}"}, "pad": {"S": "x" * 200}})

    def transact(n: int) -> None:
        ddb.transact_write_items(
            TransactItems=[{"Update": _add(f"t{n % 5}")}, {"Update": _add(f"u{n % 7}")}],
        )

    def put(n: int) -> None:
        ddb.put_item(TableName=TABLE, Item={"id": {"S": f"p{n}"}})

    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: transact(n) if n % 2 else put(n), range(OPERATIONS)))
    expected = sum(1 for n in range(OPERATIONS) if n % 2 and n % 5 == 0)
    assert int((_item(ddb, "t0") or {})["n"]["N"]) == expected  # every transaction applied, once


OPERATIONS = 200


def _add(key: str) -> dict[str, Any]:
    return {
        "TableName": TABLE,
        "Key": {"id": {"S": key}},
        "UpdateExpression": "ADD n :one",
        "ExpressionAttributeValues": {":one": {"N": "1"}},
    }


def test_each_fault_is_logged_with_the_tables_it_hit(faulty: Any, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="local")
    injector, client, _ = faulty
    injector.configure({"kind": "latency", "service": "dynamodb", "operation": "TransactWriteItems", "seconds": 0.1})
    client("dynamodb").transact_write_items(TransactItems=[{"Update": _add("log1")}])
    assert any("latency dynamodb.TransactWriteItems on faults-test" in r.getMessage() for r in caplog.records)
