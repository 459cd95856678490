"""The CloudFormation half of a stage that Chalice does not write, generated from the catalogue.

`overlay(shape)` is the template given to `chalice package --merge-template`: every catalogue
table (keys, indexes, TTL, point-in-time recovery, encryption), every queue with its dead-letter
queue (redrive after `attempts` deliveries, visibility at least 6x its consumer's timeout,
encryption), an alarm on each dead-letter queue's depth, and patches to what Chalice emits: the
function environment (table and queue names, the WebSocket endpoints), the consumers' timeouts,
`ReportBatchItemFailures` on every SQS event source (Chalice omits it, aws/chalice#2029) with the
queue referenced through `Fn::Sub` so CloudFormation creates it first, and each role's policy
from `infra.iam`; and what an operator watches (`infra.monitoring`): every function's log group
with a retention period, access logs of both API stages (and API Gateway's account-wide role
for writing them), X-Ray tracing on the REST stage (the functions' `Tracing: Active` comes from
`xray` in `.chalice/config.json`), the alarms and the dashboard; and both API stages' throttling
(`infra.throttling`: every REST method, and the WebSocket stage's default route). Chalice merges dictionaries key by key and replaces lists, which is what lets
this overlay patch its resources in place.

`problems(template, shape)` checks a packaged template holds all of that; `make package` refuses
a template with problems, and the tests run it on the real `chalice package` output.
"""

from __future__ import annotations

import json
import re
from typing import Any

from chalicelib import catalog, config
from infra import iam, monitoring, provision, throttling
from infra import schedules as scheduler_template
from infra.app_shape import AppShape
from infra.monitoring import API_STAGE

MESSAGE_RETENTION = 4 * 24 * 3600
DLQ_RETENTION = 14 * 24 * 3600
ALARM_TOPIC = "DeadLetterAlarmTopic"
EXPORT_BUCKET = "AuditExportBucket"  # audit exports (infra.iam: `bucket:audit_exports`)
AUDIT_KEY = "AuditSigningKey"  # the KMS key that signs the audit digests (infra.iam: `kms:audit`)


