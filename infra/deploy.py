"""`make deploy STAGE=<stage>` and `make teardown STAGE=<stage>`: the `chalice deploy` path.

    python -m infra.deploy prod             # create or update everything the stage needs
    python -m infra.deploy prod --teardown  # remove it (prod also needs --yes)

`make deploy` creates or updates a stage from any clone; `python -m infra.chalice_cli deploy --stage <stage>`
(Chalice through its guard; a plain `chalice deploy` is refused) updates its code from a clone where it ran (see docs/deploy.md). Local stages
(`config.LOCAL_STAGES`, which run on development secrets) and stages without an
`ARTICLE_WEBHOOK_URL` are refused. Every step is idempotent, and Chalice's record is kept in SSM
and completed by name before Chalice runs (`infra.deploy_state`), so a failed run is simply run
again, from any clone:

1. `.chalice/config.json` in step, and `.chalice/policy-<stage>-<function>.json` (`infra.iam`: the committed
   file, any account and region; written only when the stage is new or the file stale);
2. the secrets (`config.SECRETS`) as SSM SecureStrings under the stage's prefix, generated once
   when absent and never overwritten, and the audit digest-signing KMS key (asymmetric, under
   `alias/inkwell-<stage>-audit`, created once; its key policy names the roles that may use it
   once they exist, step 6), and the audit export bucket (private, encrypted, versioned,
   incomplete uploads dropped after a day: `inkwell-<stage>-audit-exports-<account>-<region>`,
   named in the stage's `INKWELL_AUDIT_EXPORT_BUCKET`);
3. the catalogue's tables and queues (`infra.provision`, hardened: PITR, KMS, SSE, TTL, redrive);
4. an SNS topic, an alarm on every dead-letter queue's depth, the stage's other alarms and its
   CloudWatch dashboard (`infra.monitoring`, as in the template);
5. the stage's record fetched from SSM into `.chalice/deployed/<stage>.json` and completed with
   what exists by name; `chalice deploy --stage <stage>` (functions, roles, REST and WebSocket
   APIs, schedules, SQS triggers), with the stage's environment, on
   `infra.chalice_cli.LAMBDA_RUNTIME`; the record stored back in SSM, whether it succeeded or not;
6. what Chalice does not manage: `ReportBatchItemFailures` on every SQS event-source mapping of
   the stage's functions (Chalice never sets it, aws/chalice#2029), and the WebSocket endpoints
   (Chalice learns the API's id only while creating it) in the stage's `environment_variables`
   of `.chalice/config.json` and in every function's environment;
7. logging: every function's log group and both API stages' access log groups with a retention
   period, the access logs on the REST and WebSocket stages (and, when the account has none yet,
   API Gateway's account-wide role for writing them). Tracing needs no step: `xray` in
   `.chalice/config.json` makes Chalice turn it on for every function and the REST stage;
8. throttling (`ensure_throttling`): both API stages get the stage's `throttling` of
   `.chalice/config.json` (`infra.throttling`; Chalice sets none), every REST method and the
   WebSocket stage's default route;
9. verification (`deploy_state.problems`): `main` exits non-zero naming what the stage lacks.

What step 6 sets survives a later `infra.chalice_cli deploy`: Chalice updates an existing mapping with
BatchSize, MaximumBatchingWindowInSeconds and (only when app.py sets `maximum_concurrency`)
ScalingConfig, and AWS keeps what an update omits, so `FunctionResponseTypes` and a
ScalingConfig set outside Chalice stay; the endpoints come from config.json. A mapping Chalice
*creates* (no record of it) lacks `ReportBatchItemFailures`: hence `infra.chalice_cli deploy`
refuses a stage whose local record lacks a catalogue queue's trigger (`infra.chalice_cli`). Only a stage's first
`chalice deploy` runs without the endpoints, until step 6 sets them moments later.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import secrets
import subprocess
import sys
import time
import urllib.parse
from collections.abc import Callable
from typing import Any

from chalicelib import catalog, config
from infra import app_shape, chalice_cli, chalice_config, deploy_state, iam, monitoring, provision, throttling
from infra import schedules as scheduler_deploy
from infra.app_shape import AppShape
from infra.monitoring import API_STAGE

BATCH_FAILURES = deploy_state.BATCH_FAILURES
COMMIT_HINT = (
    "Commit .chalice/ (config.json, policy-{stage}-*.json). Chalice's record of the stage is kept in "
    "the SSM parameter {parameter}: `make deploy` and `make teardown` fetch it on any machine."
)
Runner = Callable[[list[str], dict[str, str]], None]


def _run(command: list[str], env: dict[str, str]) -> None:
    subprocess.run(command, check=True, cwd=app_shape.ROOT, env=env)


def chalice(args: list[str], stage: str, run: Runner = _run) -> None:
    env = {**os.environ, **app_shape.stage_environment(stage), chalice_cli.MAKE_DEPLOY: "1"}
    run([sys.executable, "-m", "infra.chalice_cli", *args], env)


def ensure_secrets(ssm: Any, stage: str) -> list[str]:
    """Create each missing secret with a random value; returns the names created."""
    created = []
    for name in config.SECRETS:
        parameter = f"{iam.secrets_prefix(stage)}/{name}"
        try:
            ssm.get_parameter(Name=parameter)
        except ssm.exceptions.ParameterNotFound:
            ssm.put_parameter(Name=parameter, Value=secrets.token_urlsafe(48), Type="SecureString", Overwrite=False)
            created.append(parameter)
    return created


def ensure_audit_key(kms: Any, stage: str) -> str:
    """The stage's audit digest-signing key (KMS, ECC_NIST_P256, SIGN_VERIFY) under its alias,
    created once; returns its alias. Its policy, naming the roles that may use it, is put once
    they exist (`set_audit_key_policy`)."""
    alias = iam.audit_key_alias(stage)
    try:
        kms.describe_key(KeyId=alias)
    except kms.exceptions.NotFoundException:
        key = kms.create_key(
            KeySpec="ECC_NIST_P256",
            KeyUsage="SIGN_VERIFY",
            Description=f"Signs the audit digests of stage {stage}",
        )["KeyMetadata"]
        kms.create_alias(AliasName=alias, TargetKeyId=key["KeyId"])
    return alias


def set_audit_key_policy(kms: Any, stage: str, shape: app_shape.AppShape, account: str) -> dict[str, Any]:
    """Put the audit key's policy (`iam.audit_key_policy`): the account administers it, the
    sealing function's role may sign, the roles that check digests may read the public key, by
    their ARNs; returns it."""
    granted = {fn.name: json.loads(iam.policy_file(stage, fn.name).read_text()) for fn in shape.functions.values()}
    users = {
        name: {"kms:audit": [a for st in doc["Statement"] if st["Sid"] == "KmsAudit" for a in st["Action"]]}
        for name, doc in granted.items()
    }
    signers, readers = iam.key_users(users)
    roles = {fn.name: fn.role_name for fn in shape.functions.values() if fn.role_name}
    arn = f"arn:aws:iam::{account}:"
    named = [[arn + "role/" + roles[n] for n in group if n in roles] for group in (signers, readers)]
    document = iam.audit_key_policy(arn + "root", *named)
    key_id = kms.describe_key(KeyId=iam.audit_key_alias(stage))["KeyMetadata"]["KeyId"]
    kms.put_key_policy(KeyId=key_id, PolicyName="default", Policy=json.dumps(document))
    return document


def ensure_alarms(
    sns: Any,
    cloudwatch: Any,
    stage: str,
    email: str | None = None,
    shape: AppShape | None = None,
    region: str = "us-east-1",
) -> str:
    """The stage's alarm topic and one alarm per dead-letter queue; given the app's shape, also
    the other alarms and the dashboard (`infra.monitoring`), all the same as the template's."""
    topic = sns.create_topic(
        Name=config.physical_name(stage, "alarms"), Attributes={"KmsMasterKeyId": "alias/aws/sns"}
    )["TopicArn"]
    if email:
        sns.subscribe(TopicArn=topic, Protocol="email", Endpoint=email)
    for queue in catalog.QUEUES.values():
        cloudwatch.put_metric_alarm(
            AlarmName=config.physical_name(stage, f"{queue.dlq}-not-empty"),
            AlarmDescription=f"Jobs of the {queue.name} queue wait in its dead-letter queue",
            Namespace="AWS/SQS",
            MetricName="ApproximateNumberOfMessagesVisible",
            Dimensions=[{"Name": "QueueName", "Value": config.physical_name(stage, queue.dlq)}],
            Statistic="Maximum",
            Period=300,
            EvaluationPeriods=1,
            Threshold=1,
            ComparisonOperator="GreaterThanOrEqualToThreshold",
            TreatMissingData="notBreaching",
            AlarmActions=[topic],
            OKActions=[topic],
        )
    if shape is not None:
        names = monitoring.Names.physical(stage, region, topic)
        for alarm in monitoring.alarms(shape, names):
            cloudwatch.put_metric_alarm(**alarm)
        body = monitoring.dashboard_body(shape, names)
        cloudwatch.put_dashboard(DashboardName=monitoring.dashboard_name(stage), DashboardBody=body)
    return topic


