"""AWS requests per article-generation job, end to end, against the minimum derived by hand.

One job: `POST /api/articles/{id}/generate` (the API Lambda) through the worker (the articles
queue's Lambda) to PUBLISHED, on moto in-process, with the webhook a local HTTP server. Every
request Inkwell's boto3 clients make is counted by a botocore `before-call` hook on the session.
The SQS ReceiveMessage / DeleteMessage that Lambda's event source mapping makes are the Lambda
service's, not Inkwell's: they are made here with a client outside the hook and shown apart.
Subscribers of the in-process events (realtime fan-out, audit log) and the worker's holds (the
dashboard's pause check) are their capabilities' cost: the job is measured without them, and the
total with them is printed too.

The minimum, by hand (what any implementation of the contract must do per job):

  API Lambda
    1. GetItem sessions      the bearer token must be checked for revocation (logout)
    2. UpdateItem articles   the conditional DRAFT -> PROCESSING; the author check rides in the
                             condition and ALL_NEW returns title/topic/keywords for the payload
    3. PutItem jobs          the job record (`GET /api/jobs/{id}` answers before the job runs)
    4. SendMessage           the message on the articles queue
    5. a write audit_events  `article.generate` is a contract action: it must reach the trail
  worker Lambda
    6. UpdateItem jobs       the claim (conditional, with the lease; returns the payload)
    7. UpdateItem jobs       progress: at least one report between start and end
    8. PutItem webhook_logs  every webhook call is logged
    9. UpdateItem articles   PROCESSING -> PUBLISHED with the content
   10. UpdateItem jobs       completed, with the result
  = 10. Retention (the newest 100 completed per queue) is left out of the minimum: it can be
  amortised over many jobs, and is: a container trims at its first and then every TRIM_EVERY-th
  (10) completion, one Query of the completed index that reads up to 125 whole records (the
  index projects them all; the bench counts what it reads) plus one BatchWriteItem of what is
  past retention, 0.2 requests and ~10 records read per job. Ours adds, per job, a second
  progress report (10 and 90) and, per attempt, the write of its log (one UpdateItem: the
  generator logs its steps, `ctx.log`): 12 warm and 12.2 in steady state (1.22x), within the 1.5x target.
  A cold container adds GetQueueUrl once and its first trim.

With the subscribers and holds (realtime, audit, pause, rate limiter, job metrics): a realtime
event goes only to rooms that have a counter (a connection joined them in the last 30 days; a
room nobody can resume is neither stored nor posted), and an event to a room with a counter but
no member waits for the end of the invocation (the middleware's realtime flush). An invocation
reads a room's counter (does it exist, has it members?) at most every 2 s: an event to several
rooms reads those it has not read lately in one BatchGetItem (article.status: 3 rooms,
job.progress and job.completed: 2), an event to one room tries its reservation instead (a
conditional UpdateItem). At the end, each room with waiting events takes their seqs in one
UpdateItem (n consecutive seqs; the counter also counts the room's members) and all their
envelopes go in one BatchWriteItem; a room's members are read (one Query) only while it has
some. Each invocation's audit flush sends all its events as the admin room's `activity` at the
cost of one event, before the realtime flush. The audit listeners add one write per flush, the
pause hold one GetItem per record, the rate limiter one GetItem of the queue's limit at most
every 5 s and one UpdateItem per start when a limit is set (none here), the job metrics one
UpdateItem per invocation. Measured twice: nobody connected ever (3 BatchGetItem: the API's
article.status, the worker's first progress and its job.completed for the author's room), and
once an admin and the author had connected (their rooms' counters exist, nobody connected now):
the same reads, then per invocation one UpdateItem for the admin room, one for the author's and
one BatchWriteItem (the API: article.status and activity; the worker: progress 10 and 90,
job.completed, article.status PUBLISHED and activity). The worker runs inside app.py's
middleware as its SQS handler does, so its end-of-invocation flushes are counted too. The API
and the worker run in one process here, but each invocation reads the rooms afresh, as two
Lambdas would.
"""

from __future__ import annotations

import http.server
import json
import os
import threading
import time
import uuid
from collections import Counter
from typing import Any

MINIMUM = 10
TARGET = 1.5