def logical_id(name: str, suffix: str) -> str:
    """`login_attempts`, `Table` -> `LoginAttemptsTable`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[^A-Za-z0-9]+", name) if part) + suffix


def table_id(name: str) -> str:
    return logical_id(name, "Table")


def queue_id(name: str) -> str:
    return logical_id(name, "Queue")


def dlq_id(name: str) -> str:
    return logical_id(name, "DeadLetterQueue")


def queue_arn_ref(name: str) -> dict[str, str]:
    """A queue's ARN as an SQS event source's `Queue` (an `Fn::Sub`, replacing Chalice's own)."""
    return {"Fn::Sub": "${" + queue_id(name) + ".Arn}"}


def api_url(scheme: str, api: str) -> dict[str, str]:
    return {"Fn::Sub": scheme + "://${" + api + "}.execute-api.${AWS::Region}.${AWS::URLSuffix}/" + API_STAGE}


def retained(stage: str) -> str:
    """Production data survives a stack deletion; other stages are deleted with their stack."""
    return "Retain" if stage == "prod" else "Delete"


def table_resource(table: catalog.Table, stage: str) -> dict[str, Any]:
    # CreateTable's arguments (keys, attribute types, indexes, on-demand billing) are also
    # AWS::DynamoDB::Table's properties: one definition serves `make deploy` and the template.
    props: dict[str, Any] = {
        **provision.table_kwargs(table, config.physical_name(stage, table.name)),
        "PointInTimeRecoverySpecification": {"PointInTimeRecoveryEnabled": True},
        "SSESpecification": {"SSEEnabled": True},
        "Tags": [{"Key": "inkwell:stage", "Value": stage}],
    }
    if table.ttl:
        props["TimeToLiveSpecification"] = {"AttributeName": table.ttl, "Enabled": True}
    policy = retained(stage)
    return {
        "Type": "AWS::DynamoDB::Table",
        "DeletionPolicy": policy,
        "UpdateReplacePolicy": policy,
        "Properties": props,
    }


def queue_resources(queue: catalog.Queue, stage: str) -> dict[str, Any]:
    """The queue, its dead-letter queue, and an alarm on the dead-letter queue's depth."""
    tags = [{"Key": "inkwell:stage", "Value": stage}]
    dlq = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": config.physical_name(stage, queue.dlq),
            "MessageRetentionPeriod": DLQ_RETENTION,
            "SqsManagedSseEnabled": True,
            "Tags": tags,
            **({"FifoQueue": True} if queue.fifo else {}),
        },
    }
    main = {
        "Type": "AWS::SQS::Queue",
        "Properties": {
            "QueueName": config.physical_name(stage, queue.name),
            "VisibilityTimeout": queue.visibility_timeout,
            "MessageRetentionPeriod": MESSAGE_RETENTION,
            "ReceiveMessageWaitTimeSeconds": 20,
            "RedrivePolicy": {
                "deadLetterTargetArn": {"Fn::GetAtt": [dlq_id(queue.name), "Arn"]},
                "maxReceiveCount": queue.attempts,
            },
            "SqsManagedSseEnabled": True,
            "Tags": tags,
            **({"FifoQueue": True} if queue.fifo else {}),
        },
    }
    alarm = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {
            "AlarmName": config.physical_name(stage, f"{queue.dlq}-not-empty"),
            "AlarmDescription": f"Jobs of the {queue.name} queue failed {queue.attempts} times and wait in its "
            "dead-letter queue (retry or clean them from the dashboard)",
            "Namespace": "AWS/SQS",
            "MetricName": "ApproximateNumberOfMessagesVisible",
            "Dimensions": [{"Name": "QueueName", "Value": {"Fn::GetAtt": [dlq_id(queue.name), "QueueName"]}}],
            "Statistic": "Maximum",
            "Period": 300,
            "EvaluationPeriods": 1,
            "Threshold": 1,
            "ComparisonOperator": "GreaterThanOrEqualToThreshold",
            "TreatMissingData": "notBreaching",
            "AlarmActions": [{"Ref": ALARM_TOPIC}],
            "OKActions": [{"Ref": ALARM_TOPIC}],
        },
    }
    return {queue_id(queue.name): main, dlq_id(queue.name): dlq, logical_id(queue.dlq, "Alarm"): alarm}


ACCOUNT_ROOT = {"Fn::Sub": "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"}


def _lifecycle_rule() -> dict[str, Any]:
    """provision.ABORT_INCOMPLETE_UPLOADS as CloudFormation spells it."""
    from infra.provision import ABORT_INCOMPLETE_UPLOADS as rule

    days = rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"]
    return {"Id": rule["ID"], "Status": rule["Status"], "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": days}}


