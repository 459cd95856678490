"""The local stack's moto server process (`local.moto_process`) over real sockets: it keeps HTTP
connections open, so botocore's pooled connections serve many AWS calls each."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from typing import Any

import pytest

from local.emulated_aws import EmulatedAws


@pytest.fixture
def moto_server() -> Iterator[EmulatedAws]:
    server = EmulatedAws(0)
    server.start()
    yield server
    server.stop()


def _client(server: EmulatedAws, service: str) -> Any:
    import boto3

    return boto3.session.Session().client(
        service,
        endpoint_url=server.endpoint,
        region_name="us-east-1",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _connections_opened(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Count the TCP connections this process opens from now on."""
    opened: list[int] = []
    connect = socket.socket.connect

    def counted(self: socket.socket, address: Any) -> Any:
        opened.append(1)
        return connect(self, address)

    monkeypatch.setattr(socket.socket, "connect", counted)
    return opened


def test_one_connection_serves_many_calls_of_every_kind(moto_server, monkeypatch):
    # GIVEN a table and a queue, and clients that already hold a connection each
    dynamodb, sqs = _client(moto_server, "dynamodb"), _client(moto_server, "sqs")
    dynamodb.create_table(
        TableName="t",
        KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    url = sqs.create_queue(QueueName="q")["QueueUrl"]
    opened = _connections_opened(monkeypatch)
    # WHEN they make 20 calls each (bodies read in full or not at all, errors included)
    for i in range(10):
        dynamodb.put_item(TableName="t", Item={"id": {"S": str(i)}, "body": {"S": "x" * 5000}})
        assert dynamodb.get_item(TableName="t", Key={"id": {"S": str(i)}})["Item"]["body"]["S"] == "x" * 5000
        sqs.send_message(QueueUrl=url, MessageBody=f"m{i}")
        with pytest.raises(dynamodb.exceptions.ResourceNotFoundException):
            dynamodb.get_item(TableName="missing", Key={"id": {"S": "1"}})
    assert len(sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]) == 10
    # THEN no call needed a new connection
    assert opened == []


def test_concurrent_clients_each_keep_their_connection(moto_server, monkeypatch):
    sqs = [_client(moto_server, "sqs") for _ in range(4)]
    url = sqs[0].create_queue(QueueName="q")["QueueUrl"]
    for client in sqs:
        client.get_queue_attributes(QueueUrl=url)
    opened = _connections_opened(monkeypatch)
    start = threading.Barrier(len(sqs))

    def calls(client: Any) -> None:
        start.wait(5)
        for i in range(10):
            client.send_message(QueueUrl=url, MessageBody=str(i))

    threads = [threading.Thread(target=calls, args=(client,)) for client in sqs]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert opened == []
    attributes = sqs[0].get_queue_attributes(QueueUrl=url, AttributeNames=["ApproximateNumberOfMessages"])
    assert attributes["Attributes"]["ApproximateNumberOfMessages"] == "40"
