"""The IAM declarations render to a least-privilege, stage-scoped policy, and every botocore call
maps to the (action, resource) pairs IAM checks for it."""

from __future__ import annotations

import json
import re

import pytest

from chalicelib import catalog, config
from infra import iam


def statements(scope: iam.Scope) -> list[dict]:
    return iam.policy(scope)["Statement"]


def test_policy_has_no_wildcard_action_and_no_unscoped_resource_but_the_documented_one() -> None:
    for statement in statements(iam.Scope("prod", region="eu-west-1", account="123456789012")):
        assert all("*" not in action for action in statement["Action"]), statement
        for arn in statement["Resource"]:
            if arn == "*":
                # IAM grants these on every resource only (X-Ray has no resource-level permission)
                assert statement["Action"] == [
                    "lambda:ListEventSourceMappings",
                    "xray:PutTelemetryRecords",
                    "xray:PutTraceSegments",
                ]
            elif arn.startswith("arn:aws:s3:::"):  # S3 ARNs have no region or account field: the name has
                assert arn == "arn:aws:s3:::inkwell-prod-audit-exports-123456789012-eu-west-1/*", arn
            elif arn.startswith("arn:aws:iam::"):  # IAM is global: a role's ARN has no region
                assert arn == "arn:aws:iam::123456789012:role/inkwell-prod-scheduler", arn
                assert statement["Action"] == ["iam:PassRole"]
            else:
                assert ":eu-west-1:123456789012:" in arn, arn


def test_table_and_queue_arns_name_only_that_stage() -> None:
    for statement in statements(iam.Scope("prod", region="eu-west-1", account="123456789012")):
        for arn in statement["Resource"]:
            if ":dynamodb:" in arn or ":sqs:" in arn:
                assert ":inkwell-prod-" in arn or "table/inkwell-prod-" in arn, arn
                assert "inkwell-dev-" not in arn


def test_query_grants_reach_the_tables_indexes() -> None:
    arns = iam.resource_arns("table:users", iam.Scope("prod"), ["dynamodb:Query"])
    assert arns == [
        "arn:aws:dynamodb:*:*:table/inkwell-prod-users",
        "arn:aws:dynamodb:*:*:table/inkwell-prod-users/index/*",
    ]
    assert iam.resource_arns("table:users", iam.Scope("prod"), ["dynamodb:GetItem"]) == [arns[0]]


def test_every_queue_key_expands_to_every_catalogue_queue() -> None:
    arns = iam.resource_arns("queue:*", iam.Scope("dev"))
    assert len(arns) == len(catalog.QUEUES)
    dlqs = iam.resource_arns("dlq:*", iam.Scope("dev"))
    assert all(arn.endswith("-dlq") for arn in dlqs)


def test_secrets_are_the_stages_ssm_parameters() -> None:
    arns = iam.resource_arns("secret:*", iam.Scope("prod", region="us-east-1", account="1"))
    assert arns == [f"arn:aws:ssm:us-east-1:1:parameter/inkwell/prod/{n}" for n in config.SECRETS]


def test_event_source_mapping_grant_is_limited_to_the_stages_functions() -> None:
    (statement,) = [s for s in statements(iam.Scope("prod")) if "lambda:UpdateEventSourceMapping" in s["Action"]]
    assert statement["Condition"]["ArnLike"]["lambda:FunctionArn"].endswith(":function:inkwell-prod-*")


def test_template_policy_uses_cloudformation_placeholders() -> None:
    document = iam.template_policy("prod")
    text = json.dumps(document)
    assert "${AWS::AccountId}" in text and "${WebsocketAPI}" in text and "${AWS::StackName}-" in text
    for statement in document["Statement"]:
        for resource in statement["Resource"]:
            assert resource == "*" or set(resource) == {"Fn::Sub"}


