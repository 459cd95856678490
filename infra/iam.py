"""Least-privilege IAM for Inkwell's Lambda functions, declared once, per resource.

`ACCESS` lists, per resource, the AWS actions the code calls; `PLATFORM` the ones AWS itself
performs with the functions' role (the SQS event-source poller, CloudWatch Logs). `policy()`
renders both into one stage's policy, scoped to that stage's ARNs and with no wildcard action:
as plain JSON for `.chalice/policy-<stage>.json` (the `chalice deploy` path), or with
`${AWS::Region}`-style placeholders for the CloudFormation template (`chalice package`).

The test suite records every AWS operation the code calls (`tests/aws_recorder.py` maps each one
with `grants_for_call`), and `tests/test_iam_policy.py` fails when ACCESS lacks one or grants
one that nothing calls. When you add an AWS call, add its action here, under its resource.

Resource keys: `table:<name>` (a catalogue table and its indexes), `queue:<name>` / `dlq:<name>`
(a catalogue queue / its dead-letter queue; `queue:*`, `dlq:*` mean every one), `secret:*` (the
SSM parameters of `config.SECRETS`), `websocket` (the WebSocket API's connections), `email`
(SES identities), `event-source-mapping` (this stage's SQS triggers), `logs`, and `*` (actions
that IAM only grants on every resource).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse

from chalicelib import catalog, config

Grant = tuple[str, str]  # (action, resource key)

ACCESS: dict[str, tuple[str, ...]] = {
    "table:users": ("dynamodb:PutItem", "dynamodb:Query"),
    "table:sessions": (
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
    ),
    "table:login_attempts": ("dynamodb:BatchWriteItem", "dynamodb:Query"),
    "table:jobs": (
        "dynamodb:BatchWriteItem",
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ),
    "table:schedules": ("dynamodb:BatchGetItem", "dynamodb:GetItem", "dynamodb:UpdateItem"),
    "table:articles": (
        "dynamodb:BatchGetItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ),
    "table:analytics_events": ("dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:Query"),
    "table:webhook_logs": ("dynamodb:BatchWriteItem", "dynamodb:PutItem", "dynamodb:Query"),
    "table:ws_tickets": ("dynamodb:DeleteItem", "dynamodb:PutItem"),
    "table:ws_connections": (
        "dynamodb:BatchWriteItem",  # the cleanup/orphans sweep of expired connections
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ),
    "table:ws_members": ("dynamodb:BatchWriteItem", "dynamodb:DeleteItem", "dynamodb:PutItem", "dynamodb:Query"),
    "table:ws_events": ("dynamodb:BatchGetItem", "dynamodb:BatchWriteItem", "dynamodb:Query", "dynamodb:UpdateItem"),
    "table:settings": (
        "dynamodb:DeleteItem",
        "dynamodb:GetItem",
        "dynamodb:PutItem",
        "dynamodb:Query",
        "dynamodb:UpdateItem",
    ),
    "table:audit_events": ("dynamodb:BatchWriteItem", "dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"),
    "table:audit_digests": ("dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:Query"),
    # every queue: enqueue, retry with backoff (visibility), look up URLs
    "queue:*": ("sqs:SendMessage", "sqs:ChangeMessageVisibility", "sqs:GetQueueUrl"),
    # every dead-letter queue: the worker's dead letters, the dashboard's depth, retry-failed
    # (a message move task, or receive/delete) and clean
    "dlq:*": (
        "sqs:SendMessage",
        "sqs:ReceiveMessage",
        "sqs:DeleteMessage",
        "sqs:ChangeMessageVisibility",
        "sqs:GetQueueAttributes",
        "sqs:GetQueueUrl",
        "sqs:StartMessageMoveTask",
    ),
    "secret:*": ("ssm:GetParameter",),
    "websocket": ("execute-api:ManageConnections",),
    "email": ("ses:SendEmail",),
    "event-source-mapping": ("lambda:UpdateEventSourceMapping",),
    "*": ("lambda:ListEventSourceMappings",),
}

# Actions AWS performs with the role on the code's behalf: no code path calls them, so the
# recorder never sees them, and the check neither requires nor flags them.
PLATFORM: dict[str, tuple[str, ...]] = {
    # the Lambda SQS poller behind every @app.on_sqs_message
    "queue:*": ("sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"),
    "logs": ("logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents"),
}

# Granted because the issue names them, but no code path calls them yet: allowed to be unused
# until the code that needs them lands (the check prints them). Empty when the system is complete.
PENDING: frozenset[Grant] = frozenset(
    {
        # posts go to a fake management client in functional tests and to the local gateway
        # (another process) in e2e tests, so the recorder does not see them
        ("execute-api:ManageConnections", "websocket"),
    }
)

# botocore service name -> IAM prefix, where they differ
_PREFIX = {"sesv2": "ses", "apigatewaymanagementapi": "execute-api"}
# DynamoDB transactions are authorised per item, as the item's own action
_TRANSACT = {"Put": "PutItem", "Update": "UpdateItem", "Delete": "DeleteItem", "ConditionCheck": "ConditionCheckItem"}


@dataclass(frozen=True)
class Scope:
    """Where one stage's resources live. Fields may hold CloudFormation `${...}` placeholders."""

    stage: str
    region: str = "*"
    account: str = "*"
    partition: str = "aws"
    websocket_api: str = "*"  # the WebSocket API id, when known
    function_prefix: str = ""  # Lambda function names start with this (default `inkwell-<stage>-`)

    @classmethod
    def template(cls, stage: str) -> Scope:
        """The scope inside the CloudFormation template (functions are named `<stack>-...`)."""
        return cls(
            stage,
            region="${AWS::Region}",
            account="${AWS::AccountId}",
            partition="${AWS::Partition}",
            websocket_api="${WebsocketAPI}",
            function_prefix="${AWS::StackName}-",
        )

    @property
    def functions(self) -> str:
        return self.function_prefix or f"inkwell-{self.stage}-"

    def arn(self, service: str, resource: str, region: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if region else ''}:{self.account}:{resource}"


