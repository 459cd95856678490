"""The embedded AWS: moto's server in a process of its own (`local.moto_process`), holding what a deployment would create.

The catalogue's tables and queues (through `infra.provision`, as tests and deploys do), and, as
`chalice deploy` would: one Lambda function per SQS and schedule handler, an SQS event source
mapping per queue handler (its `State` is what pause/resume switches, and what the SQS emulator
obeys; moto never delivers to it itself) and the stage's EventBridge Scheduler group with a
schedule per catalogue schedule (moto stores them; `local.scheduler` fires them). Functions are
never run by moto: the emulators in this package call the handlers in-process.
"""

from __future__ import annotations

import errno
import io
import json
import subprocess
import sys
import zipfile
from collections.abc import Iterable

from chalicelib import aws, catalog
from chalicelib.schedules import remote
from infra import provision
from local.sources import ScheduleSource, SqsSource

ACCOUNT = "123456789012"  # moto's default account
ROLE_NAME = "inkwell-local-lambda"
_TRUST = {
    "Version": "2012-10-17",
    "Statement": [{"Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"}, "Action": "sts:AssumeRole"}],
}


class EmulatedAws:
    """moto's server in a process of its own (`local.moto_process`)."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.started = False
        self._process: subprocess.Popen[str] | None = None

    def start(self) -> str:
        self._process = subprocess.Popen(
            [sys.executable, "-m", "local.moto_process", str(self.port)], stdout=subprocess.PIPE, text=True
        )
        assert self._process.stdout is not None
        first = self._process.stdout.readline().strip()
        if not first.isdigit():
            self._process.wait()
            if first.startswith(f"error {errno.EADDRINUSE} "):
                raise OSError(errno.EADDRINUSE, f"port {self.port} is in use")
            raise RuntimeError(f"moto's server did not start: {first or 'no answer'}")
        self.started = True
        self.port = int(first)
        return self.endpoint

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self) -> None:
        if self._process is not None and self._process.poll() is None:
            self._process.terminate()
            try:
                self._process.wait(1.0)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
        if self._process is not None and self._process.stdout is not None:
            self._process.stdout.close()

    def provision(self, extra_queues: Iterable[catalog.Queue] = ()) -> dict[str, str]:
        """The catalogue's tables and queues, plus `extra_queues` (tests); logical name -> URL."""
        urls = provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        urls.update(provision.create_queues(aws.client("sqs"), queues=list(extra_queues)))
        provision.create_export_bucket(aws.client("s3"))
        return urls

    def deploy(self, queue_handlers: list[SqsSource], schedules: list[ScheduleSource]) -> None:
        """Functions, event source mappings and EventBridge Scheduler schedules (a group of the
        stage's) for the app's handlers (fills in their ids)."""
        lam, sqs = aws.client("lambda"), aws.client("sqs")
        role = aws.client("iam").create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps(_TRUST))
        code = _placeholder_zip()
        functions = [(q.function_name, q.name, q.timeout) for q in queue_handlers]
        functions += [(s.function_name, s.name, 60) for s in schedules]
        for function_name, handler_name, timeout in functions:
            lam.create_function(
                FunctionName=function_name,
                Runtime="python3.11",
                Role=role["Role"]["Arn"],
                Handler="app." + handler_name,
                Code={"ZipFile": code},
                Timeout=timeout,
            )
        for q in queue_handlers:
            q.queue_url = sqs.get_queue_url(QueueName=q.queue_name)["QueueUrl"]
            q.queue_arn = sqs.get_queue_attributes(QueueUrl=q.queue_url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            scaling = {"ScalingConfig": {"MaximumConcurrency": q.concurrency}} if q.concurrency else {}
            mapping = lam.create_event_source_mapping(
                FunctionName=q.function_name,
                EventSourceArn=q.queue_arn,
                BatchSize=q.batch_size,
                MaximumBatchingWindowInSeconds=q.batching_window,
                FunctionResponseTypes=["ReportBatchItemFailures"],
                Enabled=True,
                **scaling,
            )
            q.mapping_uuid = mapping["UUID"]
        _detach_moto_delivery()
        arns = {
            s.name: lam.get_function(FunctionName=s.function_name)["Configuration"]["FunctionArn"] for s in schedules
        }
        scheduler, events = aws.client("scheduler"), aws.client("events")
        provision.create_schedules(scheduler, lambda handler: arns.get(handler, ""), role["Role"]["Arn"])
        group = remote.group_name()
        for s in schedules:
            if s.schedule:
                s.schedule_arn = scheduler.get_schedule(Name=s.schedule, GroupName=group)["Arn"]
            else:  # a Chalice `@app.schedule` handler: its rule
                s.rule_arn = events.put_rule(
                    Name=s.function_name, ScheduleExpression=s.expression, State="ENABLED", Description=s.description
                )["RuleArn"]
                events.put_targets(Rule=s.function_name, Targets=[{"Id": "1", "Arn": arns[s.name]}])


def _detach_moto_delivery() -> None:
    # moto delivers a new message to a mapped function synchronously inside SendMessage (through
    # Docker); that would consume messages and bump their receive counts. Our poller is the
    # delivery path, as Lambda's own poller is on AWS. The stack's moto process never attaches
    # (local/moto_process.py); a moto in this process (the functional tests) is cleared here. The
    # mappings themselves (state, batch size) stay readable and updatable through the API.
    from moto.sqs.models import sqs_backends

    for region_backends in sqs_backends.values():
        for backend in region_backends.values():
            for queue in backend.queues.values():
                queue.lambda_event_source_mappings.clear()


def _placeholder_zip() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("README", "The local stack runs this function's handler in-process.\n")
    return buffer.getvalue()