APIGATEWAY_LOGS_ROLE = "inkwell-apigateway-cloudwatch-logs"
# what the AWS managed policy AmazonAPIGatewayPushToCloudWatchLogs (the template's) allows
APIGATEWAY_LOGS_ACTIONS = [
    "logs:CreateLogGroup",
    "logs:CreateLogStream",
    "logs:DescribeLogGroups",
    "logs:DescribeLogStreams",
    "logs:PutLogEvents",
    "logs:GetLogEvents",
    "logs:FilterLogEvents",
]


def ensure_log_group(logs: Any, name: str, days: int) -> None:
    with contextlib.suppress(logs.exceptions.ResourceAlreadyExistsException):
        logs.create_log_group(logGroupName=name)
    logs.put_retention_policy(logGroupName=name, retentionInDays=days)


def ensure_apigateway_logs_role(iam_client: Any, apigateway: Any, attempts: int = 10, wait: float = 3.0) -> str:
    """API Gateway's account-wide role for writing logs: the account's own when set, else one made here."""
    current = apigateway.get_account().get("cloudwatchRoleArn")
    if current:
        return str(current)
    trust = {
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"Service": "apigateway.amazonaws.com"}, "Action": "sts:AssumeRole"}
        ],
    }
    try:
        arn = iam_client.create_role(RoleName=APIGATEWAY_LOGS_ROLE, AssumeRolePolicyDocument=json.dumps(trust))
        arn = arn["Role"]["Arn"]
    except iam_client.exceptions.EntityAlreadyExistsException:
        arn = iam_client.get_role(RoleName=APIGATEWAY_LOGS_ROLE)["Role"]["Arn"]
    allow = {"Effect": "Allow", "Action": APIGATEWAY_LOGS_ACTIONS, "Resource": "*"}
    iam_client.put_role_policy(
        RoleName=APIGATEWAY_LOGS_ROLE,
        PolicyName="PushToCloudWatchLogs",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [allow]}),
    )
    patch = [{"op": "replace", "path": "/cloudwatchRoleArn", "value": arn}]
    for attempt in range(attempts):  # a new role takes a few seconds to be usable
        try:
            apigateway.update_account(patchOperations=patch)
            break
        except apigateway.exceptions.BadRequestException:
            if attempt == attempts - 1:
                raise
            time.sleep(wait)
    return str(arn)