def catalogue_resources(stage: str) -> dict[str, Any]:
    resources: dict[str, Any] = {}
    for table in catalog.TABLES.values():
        resources[table_id(table.name)] = table_resource(table, stage)
    for queue in catalog.QUEUES.values():
        resources.update(queue_resources(queue, stage))
    resources[AUDIT_KEY] = {
        "Type": "AWS::KMS::Key",
        "DeletionPolicy": retained(stage),
        "UpdateReplacePolicy": retained(stage),
        "Properties": {
            "Description": f"Signs the audit digests of stage {stage}",
            "KeySpec": "ECC_NIST_P256",
            "KeyUsage": "SIGN_VERIFY",
            # the account administers the key; the roles that use it are named when the functions
            # are known (`audit_key_policy`, in `template`)
            "KeyPolicy": iam.audit_key_policy(ACCOUNT_ROOT, [], []),
        },
    }
    resources[AUDIT_KEY + "Alias"] = {
        "Type": "AWS::KMS::Alias",
        "Properties": {"AliasName": iam.audit_key_alias(stage), "TargetKeyId": {"Ref": AUDIT_KEY}},
    }
    bucket: dict[str, Any] = {
        "BucketEncryption": {
            "ServerSideEncryptionConfiguration": [{"ServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
        },
        "VersioningConfiguration": {"Status": "Enabled"},
        "LifecycleConfiguration": {"Rules": [_lifecycle_rule()]},
        "PublicAccessBlockConfiguration": dict.fromkeys(
            ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets"), True
        ),
    }
    if retained(stage) == "Retain":  # a kept stage's exports cannot be overwritten or deleted for 90 days
        bucket["ObjectLockEnabled"] = True
        bucket["ObjectLockConfiguration"] = {
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 90}},
        }
    resources[EXPORT_BUCKET] = {
        "Type": "AWS::S3::Bucket",
        "DeletionPolicy": retained(stage),
        "UpdateReplacePolicy": retained(stage),
        "Properties": bucket,
    }
    resources[ALARM_TOPIC] = {
        "Type": "AWS::SNS::Topic",
        "Properties": {"TopicName": config.physical_name(stage, "alarms"), "KmsMasterKeyId": "alias/aws/sns"},
    }
    resources["AlarmEmailSubscription"] = {
        "Type": "AWS::SNS::Subscription",
        "Condition": "HasAlarmEmail",
        "Properties": {"TopicArn": {"Ref": ALARM_TOPIC}, "Protocol": "email", "Endpoint": {"Ref": "AlarmEmail"}},
    }
    return resources


def environment(shape: AppShape, webhook_url: str = "") -> dict[str, Any]:
    """What every function is told: each resource's physical name, the WebSocket endpoints and
    (when given at package time, else from `.chalice/config.json`) the article webhook."""
    # One variable per logical name (config.Settings.resource_name reads one for tables and queues
    # alike): `articles` is a table and a queue, both named inkwell-<stage>-articles. Referencing
    # the resources also makes CloudFormation create them before any function.
    variables: dict[str, Any] = {}
    for queue in catalog.QUEUES.values():
        variables[config.name_variable(queue.name)] = {"Fn::GetAtt": [queue_id(queue.name), "QueueName"]}
        variables[config.name_variable(queue.dlq)] = {"Fn::GetAtt": [dlq_id(queue.name), "QueueName"]}
    for table in catalog.TABLES.values():
        variables[config.name_variable(table.name)] = {"Ref": table_id(table.name)}
    if shape.websocket:
        variables[config.WS_MANAGEMENT_ENDPOINT] = api_url("https", "WebsocketAPI")
        variables[config.WS_URL] = api_url("wss", "WebsocketAPI")
    variables[config.AUDIT_SIGNING_KEY] = {"Fn::GetAtt": [AUDIT_KEY, "Arn"]}
    variables[config.AUDIT_EXPORT_BUCKET] = {"Ref": EXPORT_BUCKET}
    if webhook_url:
        variables[config.ARTICLE_WEBHOOK_URL] = webhook_url
    return variables


def consumed_queue(source_queue: str, stage: str) -> catalog.Queue | None:
    """The catalogue queue an SQS event source reads (its physical name or ARN)."""
    name = source_queue.rsplit(":", 1)[-1]
    for queue in catalog.QUEUES.values():
        if name == config.physical_name(stage, queue.name):
            return queue
    return None


def log_group(name: Any, stage: str) -> dict[str, Any]:
    retention = monitoring.log_retention_days(stage)
    return {"Type": "AWS::Logs::LogGroup", "Properties": {"LogGroupName": name, "RetentionInDays": retention}}


