"""A stage's deployed state where every machine sees it, what a failed run left, and the check
that a deploy holds what it should.

- **The record.** Chalice keeps what it made in `.chalice/deployed/<stage>.json` (gitignored)
  and writes it only after a successful run. `make deploy` and `make teardown` fetch it from the
  SSM parameter `/inkwell/<stage>/deploy/chalice-record` before running Chalice and store it
  there after, also after a failed run (`fetch`, `store`).
- **Adoption.** Before Chalice runs, `adopt` finds the stage's roles, functions, SQS mappings,
  rules, REST API and WebSocket API by their names (the REST API by its integration with the
  stage's REST function: Chalice names it after the app only) and writes them into the record,
  so a run after a failed one (or from a clone without a record) updates them instead of
  creating second copies; duplicates a run of an older version left are deleted, and so is a
  WebSocket API without its stage (Chalice's update would never create the stage).
- **Verification.** `problems` lists what a deployed stage lacks: one mapping per SQS consumer,
  reporting batch item failures, with its queue's maximum concurrency; each schedule's EventBridge
  Scheduler schedule (and no rule of the `@app.schedule` days); each function's environment; the
  WebSocket endpoints.
"""

from __future__ import annotations

import base64
import contextlib
import gzip
import json
import urllib.parse
from pathlib import Path
from typing import Any

from chalicelib import catalog, config
from infra import app_shape, iam
from infra import schedules as scheduler_deploy
from infra.app_shape import AppShape
from infra.monitoring import API_STAGE

BATCH_FAILURES = ["ReportBatchItemFailures"]
Record = dict[str, Any]


def parameter(stage: str) -> str:
    return f"{iam.secrets_prefix(stage)}/deploy/chalice-record"


def record_path(stage: str, project_dir: Path = app_shape.ROOT) -> Path:
    return project_dir / ".chalice" / "deployed" / f"{stage}.json"


def read(stage: str, project_dir: Path = app_shape.ROOT) -> Record:
    path = record_path(stage, project_dir)
    return json.loads(path.read_text()) if path.exists() else {"resources": []}


def write(stage: str, record: Record, project_dir: Path = app_shape.ROOT) -> None:
    path = record_path(stage, project_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2) + "\n")


def encode(record: Record) -> str:
    """gzip + base64: a stage's record (14 KB of JSON) fits a standard parameter (~1.3 KB)."""
    return base64.b64encode(gzip.compress(json.dumps(record, separators=(",", ":")).encode())).decode()


def decode(value: str) -> Record:
    return dict(json.loads(gzip.decompress(base64.b64decode(value))))


def fetch(ssm: Any, stage: str, project_dir: Path = app_shape.ROOT) -> Record:
    """The stage's stored record, written to the local file (the local one when none is stored)."""
    try:
        value = ssm.get_parameter(Name=parameter(stage))["Parameter"]["Value"]
    except ssm.exceptions.ParameterNotFound:
        return read(stage, project_dir)
    record = decode(value)
    write(stage, record, project_dir)
    return record


def store(ssm: Any, stage: str, project_dir: Path = app_shape.ROOT) -> None:
    """Store the local record (whatever the run left in it)."""
    record = read(stage, project_dir)
    ssm.put_parameter(
        Name=parameter(stage), Value=encode(record), Type="String", Tier="Intelligent-Tiering", Overwrite=True
    )


def forget(ssm: Any, stage: str, project_dir: Path = app_shape.ROOT) -> None:
    with contextlib.suppress(ssm.exceptions.ParameterNotFound):
        ssm.delete_parameter(Name=parameter(stage))
    record_path(stage, project_dir).unlink(missing_ok=True)


# --- what exists, by name ----------------------------------------------------------------------


def _mappings(lambda_client: Any, function_name: str) -> list[dict[str, Any]]:
    pages = lambda_client.get_paginator("list_event_source_mappings").paginate(FunctionName=function_name)
    try:
        return [m for page in pages for m in page["EventSourceMappings"] if ":sqs:" in m.get("EventSourceArn", "")]
    except lambda_client.exceptions.ResourceNotFoundException:  # no such function
        return []


def rest_api_ids(apigateway: Any, shape: AppShape) -> list[str]:
    """REST APIs integrated with the stage's REST function (Chalice names them after the app only)."""
    handler = next((f for f in shape.functions.values() if f.name == "api_handler"), None)
    if handler is None:
        return []
    target = f":function:{handler.function_name}/invocations"
    found = []
    for page in apigateway.get_paginator("get_rest_apis").paginate():
        for api in page["items"]:
            resources = apigateway.get_paginator("get_resources").paginate(restApiId=api["id"], embed=["methods"])
            uris = [
                method.get("methodIntegration", {}).get("uri", "")
                for p in resources
                for resource in p["items"]
                for method in resource.get("resourceMethods", {}).values()
            ]
            if any(uri.endswith(target) for uri in uris):
                found.append(api["id"])
    return found


