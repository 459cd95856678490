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


class _PagedTable:
    """A table whose Query answers three pages, recording the arguments of each call."""

    def __init__(self) -> None:
        self.calls: list[dict[str, object]] = []

    def query(self, **kwargs: object) -> dict[str, object]:
        self.calls.append(dict(kwargs))
        page = len(self.calls)
        result: dict[str, object] = {"Items": [{"n": page}], "Count": 1}
        if page < 3:
            result["LastEvaluatedKey"] = {"k": page}
        return result


def test_query_pages_follows_last_evaluated_key_to_the_last_page():
    table = _PagedTable()
    pages = list(aws.query_pages(table, KeyConditionExpression="k = :k"))
    assert [p["Items"] for p in pages] == [[{"n": 1}], [{"n": 2}], [{"n": 3}]]
    assert [c.get("ExclusiveStartKey") for c in table.calls] == [None, {"k": 1}, {"k": 2}]
    assert all(c["KeyConditionExpression"] == "k = :k" for c in table.calls)


def test_query_pages_reads_no_further_than_the_caller_iterates():
    table = _PagedTable()
    first = next(aws.query_pages(table))
    assert first["Items"] == [{"n": 1}] and len(table.calls) == 1