def monitoring_resources(shape: AppShape) -> dict[str, Any]:
    """Log groups, access logs, REST tracing, the alarms and the dashboard (`infra.monitoring`)."""
    stage = shape.stage
    resources: dict[str, Any] = {}
    for cfn in shape.functions:
        resources[cfn + "LogGroup"] = log_group({"Fn::Sub": "/aws/lambda/${" + cfn + "}"}, stage)
    account = "ApiGatewayAccount"
    if shape.rest or shape.websocket:
        # API Gateway writes access logs with one role per account and region (a singleton setting)
        resources["ApiGatewayCloudWatchRole"] = {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "AssumeRolePolicyDocument": {
                    "Version": "2012-10-17",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Principal": {"Service": "apigateway.amazonaws.com"},
                            "Action": "sts:AssumeRole",
                        }
                    ],
                },
                "ManagedPolicyArns": [
                    {
                        "Fn::Sub": "arn:${AWS::Partition}:iam::aws:policy/service-role/AmazonAPIGatewayPushToCloudWatchLogs"
                    }
                ],
            },
        }
        resources[account] = {
            "Type": "AWS::ApiGateway::Account",
            "Properties": {"CloudWatchRoleArn": {"Fn::GetAtt": ["ApiGatewayCloudWatchRole", "Arn"]}},
        }
    if shape.rest:
        resources["RestAccessLogGroup"] = log_group(monitoring.access_log_group(stage, "rest"), stage)
        resources["RestAPI"] = {
            "DependsOn": [account],
            "Properties": {
                "TracingEnabled": True,
                "AccessLogSetting": {
                    "DestinationArn": {"Fn::GetAtt": ["RestAccessLogGroup", "Arn"]},
                    "Format": monitoring.REST_ACCESS_LOG_FORMAT,
                },
            },
        }
    if shape.websocket:
        resources["WebsocketAccessLogGroup"] = log_group(monitoring.access_log_group(stage, "websocket"), stage)
        resources["WebsocketAPIStage"] = {
            "DependsOn": [account],
            "Properties": {
                "AccessLogSettings": {
                    "DestinationArn": {"Fn::GetAtt": ["WebsocketAccessLogGroup", "Arn"]},
                    "Format": monitoring.WEBSOCKET_ACCESS_LOG_FORMAT,
                }
            },
        }
    names = monitoring.Names.template(stage, {"Ref": ALARM_TOPIC}, queue_id)
    prefix = config.physical_name(stage) + "-"
    for alarm in monitoring.alarms(shape, names):
        resources[logical_id(alarm["AlarmName"].removeprefix(prefix), "Alarm")] = {
            "Type": "AWS::CloudWatch::Alarm",
            "Properties": iam.sub(alarm),
        }
    resources["Dashboard"] = {
        "Type": "AWS::CloudWatch::Dashboard",
        "Properties": {
            "DashboardName": monitoring.dashboard_name(stage),
            "DashboardBody": {"Fn::Sub": monitoring.dashboard_body(shape, names)},
        },
    }
    return resources