def websocket_api_ids(apigatewayv2: Any, shape: AppShape) -> list[str]:
    if not shape.websocket_name:
        return []
    apis = apigatewayv2.get_apis().get("Items", [])
    return [a["ApiId"] for a in apis if a["Name"] == shape.websocket_name and a.get("ProtocolType") == "WEBSOCKET"]


def _has_stage(apigatewayv2: Any, api_id: str) -> bool:
    stages = apigatewayv2.get_stages(ApiId=api_id).get("Items", [])
    return any(st["StageName"] == API_STAGE for st in stages)


def _function_arn(lambda_client: Any, name: str) -> str | None:
    try:
        return str(lambda_client.get_function_configuration(FunctionName=name)["FunctionArn"])
    except lambda_client.exceptions.ResourceNotFoundException:
        return None


def _role_arn(iam_client: Any, name: str) -> str | None:
    try:
        return str(iam_client.get_role(RoleName=name)["Role"]["Arn"])
    except iam_client.exceptions.NoSuchEntityException:
        return None


def _rule_exists(events: Any, name: str) -> bool:
    try:
        events.describe_rule(Name=name)
        return True
    except events.exceptions.ResourceNotFoundException:
        return False


def _queue_name(source_queue: str) -> str:
    return source_queue.rsplit(":", 1)[-1]


def found_resources(clients: dict[str, Any], shape: AppShape, region: str) -> tuple[list[Record], list[str]]:
    """What of the stage exists, as Chalice records it, in Chalice's order; and what was deleted
    as a duplicate (a second mapping of one queue, a second API)."""
    found: list[Record] = []
    deleted: list[str] = []
    functions = {fn.name: fn for fn in shape.functions.values()}
    roles = {fn.role_resource: fn.role_name for fn in functions.values() if fn.role_name}
    for resource, role in roles.items():
        if arn := _role_arn(clients["iam"], role):
            found.append({"name": resource, "resource_type": "iam_role", "role_arn": arn, "role_name": role})
    arns = {}
    for fn in functions.values():
        if arn := _function_arn(clients["lambda"], fn.function_name):
            arns[fn.name] = arn
            found.append({"name": fn.name, "resource_type": "lambda_function", "lambda_arn": arn})
    for source in shape.sqs:
        fn = shape.functions[source.function]
        queue = _queue_name(source.queue)
        if fn.name not in arns:
            continue
        mine = [m for m in _mappings(clients["lambda"], fn.function_name) if _queue_name(m["EventSourceArn"]) == queue]
        for extra in mine[1:]:
            clients["lambda"].delete_event_source_mapping(UUID=extra["UUID"])
            deleted.append(f"event source mapping {extra['UUID']} ({fn.function_name} <- {queue}, a duplicate)")
        if mine:
            found.append(
                {
                    "name": source.resource,
                    "resource_type": "sqs_event",
                    "queue_arn": mine[0]["EventSourceArn"],
                    "event_uuid": mine[0]["UUID"],
                    "queue": queue,
                    "lambda_arn": arns[fn.name],
                }
            )
    for schedule in shape.schedules:
        # a rule an older version made for the schedule (`@app.schedule`): in the record, Chalice
        # deletes it (the schedule is EventBridge Scheduler's now, infra.schedules)
        rule = shape.functions[schedule.function].function_name + "-event"
        if _rule_exists(clients["events"], rule):
            found.append(
                {
                    "name": f"{shape.functions[schedule.function].name}-event",
                    "resource_type": "cloudwatch_event",
                    "rule_name": rule,
                }
            )
    rest = rest_api_ids(clients["apigateway"], shape) if shape.rest else []
    for api_id in rest[1:]:
        clients["apigateway"].delete_rest_api(restApiId=api_id)
        deleted.append(f"REST API {api_id} (a duplicate)")
    if rest:
        url = f"https://{rest[0]}.execute-api.{region}.amazonaws.com/api/"
        found.append({"name": "rest_api", "resource_type": "rest_api", "rest_api_id": rest[0], "rest_api_url": url})
    websocket = websocket_api_ids(clients["apigatewayv2"], shape)
    staged = [a for a in websocket if _has_stage(clients["apigatewayv2"], a)]
    for api_id in websocket:
        # Chalice's update of a WebSocket API never creates its stage: one a failed run left
        # without it is deleted, and made whole again
        if api_id not in staged[:1]:
            clients["apigatewayv2"].delete_api(ApiId=api_id)
            deleted.append(f"WebSocket API {api_id} ({'a duplicate' if api_id in staged else 'without its stage'})")
    websocket = staged
    if websocket:
        url = f"wss://{websocket[0]}.execute-api.{region}.amazonaws.com/api/"
        found.append(
            {
                "name": "websocket_api",
                "resource_type": "websocket_api",
                "websocket_api_url": url,
                "websocket_api_id": websocket[0],
            }
        )
    return found, deleted