@pytest.mark.parametrize(
    ("service", "operation", "params", "expected"),
    [
        ("dynamodb", "GetItem", {"TableName": "inkwell-test-users"}, [("dynamodb:GetItem", "table:users")]),
        (
            "dynamodb",
            "Query",
            {"TableName": "inkwell-dev-login_attempts", "IndexName": "by_expiry"},
            [("dynamodb:Query", "table:login_attempts")],
        ),
        (
            "dynamodb",
            "TransactWriteItems",
            {
                "TransactItems": [
                    {"Put": {"TableName": "inkwell-test-users"}},
                    {"ConditionCheck": {"TableName": "inkwell-test-sessions"}},
                ]
            },
            [("dynamodb:PutItem", "table:users"), ("dynamodb:ConditionCheckItem", "table:sessions")],
        ),
        (
            "dynamodb",
            "BatchWriteItem",
            {"RequestItems": {"inkwell-test-jobs": []}},
            [("dynamodb:BatchWriteItem", "table:jobs")],
        ),
        (
            "sqs",
            "SendMessage",
            {"QueueUrl": "https://sqs.us-east-1.amazonaws.com/123/inkwell-test-articles"},
            [("sqs:SendMessage", "queue:articles")],
        ),
        (
            "sqs",
            "ReceiveMessage",
            {"QueueUrl": "http://127.0.0.1:5000/123/inkwell-test-emails-dlq"},
            [("sqs:ReceiveMessage", "dlq:emails")],
        ),
        ("sqs", "GetQueueUrl", {"QueueName": "inkwell-test-cleanup"}, [("sqs:GetQueueUrl", "queue:cleanup")]),
        (
            "sqs",
            "StartMessageMoveTask",
            {
                "SourceArn": "arn:aws:sqs:us-east-1:1:inkwell-test-emails-dlq",
                "DestinationArn": "arn:aws:sqs:us-east-1:1:inkwell-test-emails",
            },
            [
                ("sqs:StartMessageMoveTask", "dlq:emails"),
                ("sqs:ReceiveMessage", "dlq:emails"),
                ("sqs:DeleteMessage", "dlq:emails"),
                ("sqs:GetQueueAttributes", "dlq:emails"),
                ("sqs:SendMessage", "queue:emails"),
            ],
        ),
        ("ssm", "GetParameter", {"Name": "/inkwell/prod/JWT_SECRET"}, [("ssm:GetParameter", "secret:JWT_SECRET")]),
        (
            "apigatewaymanagementapi",
            "PostToConnection",
            {"ConnectionId": "x"},
            [("execute-api:ManageConnections", "websocket")],
        ),
        ("sesv2", "SendEmail", {}, [("ses:SendEmail", "email")]),
        ("s3", "UploadPart", {"Bucket": "b"}, [("s3:PutObject", "bucket:audit_exports")]),
        ("s3", "AbortMultipartUpload", {"Bucket": "b"}, [("s3:AbortMultipartUpload", "bucket:audit_exports")]),
        (
            "lambda",
            "UpdateEventSourceMapping",
            {"UUID": "u"},
            [("lambda:UpdateEventSourceMapping", "event-source-mapping")],
        ),
        ("lambda", "ListEventSourceMappings", {}, [("lambda:ListEventSourceMappings", "*")]),
    ],
)
def test_calls_map_to_the_actions_iam_checks(service: str, operation: str, params: dict, expected: list) -> None:
    assert iam.grants_for_call(service, operation, params, "test") == expected


def test_every_granted_key_renders(monkeypatch: pytest.MonkeyPatch) -> None:
    # a key naming a table the catalogue lacks is a mistake caught before any deploy
    monkeypatch.setitem(iam.ACCESS, "table:nope", ("dynamodb:GetItem",))
    with pytest.raises(KeyError):
        iam.policy(iam.Scope("prod"))