def throttle(resources: dict[str, Any], shape: AppShape, limits: dict[str, tuple[float, int]]) -> None:
    """Both API stages throttled: every method of the REST stage, the WebSocket stage's default route."""
    if shape.rest:
        rate, burst = limits["rest"]
        settings = {"ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst}
        resources.setdefault("RestAPI", {}).setdefault("Properties", {})["MethodSettings"] = [settings]
    if shape.websocket:
        rate, burst = limits["websocket"]
        route = {"ThrottlingRateLimit": rate, "ThrottlingBurstLimit": burst}
        resources.setdefault("WebsocketAPIStage", {}).setdefault("Properties", {})["DefaultRouteSettings"] = route


def overlay(
    shape: AppShape, webhook_url: str = "", limits: dict[str, tuple[float, int]] | None = None
) -> dict[str, Any]:
    """The template merged into Chalice's by `chalice package --merge-template`; `limits` are the
    stage's API throttling (default: the stage's in `.chalice/config.json`)."""
    stage = shape.stage
    resources = catalogue_resources(stage)
    env = environment(shape, webhook_url)
    module_grants = iam.committed_modules()
    reached = iam.functions()
    timeouts: dict[str, int] = {}
    events: dict[str, dict[str, Any]] = {}
    for source in shape.sqs:
        queue = consumed_queue(source.queue, stage)
        props: dict[str, Any] = {"FunctionResponseTypes": ["ReportBatchItemFailures"]}
        if queue is not None:
            props["Queue"] = queue_arn_ref(queue.name)
            props["ScalingConfig"] = {"MaximumConcurrency": queue.concurrency}
            timeouts[source.function] = max(timeouts.get(source.function, 0), queue.function_timeout)
        events.setdefault(source.function, {})[source.event] = {"Properties": props}
    resources.update(monitoring_resources(shape))
    throttle(resources, shape, limits if limits is not None else throttling.throttling(stage))
    resources.update(scheduler_template.template_resources(shape))
    granted: dict[str, dict[str, list[str]]] = {}
    for cfn, fn in shape.functions.items():
        props = {"Environment": {"Variables": env}}
        if cfn in timeouts:
            props["Timeout"] = timeouts[cfn]
        if cfn in events:
            props["Events"] = events[cfn]
        resources[cfn] = {"Properties": props}
        if fn.role_cfn:  # each function's role: what its handlers can call (infra.iam, infra.reach)
            reach = reached[fn.name]
            granted[cfn] = iam.function_grants(reach.modules, reach.queue, module_grants)
            document = iam.template_policy(stage, granted[cfn])
            resources[fn.role_cfn] = {
                "Properties": {"Policies": [{"PolicyName": "InkwellLeastPrivilege", "PolicyDocument": document}]}
            }
    # the audit key's users by their roles (the roles name the key by its alias, not its ARN: a
    # reference both ways would be a cycle)
    signers, readers = iam.key_users(granted)
    role = {cfn: {"Fn::GetAtt": [fn.role_cfn, "Arn"]} for cfn, fn in shape.functions.items() if fn.role_cfn}
    key_policy = iam.audit_key_policy(ACCOUNT_ROOT, [role[n] for n in signers], [role[n] for n in readers])
    resources.setdefault(AUDIT_KEY, {}).setdefault("Properties", {})["KeyPolicy"] = key_policy
    outputs: dict[str, Any] = {
        "AlarmTopicArn": {"Value": {"Ref": ALARM_TOPIC}},
        "DashboardName": {"Value": {"Ref": "Dashboard"}},
    }
    if shape.rest:
        outputs["RestApiUrl"] = {
            "Description": "The REST API's base URL",
            "Value": api_url("https", "RestAPI"),
        }
    if shape.websocket:
        outputs["WebSocketUrl"] = {
            "Description": "The WebSocket API's URL (append ?ticket=...)",
            "Value": api_url("wss", "WebsocketAPI"),
        }
    for table in catalog.TABLES.values():
        outputs[table_id(table.name) + "Name"] = {"Value": {"Ref": table_id(table.name)}}
    for queue in catalog.QUEUES.values():
        outputs[queue_id(queue.name) + "Url"] = {"Value": {"Ref": queue_id(queue.name)}}
    return {
        "Parameters": {
            "AlarmEmail": {
                "Type": "String",
                "Default": "",
                "Description": "Where the stage's alarms are emailed (empty: no subscription)",
            }
        },
        "Conditions": {"HasAlarmEmail": {"Fn::Not": [{"Fn::Equals": [{"Ref": "AlarmEmail"}, ""]}]}},
        "Resources": resources,
        "Outputs": outputs,
    }


# --- checks ----------------------------------------------------------------------------------


def _of_type(template: dict[str, Any], kind: str) -> dict[str, Any]:
    return {k: v for k, v in template.get("Resources", {}).items() if v.get("Type") == kind}


def sqs_events(template: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    """(function, event, properties) of every SQS event source in a template."""
    found = []
    for fn_id, fn in _of_type(template, "AWS::Serverless::Function").items():
        for ev_id, ev in (fn["Properties"].get("Events") or {}).items():
            if ev.get("Type") == "SQS":
                found.append((fn_id, ev_id, ev["Properties"]))
    for res_id, res in _of_type(template, "AWS::Lambda::EventSourceMapping").items():
        found.append((res.get("Properties", {}).get("FunctionName", "?"), res_id, res.get("Properties", {})))
    return found


def schedule_expressions(template: dict[str, Any]) -> list[str]:
    """The expressions of the template's EventBridge Scheduler schedules (and of any rule left)."""
    found = [
        " ".join(str(res["Properties"]["ScheduleExpression"]).split())
        for res in _of_type(template, "AWS::Scheduler::Schedule").values()
    ]
    for fn in _of_type(template, "AWS::Serverless::Function").values():
        for ev in (fn["Properties"].get("Events") or {}).values():
            if ev.get("Type") == "Schedule":
                found.append(" ".join(str(ev["Properties"]["Schedule"]).split()))
    return sorted(found)


def problems(template: dict[str, Any], shape: AppShape | None = None) -> list[str]:
    """What a packaged template lacks of the issue's list (empty when complete)."""
    out: list[str] = []
    res = template.get("Resources", {})
    for table in catalog.TABLES.values():
        t = res.get(table_id(table.name), {}).get("Properties")
        if t is None:
            out.append(f"table {table.name} is missing")
            continue
        if table.ttl and t.get("TimeToLiveSpecification", {}).get("AttributeName") != table.ttl:
            out.append(f"table {table.name} has no TTL on {table.ttl}")
        if not t.get("PointInTimeRecoverySpecification", {}).get("PointInTimeRecoveryEnabled"):
            out.append(f"table {table.name} has no point-in-time recovery")
        if not t.get("SSESpecification", {}).get("SSEEnabled"):
            out.append(f"table {table.name} is not encrypted with KMS")
        if {i["IndexName"] for i in t.get("GlobalSecondaryIndexes", [])} != {i.name for i in table.indexes}:
            out.append(f"table {table.name} does not have the catalogue's indexes")
    functions = _of_type(template, "AWS::Serverless::Function")
    for queue in catalog.QUEUES.values():
        q = res.get(queue_id(queue.name), {}).get("Properties")
        if q is None or dlq_id(queue.name) not in res:
            out.append(f"queue {queue.name} or its dead-letter queue is missing")
            continue
        redrive = q.get("RedrivePolicy", {})
        if redrive.get("maxReceiveCount") != queue.attempts or "deadLetterTargetArn" not in redrive:
            out.append(f"queue {queue.name} has no redrive after {queue.attempts} attempts")
        if not q.get("SqsManagedSseEnabled") or not res[dlq_id(queue.name)]["Properties"].get("SqsManagedSseEnabled"):
            out.append(f"queue {queue.name} is not encrypted")
        alarm = res.get(logical_id(queue.dlq, "Alarm"), {})
        if alarm.get("Type") != "AWS::CloudWatch::Alarm":
            out.append(f"no alarm on {queue.dlq} depth")
        for fn_id, _, props in sqs_events(template):
            if props.get("Queue") == queue_arn_ref(queue.name):
                timeout = functions.get(fn_id, {}).get("Properties", {}).get("Timeout", 0)
                if q["VisibilityTimeout"] < 6 * timeout:
                    out.append(f"queue {queue.name}: visibility {q['VisibilityTimeout']} s < 6 x {fn_id} timeout")
    for fn_id, ev_id, props in sqs_events(template):
        spec = next((q for q in catalog.QUEUES.values() if props.get("Queue") == queue_arn_ref(q.name)), None)
        most = props.get("ScalingConfig", {}).get("MaximumConcurrency")
        if spec is not None and most != spec.concurrency:
            out.append(
                f"SQS event source {fn_id}.{ev_id}: maximum concurrency {most}, the catalogue says {spec.concurrency}"
            )
    for fn_id, ev_id, props in sqs_events(template):
        if props.get("FunctionResponseTypes") != ["ReportBatchItemFailures"]:
            out.append(f"SQS event source {fn_id}.{ev_id} does not report batch item failures")
    if shape is not None:
        for source in shape.sqs:
            if consumed_queue(source.queue, shape.stage) is None:
                out.append(f"{source.function} reads {source.queue}, which is not a catalogue queue of this stage")
        if shape.websocket and "WebsocketAPI" not in res:
            out.append("the WebSocket API is missing")
        for cfn in shape.functions:
            env = functions.get(cfn, {}).get("Properties", {}).get("Environment", {}).get("Variables", {})
            if shape.websocket and config.WS_MANAGEMENT_ENDPOINT not in env:
                out.append(f"{cfn} is not told the WebSocket management endpoint")
            if any(config.name_variable(t) not in env for t in catalog.TABLES):
                out.append(f"{cfn} is not told the table names")
    out += monitoring_problems(template, shape)
    out += scheduler_template.template_problems(template, shape)
    for role_id, role in _of_type(template, "AWS::IAM::Role").items():
        for policy in role["Properties"].get("Policies", []):
            for statement in policy["PolicyDocument"]["Statement"]:
                actions = statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
                if any("*" in a for a in actions):
                    out.append(f"role {role_id} grants a wildcard action")
    return out


def monitoring_problems(template: dict[str, Any], shape: AppShape | None = None) -> list[str]:
    """Tracing, log retention, access logs and alarms of a packaged template."""
    out: list[str] = []
    res = template.get("Resources", {})
    groups = {
        json.dumps(g["Properties"].get("LogGroupName")): g for g in _of_type(template, "AWS::Logs::LogGroup").values()
    }
    alarmed = {
        json.dumps(a["Properties"].get("Dimensions")) + a["Properties"].get("MetricName", "")
        for a in _of_type(template, "AWS::CloudWatch::Alarm").values()
    }
    for fn_id, fn in _of_type(template, "AWS::Serverless::Function").items():
        if fn["Properties"].get("Tracing") != "Active":
            out.append(f"function {fn_id} is not traced")
        group = groups.get(json.dumps({"Fn::Sub": "/aws/lambda/${" + fn_id + "}"}))
        if group is None or not group["Properties"].get("RetentionInDays"):
            out.append(f"function {fn_id} has no log group with a retention period")
        for metric in ("Errors", "Throttles"):
            dims = [{"Name": "FunctionName", "Value": {"Fn::Sub": "${" + fn_id + "}"}}]
            if json.dumps(dims) + metric not in alarmed:
                out.append(f"function {fn_id} has no alarm on {metric}")
    rest = res.get("RestAPI", {}).get("Properties")
    if rest is not None and (not rest.get("TracingEnabled") or "AccessLogSetting" not in rest):
        out.append("the REST API stage has no tracing or no access logs")
    ws = res.get("WebsocketAPIStage", {}).get("Properties")
    if ws is not None and "AccessLogSettings" not in ws:
        out.append("the WebSocket API stage has no access logs")
    out += throttling_problems(template)
    if shape is not None:
        names = monitoring.Names.template(shape.stage, {"Ref": ALARM_TOPIC}, queue_id)
        wanted = {a["AlarmName"] for a in monitoring.alarms(shape, names)}
        have = {a["Properties"].get("AlarmName") for a in _of_type(template, "AWS::CloudWatch::Alarm").values()}
        out += [f"alarm {name} is missing" for name in sorted(wanted - have)]
    if not _of_type(template, "AWS::CloudWatch::Dashboard"):
        out.append("the dashboard is missing")
    return out


def throttling_problems(template: dict[str, Any]) -> list[str]:
    """Either API stage of a packaged template without a rate and burst limit."""
    res = template.get("Resources", {})
    out: list[str] = []
    rest = res.get("RestAPI", {}).get("Properties")
    if rest is not None:
        everything = [
            m for m in rest.get("MethodSettings", []) if (m.get("ResourcePath"), m.get("HttpMethod")) == ("/*", "*")
        ]
        if not everything or not all(everything[0].get(k) for k in (throttling.RATE, throttling.BURST)):
            out.append("the REST API stage is not throttled (MethodSettings /* *)")
    ws = res.get("WebsocketAPIStage", {}).get("Properties")
    if ws is not None:
        route = ws.get("DefaultRouteSettings", {})
        if not all(route.get(k) for k in (throttling.RATE, throttling.BURST)):
            out.append("the WebSocket API stage is not throttled (DefaultRouteSettings)")
    return out


def write(path: str, document: dict[str, Any]) -> None:
    with open(path, "w") as f:
        json.dump(document, f, indent=2)
        f.write("\n")