def ensure_logging(
    clients: dict[str, Any], shape: AppShape, record: dict[str, Any], region: str, account: str
) -> list[str]:
    """Log groups with retention for every function and both APIs' access logs, and the access
    logs on the stages Chalice made; returns the log groups."""
    stage = shape.stage
    days = monitoring.log_retention_days(stage)
    groups = [f"/aws/lambda/{fn.function_name}" for fn in shape.functions.values()]
    for name in groups:
        ensure_log_group(clients["logs"], name, days)
    apis = {r["resource_type"]: r for r in record.get("resources", [])}
    if "rest_api" not in apis and "websocket_api" not in apis:
        return groups
    ensure_apigateway_logs_role(clients["iam"], clients["apigateway"])

    def access_group(api: str) -> str:
        name = monitoring.access_log_group(stage, api)
        ensure_log_group(clients["logs"], name, days)
        groups.append(name)
        return f"arn:aws:logs:{region}:{account}:log-group:{name}"

    if "rest_api" in apis:
        destination = access_group("rest")
        clients["apigateway"].update_stage(
            restApiId=apis["rest_api"]["rest_api_id"],
            stageName=API_STAGE,
            patchOperations=[
                {"op": "replace", "path": "/accessLogSettings/destinationArn", "value": destination},
                {"op": "replace", "path": "/accessLogSettings/format", "value": monitoring.REST_ACCESS_LOG_FORMAT},
            ],
        )
    if "websocket_api" in apis:
        destination = access_group("websocket")
        clients["apigatewayv2"].update_stage(
            ApiId=apis["websocket_api"]["websocket_api_id"],
            StageName=API_STAGE,
            AccessLogSettings={"DestinationArn": destination, "Format": monitoring.WEBSOCKET_ACCESS_LOG_FORMAT},
        )
    return groups


