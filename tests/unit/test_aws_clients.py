"""chalicelib.aws: clients are shared (botocore clients are thread-safe), DynamoDB resources are
per thread (boto3 resources are not), and reset() rebuilds both."""

from __future__ import annotations

import threading

from chalicelib import aws


def _resource_in_a_thread() -> object:
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(aws.table("jobs").meta.client))
    thread.start()
    thread.join()
    return found[0]


def test_each_thread_has_its_own_dynamodb_resource():
    mine = aws.table("jobs").meta.client
    assert aws.table("users").meta.client is mine  # one resource per thread, whatever the table
    other = _resource_in_a_thread()
    assert other is not mine and _resource_in_a_thread() is not other


def test_a_thread_builds_each_table_once():
    assert aws.table("jobs") is aws.table("jobs") and aws.table("users") is not aws.table("jobs")
    assert aws.table("jobs").name == "inkwell-test-jobs"


def test_reset_builds_new_clients_and_resources():
    client, resource = aws.client("sqs"), aws.table("jobs").meta.client
    table = aws.table("jobs")
    aws.reset()
    assert aws.client("sqs") is not client and aws.table("jobs").meta.client is not resource
    assert aws.table("jobs") is not table


def test_clients_are_shared_between_threads():
    found: list[object] = []
    thread = threading.Thread(target=lambda: found.append(aws.client("sqs")))
    thread.start()
    thread.join()
    assert found == [aws.client("sqs")]
