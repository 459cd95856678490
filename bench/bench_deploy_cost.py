"""What a job costs on AWS: the requests Inkwell makes per job, measured, priced at list prices.

Runs jobs through the real `jobs.enqueue` and a `Worker` on moto (a no-op processor, no holds,
guards or listeners, so the figure is the job machinery's own cost; a processor's work comes on
top), counts every AWS request the code makes per job with the same hook the IAM check uses
(`aws.session().events`), and prices them with us-east-1 list prices (November 2026). docs/operations.md (What it costs) quotes the output.
"""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

JOBS = 50
QUEUE, JOB_TYPE = "emails", "send"  # batch size 10

# us-east-1 list prices, USD
SQS_PER_MILLION = 0.40  # standard queue requests (64 KB chunks), after 1M free per month
LAMBDA_PER_MILLION = 0.20  # invocations
LAMBDA_PER_GB_SECOND = 0.0000166667  # x86
DDB_WRITE_PER_MILLION = 0.625  # on-demand write request units
DDB_READ_PER_MILLION = 0.125  # on-demand read request units
JOB_SECONDS, MEMORY_GB = 0.2, 0.5  # assumed Lambda time per job (I/O bound), 512 MB functions
INDEX_FACTOR = 2  # the jobs table's two indexes (projection ALL) roughly double its writes

WRITE_UNITS = {"PutItem": 1, "UpdateItem": 1, "DeleteItem": 1}  # items under 1 KB
READ_UNITS = {"GetItem": 0.5, "Query": 0.5}  # eventually consistent, under 4 KB


def _measure() -> tuple[Counter[str], float]:
    from moto import mock_aws

    from chalicelib import aws, catalog, config, jobs
    from chalicelib.jobs import processor, service, worker
    from infra import provision

    os.environ.update({"INKWELL_STAGE": "bench", "AWS_DEFAULT_REGION": "us-east-1"})
    os.environ.update({"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"})
    config.reset()
    aws.reset()
    calls: Counter[str] = Counter()
    units = {"write": 0.0, "read": 0.0}

    def count(params: dict[str, Any], model: Any, **_: Any) -> None:
        op = model.name
        calls[f"{model.service_model.service_name}:{op}"] += 1
        if op in WRITE_UNITS:
            units["write"] += WRITE_UNITS[op]
        elif op in READ_UNITS:
            units["read"] += READ_UNITS[op]
        elif op == "TransactWriteItems":
            units["write"] += 2 * len(params.get("TransactItems", []))
        elif op == "BatchWriteItem":
            units["write"] += sum(len(v) for v in params.get("RequestItems", {}).values())

    with mock_aws():
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        stand_in = processor.Processor(QUEUE, JOB_TYPE, lambda job, ctx: {"ok": True})
        aws.reset()  # a new session, and clients built after the counter is attached to it
        aws.session().events.register("before-parameter-build", count)
        import boto3

        # the poller is Lambda's, not Inkwell's: its own client, not counted with the code's
        sqs = boto3.client("sqs", region_name="us-east-1")
        url = aws.queue_url(QUEUE)
        bare = worker.Worker(
            catalog.queue(QUEUE), service.store(), service.queues(), find=lambda queue, job_type: stand_in
        )
        batch = catalog.queue(QUEUE).batch_size
        for i in range(JOBS):
            jobs.enqueue(QUEUE, JOB_TYPE, {"n": i}, idempotency_key=f"bench-{i}")
        # Lambda's poller makes the receive and delete requests, and they are billed too
        polled = 0
        while True:
            messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=batch, AttributeNames=["All"]).get(
                "Messages", []
            )
            polled += 1
            if not messages:
                break
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": m.get("Attributes", {}),
                        "eventSource": "aws:sqs",
                    }
                    for m in messages
                ]
            }
            response = bare.handle(event)
            failed = {f["itemIdentifier"] for f in response["batchItemFailures"]}
            entries = [
                {"Id": str(k), "ReceiptHandle": m["ReceiptHandle"]}
                for k, m in enumerate(messages)
                if m["MessageId"] not in failed
            ]
            if entries:
                sqs.delete_message_batch(QueueUrl=url, Entries=entries)
                polled += 1
            calls["lambda:Invoke"] += 1
    calls["poller:sqs requests"] = polled
    calls["ddb:write units"] = int(units["write"])
    calls["ddb:read units"] = int(units["read"] * 2) // 2
    return calls, units["read"]


def main() -> None:
    started = time.perf_counter()
    calls, reads = _measure()
    per_job = {k: v / JOBS for k, v in calls.items()}
    sqs_code = sum(v for k, v in per_job.items() if k.startswith("sqs:"))
    writes = per_job["ddb:write units"] * INDEX_FACTOR
    sqs_total = sqs_code + per_job["poller:sqs requests"]
    invocations = per_job["lambda:Invoke"]
    read_units = reads / JOBS
    million = 1_000_000
    cost = {
        "SQS requests": sqs_total * SQS_PER_MILLION,
        "Lambda invocations": invocations * LAMBDA_PER_MILLION,
        "Lambda compute": million * JOB_SECONDS * MEMORY_GB * LAMBDA_PER_GB_SECOND,
        "DynamoDB writes": writes * DDB_WRITE_PER_MILLION,
        "DynamoDB reads": read_units * DDB_READ_PER_MILLION,
    }
    print(f"deploy cost: {JOBS} no-op jobs on {QUEUE} through enqueue + worker (moto), per job:")
    for key in sorted(k for k in per_job if ":" in k and not k.startswith(("ddb:", "poller:", "lambda:"))):
        print(f"  {key:32s} {per_job[key]:6.2f}")
    print(f"  {'SQS requests by the poller':32s} {per_job['poller:sqs requests']:6.2f}  (receive + delete batches)")
    print(f"  {'Lambda invocations':32s} {invocations:6.2f}  (batches of the queue's batch size)")
    print(f"  {'DynamoDB write units':32s} {per_job['ddb:write units']:6.2f}  (1 per write, 2 per transactional item)")
    print(f"  {'  with index writes':32s} {writes:6.2f}  (x{INDEX_FACTOR}, estimated)")
    print(f"  {'DynamoDB read units':32s} {read_units:6.2f}")
    print("per million jobs, USD (us-east-1 list prices):")
    for key, value in cost.items():
        print(f"  {key:32s} {value:8.2f}")
    print(f"  {'total':32s} {sum(cost.values()):8.2f}")
    print(f"(measured in {time.perf_counter() - started:.1f} s)")


if __name__ == "__main__":
    main()