class _Generator(http.server.BaseHTTPRequestHandler):
    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        raw = json.dumps({"content": "Generated for the bench."}).encode()
        self.send_response(200)
        self.send_header("Content-Length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    def log_message(self, *args: Any) -> None:
        pass


class _Context:
    aws_request_id = "bench"

    def __init__(self, seconds: float) -> None:
        self.deadline = time.monotonic() + seconds

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - time.monotonic()) * 1000)


def _environment(webhook_url: str) -> None:
    os.environ.update(
        {
            "INKWELL_STAGE": "test",
            "AWS_DEFAULT_REGION": "us-east-1",
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "JWT_SECRET": "bench-jwt-secret-" + "0" * 48,
            "WEBHOOK_SECRET": "bench-webhook-secret",
            "INKWELL_SCRYPT_N": "1024",
            "ARTICLE_WEBHOOK_URL": webhook_url,
        }
    )
    for key in ("INKWELL_AWS_ENDPOINT", "INKWELL_SECRETS_PREFIX"):
        os.environ.pop(key, None)


def main() -> None:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Generator)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    _environment(f"http://127.0.0.1:{server.server_address[1]}/generate")
    try:
        _run()
    finally:
        server.shutdown()
        server.server_close()


def _run() -> None:
    import boto3
    from chalice.test import Client
    from moto import mock_aws

    from chalicelib import aws, catalog, config, events, runtime
    from chalicelib.auth import service as auth
    from chalicelib.jobs import service
    from chalicelib.jobs.worker import Worker
    from infra import provision

    config.reset()
    aws.reset()
    with mock_aws():
        counted: Counter[str] = Counter()
        counting = {"on": False}

        def hook(model: Any, **_: Any) -> None:
            if counting["on"]:
                counted[f"{model.service_model.service_name}.{model.name}"] += 1

        aws.session().events.register("before-call", hook)
        read: Counter[str] = Counter()  # items DynamoDB read for Queries and Scans (ScannedCount)

        def reading(model: Any, parsed: dict[str, Any], **_: Any) -> None:
            if counting["on"] and "ScannedCount" in parsed:
                read[model.name] += int(parsed["ScannedCount"])

        aws.session().events.register("after-call", reading)
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        lambda_service = boto3.session.Session().client("sqs", region_name="us-east-1")  # outside the hook

        import app as app_module

        user = auth.create_user("bench@example.com", "bench password, long enough", "editor")
        with Client(app_module.app, stage_name="dev") as client:
            token = auth.login(user["email"], "bench password, long enough", None)["token"]
            headers = {"authorization": f"Bearer {token}", "content-type": "application/json"}

            def article() -> str:
                body = json.dumps({"title": "Bench", "topic": "requests per job"}).encode()
                return json.loads(client.http.post("/api/articles", headers=headers, body=body).body)["id"]

            def one_job(label: str) -> tuple[Counter[str], Counter[str]]:
                article_id = article()
                counted.clear()
                counting["on"] = True
                response = client.http.post(f"/api/articles/{article_id}/generate", headers=headers, body=b"")
                assert response.status_code == 202, response.body
                mapping: Counter[str] = Counter()
                url = lambda_service.get_queue_url(QueueName=config.get().resource_name("articles"))["QueueUrl"]
                messages = lambda_service.receive_message(
                    QueueUrl=url, MaxNumberOfMessages=10, AttributeNames=["All"], WaitTimeSeconds=0
                )["Messages"]
                mapping["sqs.ReceiveMessage"] += 1
                event = {
                    "Records": [
                        {
                            "messageId": m["MessageId"],
                            "receiptHandle": m["ReceiptHandle"],
                            "body": m["Body"],
                            "attributes": m["Attributes"],
                        }
                        for m in messages
                    ]
                }
                # as app.py's SQS handler runs it: inside an invocation, whose end flushes the audit log
                result = app_module.middleware.run(
                    runtime.Invocation(kind="sqs", request_id="bench"),
                    delivering["to"]().handle,
                    event,
                    _Context(catalog.queue("articles").function_timeout),
                )
                assert result == {"batchItemFailures": []}, result
                counting["on"] = False
                for m in messages:
                    lambda_service.delete_message(QueueUrl=url, ReceiptHandle=m["ReceiptHandle"])
                    mapping["sqs.DeleteMessage"] += 1
                status = json.loads(client.http.get(f"/api/articles/{article_id}", headers=headers).body)["status"]
                assert status == "PUBLISHED", status
                return Counter(counted), mapping

            # First the job machinery alone: no listeners, a worker without holds or guards...
            wiring = {kind: events.listeners(kind) for kind in events.EVENT_TYPES}
            events.subscribe_all({})
            delivering = {"to": lambda: Worker(catalog.queue("articles"), service.store(), service.queues())}
            try:
                cold, mapping = one_job("cold")
                warm, _ = one_job("warm")
                _fill_completed(catalog.queue("articles").keep_completed)
                steady, _ = one_job("steady")
                # the trim a container makes at every TRIM_EVERY-th completion, with retention full
                _fill_completed(1)
                counted.clear()
                read.clear()
                counting["on"] = True
                service.store().trim("articles", "completed", catalog.queue("articles").keep_completed)
                counting["on"] = False
                trim, trim_read = Counter(counted), sum(read.values())
            finally:
                events.subscribe_all(wiring)
            # ...then as deployed: app.py's listeners, and its worker with the pause hold and lease guard.
            delivering["to"] = lambda: app_module.job_worker("articles")
            with_subscribers, _ = one_job("with subscribers")
            # ...and once an admin and the author have connected (their rooms have counters), gone since.
            from chalicelib.realtime import live, rooms

            for room in (rooms.ADMIN, rooms.user_room(user["id"])):
                live.event_log().open_room(room, joined=0)
            rooms_joined, _ = one_job("rooms joined before")

    from chalicelib.jobs.worker import TRIM_EVERY

    trimming = sum(trim.values()) / TRIM_EVERY
    print("jobs: AWS requests per article-generation job (route -> worker -> PUBLISHED)")
    print(f"  minimum derived by hand: {MINIMUM} (see bench/bench_job_requests.py)")
    print(
        f"  trimming (retention full), once every {TRIM_EVERY} completions of a container: "
        + ", ".join(f"{k} {v}" for k, v in sorted(trim.items()))
        + f", reading {trim_read} whole job records: {trimming:.1f} requests and"
        f" {trim_read / TRIM_EVERY:.1f} records read per job (counted in the steady state below)"
    )
    steady_total = sum(steady.values()) + trimming
    for label, total in (
        ("cold container (trims)", float(sum(cold.values()))),
        ("warm (does not trim)", float(sum(warm.values()))),
        ("steady state (retention full)", steady_total),
    ):
        verdict = "ok" if total <= TARGET * MINIMUM else "OVER TARGET"
        print(f"  {label:31} {total:5.1f}  = {total / MINIMUM:.2f}x minimum  [{verdict}, target {TARGET}x]")
    print("  by operation (warm): " + ", ".join(f"{k} {v}" for k, v in sorted(warm.items())))
    print(
        "  steady state with event subscribers and holds (realtime, audit, pause, rate limiter, job metrics),"
        f" nobody connected: {sum(with_subscribers.values()) + trimming:.1f}"
    )
    extra = with_subscribers - steady
    print("    of which the subscribers and holds: " + ", ".join(f"{k} {v}" for k, v in sorted(extra.items())))
    print(
        "  the same once an admin and the author had connected (their rooms kept; no live connection):"
        f" {sum(rooms_joined.values()) + trimming:.1f}"
    )
    extra = rooms_joined - steady
    print("    of which the subscribers and holds: " + ", ".join(f"{k} {v}" for k, v in sorted(extra.items())))
    print(
        "  by Lambda's event source mapping, not counted: " + ", ".join(f"{k} {v}" for k, v in sorted(mapping.items()))
    )


def _fill_completed(count: int) -> None:
    """Put the articles queue's completed retention at capacity (written directly, not counted)."""
    from chalicelib import timeutil
    from chalicelib.jobs import service

    store = service.store()
    with store.table.batch_writer() as writer:
        for i in range(count):
            record = store.new_record("articles", "publish", {"article_id": uuid.uuid4().hex}, max_attempts=3)
            stamp = timeutil.iso_ms(timeutil.now() - 3600 + i)
            record.update(state="completed", queue_state="articles#completed", updated_at=stamp)
            writer.put_item(Item=record)


if __name__ == "__main__":
    main()