def test_each_function_s_policy_fits_the_inline_role_policy_quota() -> None:
    # AWS allows 10,240 characters of inline policy per role (whitespace excluded), counted once
    # CloudFormation has resolved the placeholders: measure with long real values in their place
    account, region = "123456789012", "ap-southeast-2"
    scope = iam.Scope(
        "prod",
        region=region,
        account=account,
        websocket_api="a1b2c3d4e5",
        function_prefix="inkwell-prod-stack-name-of-32-chars-",
        audit_key=f"arn:aws:kms:{region}:{account}:key/12345678-1234-1234-1234-123456789012",
        export_bucket="arn:aws:s3:::inkwell-prod-auditexportbucket-1a2b3c4d5e6f7",
    )
    table = iam.committed_modules()
    for name, reach in iam.functions().items():
        document = iam.policy(scope, iam.function_grants(reach.modules, reach.queue, table))
        assert len(json.dumps(document, separators=(",", ":"))) < 10_240, name


def test_every_function_may_write_its_own_log_group_on_both_paths() -> None:
    """`chalice deploy` names the REST function `inkwell-<stage>` (no suffix), the others
    `inkwell-<stage>-<handler>`; the template names them all `<stack>-...`."""
    chalice_path = iam.Scope("prod", region="eu-west-1", account="123456789012")
    [logs] = [s for s in statements(chalice_path) if "logs:PutLogEvents" in s["Action"]]
    base = "arn:aws:logs:eu-west-1:123456789012:log-group:/aws/lambda/"
    assert f"{base}inkwell-prod:log-stream:*" in logs["Resource"]  # the REST function
    assert f"{base}inkwell-prod-*:log-stream:*" in logs["Resource"]  # every other function
    assert not any(r.startswith(f"{base}inkwell-prod*") for r in logs["Resource"])  # not stage `prod2`'s
    template = iam.Scope.template("prod")
    [logs] = [s for s in statements(template) if "logs:PutLogEvents" in s["Action"]]
    assert any("/aws/lambda/${AWS::StackName}-*" in r for r in logs["Resource"])


# --- audit proof: each function reads only its secrets; one place seals --------------------------

AUDIT_SEALER = "jobs_cleanup"  # the cleanup queue's own consumer: seal_jobs are its `normal_only` types
DIGEST_WRITES = {"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:DeleteItem", "dynamodb:BatchWriteItem"}


def _granted(document: dict, match) -> set[str]:
    return {
        action
        for statement in document["Statement"]
        for action in statement["Action"]
        for resource in statement["Resource"]
        if match(action, resource)
    }


def _secrets_of(document: dict) -> set[str]:
    return {
        resource.rsplit("/", 1)[1]
        for statement in document["Statement"]
        if "ssm:GetParameter" in statement["Action"]
        for resource in statement["Resource"]
    }


# The secrets each function's role may read (`ssm:GetParameter` on `/inkwell/<stage>/<name>`), exactly:
# what its code uses at run time, nothing its modules merely import. Every function records audit
# events, each signed with AUDIT_DIGEST_KEY (an HMAC: the events' key; the digests are signed by the
# KMS key, which only AUDIT_SEALER may use, below). A function added to the app must be added here.
EVENTS_KEY = "AUDIT_DIGEST_KEY"
SECRETS_READ: dict[str, set[str]] = {
    # the REST API signs and checks the tokens; it starts generations but never calls the generator
    "api_handler": {EVENTS_KEY, "JWT_SECRET"},
    "jobs_articles": {EVENTS_KEY, "WEBHOOK_SECRET"},  # the generation's run: the generator's signed webhook calls
    "jobs_articles_high": {EVENTS_KEY, "WEBHOOK_SECRET"},
    "websocket_connect": {EVENTS_KEY},  # a ticket stored in DynamoDB and the session it names: no JWT
    "websocket_message": {EVENTS_KEY},  # the connection's session (one GetItem a frame): no JWT
    "websocket_disconnect": {EVENTS_KEY},
    "realtime_fanout": {EVENTS_KEY},
    "audit_fallback": {EVENTS_KEY},
    **{
        name: {EVENTS_KEY}
        for name in (
            "jobs_analytics",
            "jobs_analytics_high",
            "jobs_cleanup",  # the sealer: it checks the events' signatures, signs digests with KMS
            "jobs_cleanup_high",
            "jobs_emails",
            "jobs_emails_high",
        )
    },
    # the schedules' functions only enqueue
    **{
        name: {EVENTS_KEY}
        for name in (
            "activity_log_cleanup",
            "analytics_data_cleanup",
            "audit_digest",
            "audit_tally",
            "daily_analytics",
            "login_attempts_cleanup",
            "orphan_cleanup",
            "session_cleanup",
            "webhook_log_cleanup",
            "weekly_report",
        )
    },
}