def physical_name(stage: str, logical: str) -> str:
    return f"inkwell-{stage}-{logical}"


def secrets_prefix(stage: str) -> str:
    """The SSM path of a stage's secrets (`INKWELL_SECRETS_PREFIX` in `.chalice/config.json`)."""
    return f"/inkwell/{stage}"


def _expand(key: str) -> list[str]:
    """`queue:*` -> every catalogue queue's key; other keys unchanged."""
    kind, _, name = key.partition(":")
    if name != "*":
        return [key]
    if kind == "queue" or kind == "dlq":
        return [f"{kind}:{q}" for q in catalog.QUEUES]
    if kind == "table":
        return [f"table:{t}" for t in catalog.TABLES]
    return [key]


def resource_arns(key: str, scope: Scope, actions: Iterable[str] = ()) -> list[str]:
    """The ARNs a resource key stands for in `scope`."""
    kind, _, name = key.partition(":")
    if kind == "table":
        arns = []
        for k in _expand(key):
            table = catalog.table(k.partition(":")[2])
            arn = scope.arn("dynamodb", f"table/{physical_name(scope.stage, table.name)}")
            arns.append(arn)
            if any(a in ("dynamodb:Query", "dynamodb:Scan") for a in actions):
                arns += [f"{arn}/index/{index.name}" for index in table.indexes]
        return arns
    if kind in ("queue", "dlq"):
        arns = []
        for k in _expand(key):
            queue = catalog.queue(k.partition(":")[2])
            logical = queue.name if kind == "queue" else queue.dlq
            arns.append(scope.arn("sqs", physical_name(scope.stage, logical)))
        return arns
    if kind == "secret":
        prefix = secrets_prefix(scope.stage)
        names = config.SECRETS if name == "*" else (name,)
        return [scope.arn("ssm", f"parameter{prefix}/{n}") for n in names]
    if key == "websocket":
        # POST/GET/DELETE on @connections of this stage's WebSocket API only
        return [scope.arn("execute-api", f"{scope.websocket_api}/api/*/@connections/*")]
    if key == "email":
        return [scope.arn("ses", "identity/*")]
    if key == "event-source-mapping":
        return [scope.arn("lambda", "event-source-mapping:*")]
    if key == "logs":
        group = f"log-group:/aws/lambda/{scope.functions}*"
        return [scope.arn("logs", group), scope.arn("logs", f"{group}:log-stream:*")]
    if key == "*":
        return ["*"]
    raise ValueError(f"unknown resource key {key!r}")


def grants(include_platform: bool = True) -> dict[str, list[str]]:
    """Resource key -> sorted actions (ACCESS, plus PLATFORM unless told otherwise)."""
    merged: dict[str, set[str]] = {}
    for source in (ACCESS, PLATFORM) if include_platform else (ACCESS,):
        for key, actions in source.items():
            merged.setdefault(key, set()).update(actions)
    return {key: sorted(actions) for key, actions in sorted(merged.items())}