def adopt(clients: dict[str, Any], shape: AppShape, record: Record, region: str) -> tuple[Record, list[str]]:
    """The record with everything of the stage found by name in it (found values win: they are
    what exists); returns it and the duplicates deleted."""
    found, deleted = found_resources(clients, shape, region)
    by_name = {r["name"]: r for r in found}
    resources = [by_name.pop(r["name"], r) for r in record.get("resources", [])]
    resources += list(by_name.values())
    return {**record, "resources": resources, "schema_version": "2.0", "backend": "api"}, deleted


# --- verification ------------------------------------------------------------------------------


def problems(
    clients: dict[str, Any],
    shape: AppShape,
    record: Record,
    expected_env: dict[str, str],
    policies: dict[str, dict[str, Any]] | None = None,
) -> list[str]:
    """What the deployed stage lacks (empty when it is whole); given `policies` (role name ->
    document), every function's role must carry its own (Chalice names a role's policy after the role)."""
    out: list[str] = []
    for role, policy in sorted((policies or {}).items()):
        try:
            document = clients["iam"].get_role_policy(RoleName=role, PolicyName=role)["PolicyDocument"]
        except clients["iam"].exceptions.NoSuchEntityException:
            document = None
        if isinstance(document, str):
            document = json.loads(urllib.parse.unquote(document))
        if document != policy:
            out.append(
                f"role {role} does not carry its function's policy (.chalice/policy-{shape.stage}-<function>.json)"
            )
    lambda_client = clients["lambda"]
    for source in shape.sqs:
        fn = shape.functions[source.function]
        queue = _queue_name(source.queue)
        spec = next((q for q in catalog.QUEUES.values() if config.physical_name(shape.stage, q.name) == queue), None)
        mine = [m for m in _mappings(lambda_client, fn.function_name) if _queue_name(m["EventSourceArn"]) == queue]
        if len(mine) != 1:
            out.append(f"{fn.function_name} has {len(mine)} event source mappings on {queue}, not 1")
            continue
        if mine[0].get("FunctionResponseTypes") != BATCH_FAILURES:
            out.append(f"the mapping {fn.function_name} <- {queue} does not report batch item failures")
        most = (mine[0].get("ScalingConfig") or {}).get("MaximumConcurrency")
        if spec is not None and most != spec.concurrency:
            out.append(
                f"the mapping {fn.function_name} <- {queue} has maximum concurrency {most}, not {spec.concurrency}"
            )
    for schedule in shape.schedules:
        rule = shape.functions[schedule.function].function_name + "-event"
        if _rule_exists(clients["events"], rule):
            out.append(f"the EventBridge rule {rule} is still there (schedules are EventBridge Scheduler's)")
    out += scheduler_deploy.problems(clients, shape)
    for fn in shape.functions.values():
        try:
            current = lambda_client.get_function_configuration(FunctionName=fn.function_name)
        except lambda_client.exceptions.ResourceNotFoundException:
            out.append(f"function {fn.function_name} is missing")
            continue
        variables = (current.get("Environment") or {}).get("Variables", {})
        wrong = sorted(k for k, v in expected_env.items() if variables.get(k) != v)
        if wrong:
            out.append(f"function {fn.function_name} lacks {', '.join(wrong)} in its environment")
    if shape.websocket:
        apis = websocket_api_ids(clients["apigatewayv2"], shape)
        recorded = [r for r in record.get("resources", []) if r.get("resource_type") == "websocket_api"]
        if len(apis) != 1 or not recorded or recorded[0].get("websocket_api_id") != apis[0]:
            out.append(f"{len(apis)} WebSocket APIs named {shape.websocket_name}, not the one recorded")
        elif not _has_stage(clients["apigatewayv2"], apis[0]):
            out.append(f"WebSocket API {apis[0]} has no stage {API_STAGE}")
        elif f"//{apis[0]}." not in expected_env.get(config.WS_MANAGEMENT_ENDPOINT, ""):
            out.append("the WebSocket endpoints are not set")
    if shape.rest and len(rest_api_ids(clients["apigateway"], shape)) != 1:
        out.append("not exactly one REST API invokes the stage's REST function")
    return out


def leftovers(clients: dict[str, Any], shape: AppShape) -> list[str]:
    """What of the stage Chalice made still exists, by name (empty after a whole teardown)."""
    left = []
    for fn in shape.functions.values():
        if _function_arn(clients["lambda"], fn.function_name):
            left.append(f"function {fn.function_name}")
            left += [f"event source mapping {m['UUID']}" for m in _mappings(clients["lambda"], fn.function_name)]
        if fn.role_name and _role_arn(clients["iam"], fn.role_name) and f"role {fn.role_name}" not in left:
            left.append(f"role {fn.role_name}")
    rules = [shape.functions[s.function].function_name + "-event" for s in shape.schedules]
    left += [f"rule {rule}" for rule in rules if _rule_exists(clients["events"], rule)]
    left += [f"REST API {api}" for api in rest_api_ids(clients["apigateway"], shape)]
    left += [f"WebSocket API {api}" for api in websocket_api_ids(clients["apigatewayv2"], shape)]
    return left