def test_each_function_reads_exactly_the_secrets_it_uses() -> None:
    policies = iam.function_policies(iam.Scope("prod"))
    assert "secret:*" not in iam.ACCESS
    assert {name: _secrets_of(document) for name, document in policies.items()} == SECRETS_READ
    # the same on the CloudFormation path (`chalice package`), and in the committed files (`chalice deploy`)
    table = iam.committed_modules()
    template = {
        name: {
            arn["Fn::Sub"].rsplit("/", 1)[1] if isinstance(arn, dict) else arn.rsplit("/", 1)[1]
            for statement in iam.template_policy("prod", iam.function_grants(fn.modules, fn.queue, table))["Statement"]
            if "ssm:GetParameter" in statement["Action"]
            for arn in statement["Resource"]
        }
        for name, fn in iam.functions().items()
    }
    assert template == SECRETS_READ
    for name, secrets in SECRETS_READ.items():
        committed = json.loads(iam.policy_file("prod", name).read_text())
        assert _secrets_of(committed) == secrets, f"{iam.policy_file('prod', name).name}: run `make policies`"


def test_a_secret_is_read_only_by_the_modules_that_use_it() -> None:
    """Why a function may read a secret: a module it can run calls `secret.get` for it. The
    WebSocket functions check tickets and sessions with auth's store, never `auth.service` (the
    JWT's); the REST function runs the generation's start and hooks, never its run."""
    readers: dict[str, set[str]] = {}
    for module, _, key in iam.SECRET_READS:
        readers.setdefault(key.removeprefix("secret:"), set()).add(module)
    assert readers["JWT_SECRET"] == {"chalicelib.auth.service"}
    assert readers["WEBHOOK_SECRET"] == {"chalicelib.content.generation_job"}
    functions = iam.functions()
    for name in ("websocket_connect", "websocket_message"):
        assert "chalicelib.auth.service" not in functions[name].modules, name
    assert "chalicelib.content.generation_job" not in functions["api_handler"].modules
    # and nothing else in chalicelib reads one
    found = {
        str(path.relative_to(iam.ROOT))
        for path in (iam.ROOT / "chalicelib").rglob("*.py")
        if re.search(r"secret\.get\(config\.(JWT_SECRET|WEBHOOK_SECRET)\)", path.read_text())
    }
    assert found == {"chalicelib/auth/service.py", "chalicelib/content/generation_job.py"}


def test_one_function_writes_audit_digests_and_signs_with_the_digest_key() -> None:
    policies = iam.function_policies(iam.Scope("prod"))
    writers = {
        name
        for name, document in policies.items()
        if _granted(document, lambda a, r: a in DIGEST_WRITES and "audit_digests" in str(r))
    }
    signers = {name for name, document in policies.items() if _granted(document, lambda a, r: a == "kms:Sign")}
    assert writers == {AUDIT_SEALER} and signers == {AUDIT_SEALER}
    table = iam.committed_modules()
    template = {
        name: iam.template_policy("prod", iam.function_grants(fn.modules, fn.queue, table))
        for name, fn in iam.functions().items()
    }
    assert {n for n, d in template.items() if _granted(d, lambda a, r: a == "kms:Sign")} == {AUDIT_SEALER}
    assert _granted(policies["api_handler"], lambda a, r: a.startswith("kms:")) == {"kms:GetPublicKey"}