def _sid(key: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", key) if part) or "Any"


def policy(scope: Scope) -> dict[str, Any]:
    """The stage's IAM policy document: one statement per resource key."""
    statements = []
    for key, actions in grants().items():
        statement: dict[str, Any] = {
            "Sid": _sid(key if key != "*" else "unscoped"),
            "Effect": "Allow",
            "Action": actions,
            "Resource": resource_arns(key, scope, actions),
        }
        if key == "event-source-mapping":
            # only the mappings that trigger this stage's functions (pause/resume of a queue)
            statement["Condition"] = {
                "ArnLike": {"lambda:FunctionArn": scope.arn("lambda", f"function:{scope.functions}*")}
            }
        statements.append(statement)
    return {"Version": "2012-10-17", "Statement": statements}


def template_policy(stage: str) -> dict[str, Any]:
    """`policy()` for the CloudFormation template: every ARN with a placeholder in `Fn::Sub`."""

    def sub(value: Any) -> Any:
        if isinstance(value, str) and "${" in value:
            return {"Fn::Sub": value}
        if isinstance(value, list):
            return [sub(v) for v in value]
        if isinstance(value, dict):
            return {k: sub(v) for k, v in value.items()}
        return value

    document = policy(Scope.template(stage))
    for statement in document["Statement"]:
        statement["Resource"] = sub(statement["Resource"])
        if "Condition" in statement:
            statement["Condition"] = sub(statement["Condition"])
    return document


# --- recorded operations -> grants -----------------------------------------------------------


def _logical(physical: str, stage: str) -> str:
    """`inkwell-<stage>-<name>` -> `<name>` (the catalogue name, whatever the stage)."""
    prefix = f"inkwell-{stage}-"
    if physical.startswith(prefix):
        return physical[len(prefix) :]
    known = [*catalog.TABLES, *catalog.QUEUES, *(q.dlq for q in catalog.QUEUES.values())]
    matches = [name for name in known if physical.startswith("inkwell-") and physical.endswith("-" + name)]
    return max(matches, key=len) if matches else physical


def _queue_key(name: str) -> str:
    if name.endswith("-dlq") and name[: -len("-dlq")] in catalog.QUEUES:
        return f"dlq:{name[: -len('-dlq')]}"
    return f"queue:{name}"


def grants_for_call(service: str, operation: str, params: dict[str, Any], stage: str) -> list[Grant]:
    """The (action, resource key) pairs IAM checks for one botocore call."""
    prefix = _PREFIX.get(service, service)
    if service == "apigatewaymanagementapi":
        return [("execute-api:ManageConnections", "websocket")]
    if service == "dynamodb":
        if operation in ("TransactWriteItems", "TransactGetItems"):
            found = []
            for item in params.get("TransactItems", []):
                for kind, body in item.items():
                    action = "GetItem" if kind == "Get" else _TRANSACT[kind]
                    found.append((f"dynamodb:{action}", f"table:{_logical(body['TableName'], stage)}"))
            return found
        if operation in ("BatchWriteItem", "BatchGetItem"):
            return [(f"dynamodb:{operation}", f"table:{_logical(t, stage)}") for t in params.get("RequestItems", {})]
        if "TableName" in params:
            return [(f"dynamodb:{operation}", f"table:{_logical(params['TableName'], stage)}")]
        return [(f"dynamodb:{operation}", "*")]
    if service == "sqs" and operation == "StartMessageMoveTask":
        # a redrive reads and deletes on the dead-letter queue and sends to the destination
        source = _queue_key(_logical(params["SourceArn"].rsplit(":", 1)[-1], stage))
        found = [(f"sqs:{a}", source) for a in ("StartMessageMoveTask", "ReceiveMessage", "DeleteMessage")]
        found.append(("sqs:GetQueueAttributes", source))
        if params.get("DestinationArn"):
            found.append(("sqs:SendMessage", _queue_key(_logical(params["DestinationArn"].rsplit(":", 1)[-1], stage))))
        return found
    if service == "sqs":
        if "QueueUrl" in params:
            name = urlparse(params["QueueUrl"]).path.rstrip("/").rsplit("/", 1)[-1]
        else:
            name = params.get("QueueName", "")
        return [(f"sqs:{operation}", _queue_key(_logical(name, stage)))] if name else [(f"sqs:{operation}", "*")]
    if service == "ssm" and "Name" in params:
        return [(f"ssm:{operation}", "secret:" + params["Name"].rsplit("/", 1)[-1])]
    if service in ("ses", "sesv2"):
        return [(f"ses:{operation}", "email")]
    if service == "lambda" and operation in ("UpdateEventSourceMapping", "GetEventSourceMapping"):
        return [(f"lambda:{operation}", "event-source-mapping")]
    return [(f"{prefix}:{operation}", "*")]


def _covers(granted_key: str, key: str) -> bool:
    if granted_key == key:
        return True
    kind, _, name = granted_key.partition(":")
    return name == "*" and key.partition(":")[0] == kind


@dataclass(frozen=True)
class Comparison:
    missing: list[Grant]  # called, but not granted
    unused: list[Grant]  # granted in ACCESS, never called (and not PENDING)
    pending_unused: list[Grant]  # PENDING and still never called


def compare(called: Iterable[Grant]) -> Comparison:
    called = set(called)
    declared = [(action, key) for key, actions in ACCESS.items() for action in actions]
    platform = [(action, key) for key, actions in PLATFORM.items() for action in actions]
    missing = sorted(
        (action, key) for action, key in called if not any(a == action and _covers(k, key) for a, k in declared)
    )
    never = sorted((a, k) for a, k in declared if not any(a == action and _covers(k, key) for action, key in called))
    missing = [m for m in missing if not any(a == m[0] and _covers(k, m[1]) for a, k in platform)]
    return Comparison(
        missing=missing,
        unused=[g for g in never if g not in PENDING],
        pending_unused=[g for g in never if g in PENDING],
    )


def write_policy_file(path: str, scope: Scope) -> None:
    with open(path, "w") as f:
        json.dump(policy(scope), f, indent=2)
        f.write("\n")