def ensure_throttling(
    clients: dict[str, Any], record: dict[str, Any], limits: dict[str, tuple[float, int]]
) -> list[str]:
    """Throttle the stages of the APIs Chalice made (`infra.throttling`); returns the APIs throttled."""
    apis = {r["resource_type"]: r for r in record.get("resources", [])}
    done = []
    if "rest_api" in apis:
        rate, burst = limits["rest"]
        clients["apigateway"].update_stage(
            restApiId=apis["rest_api"]["rest_api_id"],
            stageName=API_STAGE,
            patchOperations=[
                {"op": "replace", "path": "/*/*/throttling/rateLimit", "value": str(rate)},
                {"op": "replace", "path": "/*/*/throttling/burstLimit", "value": str(burst)},
            ],
        )
        done.append("rest")
    if "websocket_api" in apis:
        rate, burst = limits["websocket"]
        v2 = clients["apigatewayv2"]
        api_id = apis["websocket_api"]["websocket_api_id"]
        current = v2.get_stage(ApiId=api_id, StageName=API_STAGE).get("DefaultRouteSettings") or {}
        v2.update_stage(
            ApiId=api_id,
            StageName=API_STAGE,
            DefaultRouteSettings={**current, "ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst},
        )
        done.append("websocket")
    return done


def report_batch_failures(lambda_client: Any, function_names: list[str]) -> list[str]:
    """Set FunctionResponseTypes on every SQS mapping of these functions; returns the UUIDs changed."""
    changed = []
    for name in function_names:
        pages = lambda_client.get_paginator("list_event_source_mappings").paginate(FunctionName=name)
        for page in pages:
            for mapping in page["EventSourceMappings"]:
                if ":sqs:" not in mapping.get("EventSourceArn", ""):
                    continue
                if mapping.get("FunctionResponseTypes") == BATCH_FAILURES:
                    continue
                lambda_client.update_event_source_mapping(UUID=mapping["UUID"], FunctionResponseTypes=BATCH_FAILURES)
                changed.append(mapping["UUID"])
    return changed


def policy_documents(shape: app_shape.AppShape) -> dict[str, dict[str, Any]]:
    """Role name -> the policy of its function's committed file (`.chalice/policy-<stage>-<function>.json`)."""
    return {
        fn.role_name: json.loads(iam.policy_file(shape.stage, fn.name).read_text())
        for fn in shape.functions.values()
        if fn.role_name
    }


def apply_policy_files(iam_client: Any, documents: dict[str, dict[str, Any]]) -> list[str]:
    """Put each role's policy (`policy_documents`) on it where it differs, as Chalice's next deploy
    would (its policy is named after the role); returns the roles changed."""
    changed = []
    for role, document in sorted(documents.items()):
        try:
            current = iam_client.get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        except iam_client.exceptions.NoSuchEntityException:
            current = None
        if isinstance(current, str):
            current = json.loads(urllib.parse.unquote(current))
        if current != document:
            iam_client.put_role_policy(RoleName=role, PolicyName=role, PolicyDocument=json.dumps(document))
            changed.append(role)
    return changed


def websocket_environment(record: dict[str, Any], region: str) -> dict[str, str]:
    for resource in record.get("resources", []):
        if resource.get("resource_type") == "websocket_api":
            host = f"{resource['websocket_api_id']}.execute-api.{region}.amazonaws.com"
            return {
                config.WS_MANAGEMENT_ENDPOINT: f"https://{host}/{API_STAGE}",
                config.WS_URL: f"wss://{host}/{API_STAGE}",
            }
    return {}


def set_environment(lambda_client: Any, function_names: list[str], extra: dict[str, str]) -> list[str]:
    """Add `extra` to each function's environment where it is missing; returns the functions changed."""
    changed = []
    for name in function_names:
        current = lambda_client.get_function_configuration(FunctionName=name)
        variables = (current.get("Environment") or {}).get("Variables", {})
        if all(variables.get(k) == v for k, v in extra.items()):
            continue
        lambda_client.get_waiter("function_updated_v2").wait(FunctionName=name)
        lambda_client.update_function_configuration(
            FunctionName=name, Environment={"Variables": {**variables, **extra}}
        )
        changed.append(name)
    return changed


def _clients(region: str) -> dict[str, Any]:
    import boto3

    return {
        name: boto3.client(name, region_name=region)
        for name in (
            "sts",
            "ssm",
            "dynamodb",
            "sqs",
            "sns",
            "cloudwatch",
            "lambda",
            "logs",
            "iam",
            "apigateway",
            "apigatewayv2",
            "events",
            "kms",
            "s3",
            "scheduler",
        )
    }


def check_deployable(stage: str) -> None:
    error = chalice_config.stage_error(stage)
    if error:
        raise SystemExit(error)


def deploy(
    stage: str, clients: dict[str, Any], region: str, run: Runner = _run, email: str | None = None
) -> dict[str, Any]:
    check_deployable(stage)
    account = clients["sts"].get_caller_identity()["Account"]  # fail fast without credentials
    chalice_config.sync()
    bucket = iam.export_bucket_name(stage, account, region)  # bucket names are global: the account's own
    chalice_config.set_variable(stage, config.AUDIT_EXPORT_BUCKET, bucket)
    if os.environ.get(config.ARTICLE_WEBHOOK_URL):  # Chalice gives functions config.json's variables only
        chalice_config.set_variable(stage, config.ARTICLE_WEBHOOK_URL, os.environ[config.ARTICLE_WEBHOOK_URL])
    shape = app_shape.load(stage)
    chalice_config.sync(shape)
    iam.write_policy_files(stage)
    settings = config.get()
    created = ensure_secrets(clients["ssm"], stage)
    ensure_audit_key(clients["kms"], stage)
    provision.create_export_bucket(clients["s3"], settings, bucket)
    urls = provision.provision(clients["dynamodb"], clients["sqs"], settings, hardened=True)
    topic = ensure_alarms(clients["sns"], clients["cloudwatch"], stage, email, shape, region)
    # what exists of the stage goes into Chalice's record first, so that nothing is made twice
    record, leftovers = deploy_state.adopt(clients, shape, deploy_state.fetch(clients["ssm"], stage), region)
    deploy_state.write(stage, record)
    try:
        chalice(["deploy", "--stage", stage], stage, run)
    except subprocess.CalledProcessError as failed:
        raise SystemExit(
            f"chalice deploy failed (exit {failed.returncode}); what it made is found by name on the next run: "
            f"run `make deploy STAGE={stage}` again"
        ) from failed
    finally:
        deploy_state.store(clients["ssm"], stage)
    names = sorted(fn.function_name for fn in shape.functions.values())
    mappings = report_batch_failures(clients["lambda"], names)
    record = deploy_state.read(stage)
    endpoints = websocket_environment(record, region)
    chalice_config.set_websocket_endpoints(stage, endpoints)
    # the endpoints name the WebSocket API: the policy's ManageConnections is pinned to it now
    iam.write_policy_files(stage)
    documents = policy_documents(shape)
    roles = apply_policy_files(clients["iam"], documents)
    set_audit_key_policy(clients["kms"], stage, shape, account)  # the roles exist now
    updated = set_environment(clients["lambda"], names, endpoints)
    schedules = scheduler_deploy.deploy(clients, stage, account, region)
    log_groups = ensure_logging(clients, shape, record, region, account)
    throttled = ensure_throttling(clients, record, throttling.throttling(stage))
    expected = app_shape.stage_environment(stage)  # config.json now holds the endpoints
    return {
        "problems": deploy_state.problems(clients, shape, record, expected, documents),
        "leftovers_deleted": leftovers,
        "account": account,
        "secrets_created": created,
        "queues": urls,
        "alarm_topic": topic,
        "mappings_updated": mappings,
        "environments_updated": updated,
        "role_policies_updated": roles,
        "schedules_created_or_fixed": schedules,
        "endpoints": {r["name"]: r.get("rest_api_url") for r in record["resources"] if r.get("rest_api_url")},
        "websocket": endpoints.get(config.WS_URL),
        "log_groups": log_groups,
        "throttled": throttled,
        "dashboard": monitoring.dashboard_name(stage),
    }


def teardown(
    stage: str, clients: dict[str, Any], run: Runner = _run, delete_secrets: bool = False, region: str = "us-east-1"
) -> list[str]:
    """Remove the stage, with or without a record anywhere: what Chalice made is found by name.
    Refuses (SystemExit) before touching data when any of it is still there afterwards."""
    shape = app_shape.load(stage)  # also gives this process the stage's environment
    record, _ = deploy_state.adopt(clients, shape, deploy_state.fetch(clients["ssm"], stage), region)
    deploy_state.write(stage, record)
    if record["resources"]:
        with contextlib.suppress(subprocess.CalledProcessError):  # what it left is named below
            chalice(["delete", "--stage", stage], stage, run)
    left = deploy_state.leftovers(clients, shape)
    if left:
        deploy_state.store(clients["ssm"], stage)
        raise SystemExit(
            f"teardown of {stage!r} stopped: still there after `chalice delete`: {', '.join(left)}. "
            "Tables, queues and alarms were kept; fix the cause and run `make teardown` again."
        )
    deploy_state.forget(clients["ssm"], stage)
    scheduler_deploy.teardown(clients, stage)
    chalice_config.set_websocket_endpoints(stage, {})
    if stage in iam.deployable_stages():  # no WebSocket API to pin ManageConnections to any more
        iam.write_policy_files(stage)
    removed = provision.delete(clients["dynamodb"], clients["sqs"], config.get())
    topic = clients["sns"].create_topic(Name=config.physical_name(stage, "alarms"))["TopicArn"]  # idempotent lookup
    alarms = [config.physical_name(stage, f"{q.dlq}-not-empty") for q in catalog.QUEUES.values()]
    for page in (
        clients["cloudwatch"]
        .get_paginator("describe_alarms")
        .paginate(AlarmNamePrefix=config.physical_name(stage) + "-")
    ):
        # the stage's other alarms: those notifying its topic (not another stage's of a longer name)
        alarms += [
            a["AlarmName"] for a in page["MetricAlarms"] if topic in a["AlarmActions"] and a["AlarmName"] not in alarms
        ]
    for start in range(0, len(alarms), 100):  # DeleteAlarms takes 100 names at most
        clients["cloudwatch"].delete_alarms(AlarmNames=alarms[start : start + 100])
    dashboards = clients["cloudwatch"].list_dashboards(DashboardNamePrefix=monitoring.dashboard_name(stage))
    if any(d["DashboardName"] == monitoring.dashboard_name(stage) for d in dashboards["DashboardEntries"]):
        clients["cloudwatch"].delete_dashboards(DashboardNames=[monitoring.dashboard_name(stage)])
    clients["sns"].delete_topic(TopicArn=topic)
    removed += alarms + [monitoring.dashboard_name(stage), topic]
    for api in ("rest", "websocket"):  # the functions' log groups stay until their retention ends
        name = monitoring.access_log_group(stage, api)
        try:
            clients["logs"].delete_log_group(logGroupName=name)
            removed.append(name)
        except clients["logs"].exceptions.ResourceNotFoundException:
            pass
    if delete_secrets:
        names = [f"{iam.secrets_prefix(stage)}/{n}" for n in config.SECRETS]
        clients["ssm"].delete_parameters(Names=names)
        removed += names
    return removed


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage")
    parser.add_argument("--teardown", action="store_true")
    parser.add_argument("--yes", action="store_true", help="confirm tearing down prod")
    parser.add_argument("--delete-secrets", action="store_true", help="teardown: delete the SSM secrets too")
    parser.add_argument("--alarm-email", help="subscribe this address to the stage's alarms")
    args = parser.parse_args(argv)
    if not args.teardown:  # a local stage deployed by mistake can still be torn down
        check_deployable(args.stage)
    region = os.environ.get("AWS_DEFAULT_REGION") or os.environ.get("AWS_REGION") or "us-east-1"
    os.environ["AWS_DEFAULT_REGION"] = region
    clients = _clients(region)
    if args.teardown:
        if args.stage == "prod" and not args.yes:
            raise SystemExit("tearing down prod deletes its data: add --yes (make teardown STAGE=prod YES=1)")
        for name in teardown(args.stage, clients, delete_secrets=args.delete_secrets, region=region):
            print("removed", name)
        print(f"Commit .chalice/config.json (the stage's endpoints are gone from it): {args.stage} is gone.")
        return
    result = deploy(args.stage, clients, region, email=args.alarm_email)
    print(json.dumps(result, indent=2))
    if result["problems"]:
        raise SystemExit(f"make deploy: stage {args.stage!r} is not right:\n  " + "\n  ".join(result["problems"]))
    print(COMMIT_HINT.format(stage=args.stage, parameter=deploy_state.parameter(args.stage)))


if __name__ == "__main__":
    main()