def test_the_digest_key_grant_names_the_stages_key_only() -> None:
    document = iam.policy(iam.Scope("prod"), {"kms:audit": ["kms:Sign"]})
    (statement,) = document["Statement"]
    assert statement["Condition"] == {"ForAnyValue:StringEquals": {"kms:ResourceAliases": "alias/inkwell-prod-audit"}}
    template = iam.template_policy("prod", {"kms:audit": ["kms:Sign"]})
    (statement,) = template["Statement"]  # the alias: the key's policy names the roles (no cycle)
    assert statement["Resource"] == [{"Fn::Sub": "arn:${AWS::Partition}:kms:${AWS::Region}:${AWS::AccountId}:key/*"}]
    assert statement["Condition"]["ForAnyValue:StringEquals"] == {"kms:ResourceAliases": "alias/inkwell-prod-audit"}


def test_the_export_bucket_of_the_deploy_path_carries_the_account_and_region() -> None:
    assert (
        iam.export_bucket_name("prod", "123456789012", "eu-west-1")
        == "inkwell-prod-audit-exports-123456789012-eu-west-1"
    )
    assert iam.export_bucket_name("local") == "inkwell-local-audit-exports"
    exact = iam.resource_arns("bucket:audit_exports", iam.Scope("prod", region="eu-west-1", account="123456789012"))
    assert exact == ["arn:aws:s3:::inkwell-prod-audit-exports-123456789012-eu-west-1/*"]
    # the committed files serve any account: the stage's buckets of any account and region
    assert iam.resource_arns("bucket:audit_exports", iam.Scope("prod")) == [
        "arn:aws:s3:::inkwell-prod-audit-exports-*-*/*"
    ]
    with pytest.raises(ValueError, match="63"):
        iam.export_bucket_name("a-very-long-stage-name-indeed", "123456789012", "ap-southeast-2")


def test_the_audit_key_policy_lets_the_account_administer_but_only_the_sealer_sign() -> None:
    document = iam.audit_key_policy("root", ["sealer"], ["api"])
    by_sid = {st["Sid"]: st for st in document["Statement"]}
    assert not {"kms:Sign", "kms:GetPublicKey", "kms:Verify"} & set(by_sid["AccountAdministers"]["Action"])
    assert all("*" not in a for st in document["Statement"] for a in st["Action"])
    assert by_sid["SealerSigns"]["Principal"] == {"AWS": ["sealer"]} and "kms:Sign" in by_sid["SealerSigns"]["Action"]
    assert by_sid["ReadersGetThePublicKey"]["Action"] == ["kms:GetPublicKey"]
    table = iam.committed_modules()
    granted = {name: iam.function_grants(fn.modules, fn.queue, table) for name, fn in iam.functions().items()}
    signers, readers = iam.key_users(granted)
    assert signers == [AUDIT_SEALER] and "api_handler" in readers and AUDIT_SEALER not in readers


AUDIT_DELETES = {"dynamodb:DeleteItem", "dynamodb:BatchWriteItem", "dynamodb:UpdateItem", "dynamodb:PartiQLDelete"}


def test_only_the_sealer_may_delete_or_change_audit_events_every_other_role_only_puts() -> None:
    """Writers record events and their flush manifests with TransactWriteItems' Puts (PutItem):
    no role but the sealer's can delete one (BatchWriteItem's DeleteRequest included), so a
    writer's last manifest stays; a Put over one is named by its content id."""
    for stage in ("prod", "dev"):
        policies = iam.function_policies(iam.Scope(stage))
        deleters = {
            name
            for name, document in policies.items()
            if _granted(document, lambda a, r: (a in AUDIT_DELETES or a == "dynamodb:*") and "audit_events" in str(r))
        }
        writers = {
            name
            for name, document in policies.items()
            if _granted(document, lambda a, r: a == "dynamodb:PutItem" and "audit_events" in str(r))
        }
        assert deleters == {AUDIT_SEALER}, stage
        assert "api_handler" in writers and "websocket_connect" in writers, stage
