"""The stage's EventBridge Scheduler side, on both deploy paths: a schedule group
(`inkwell-<stage>`), a schedule per catalogue schedule (its time zone, its flexible window off,
invoking the schedule's own Lambda with `chalicelib.schedules.remote.fire_input`), and the role
Scheduler assumes (`inkwell-<stage>-scheduler`): invoke those functions and send to the stage's
queues (delayed jobs' one-time schedules, `chalicelib.jobs.later`), nothing else.

- `template_resources(shape)`: the same for the CloudFormation overlay (`make package`).
- `deploy(...)`: the converging `chalice deploy` path (`python -m infra.chalice_cli deploy`):
  creates what is missing and puts targets right, keeping an expression, zone or state an admin
  changed at run time (`infra.provision.create_schedules`).
- `problems(...)` / `template_problems(...)`: what a deployed stage / a packaged template lacks.
- `teardown(...)`: the schedules, the group and the role go.

The EventBridge rules Chalice made for `@app.schedule` handlers before are gone: the handlers
are plain `app.lambda_function`s now, and a rule found by its old name is adopted into Chalice's
record (`infra.deploy_state`) so that `chalice deploy` deletes it.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import catalog, config
from chalicelib.schedules import remote
from infra.app_shape import AppShape

GROUP_ID = "SchedulesGroup"
ROLE_ID = "SchedulerRole"
RETRY = {"MaximumRetryAttempts": 3, "MaximumEventAgeInSeconds": 3600}


def role_name(stage: str) -> str:
    return config.physical_name(stage, "scheduler")


def trust(account: Any) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"Service": "scheduler.amazonaws.com"},
                "Action": "sts:AssumeRole",
                "Condition": {"StringEquals": {"aws:SourceAccount": account}},
            }
        ],
    }


def policy(functions: list[Any], queues: list[Any]) -> dict[str, Any]:
    return {
        "Version": "2012-10-17",
        "Statement": [
            {
                "Sid": "InvokeScheduleFunctions",
                "Effect": "Allow",
                "Action": ["lambda:InvokeFunction"],
                "Resource": functions,
            },
            {"Sid": "SendDelayedJobs", "Effect": "Allow", "Action": ["sqs:SendMessage"], "Resource": queues},
        ],
    }


# --- the template (`make package`) -----------------------------------------------------------


def template_resources(shape: AppShape) -> dict[str, Any]:
    from infra import template

    stage = shape.stage
    functions = [{"Fn::GetAtt": [s.function, "Arn"]} for s in shape.schedules]
    queues = [{"Fn::GetAtt": [template.queue_id(q.name), "Arn"]} for q in catalog.QUEUES.values()]
    resources: dict[str, Any] = {
        GROUP_ID: {"Type": "AWS::Scheduler::ScheduleGroup", "Properties": {"Name": remote.group_name(stage)}},
        ROLE_ID: {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": role_name(stage),
                "AssumeRolePolicyDocument": trust({"Ref": "AWS::AccountId"}),
                "Policies": [{"PolicyName": "InkwellScheduler", "PolicyDocument": policy(functions, queues)}],
            },
        },
    }
    for source in shape.schedules:
        schedule = catalog.SCHEDULES[source.resource]
        resources[source.event] = {
            "Type": "AWS::Scheduler::Schedule",
            "Properties": {
                "Name": schedule.name,
                "GroupName": {"Ref": GROUP_ID},
                "Description": schedule.description,
                "ScheduleExpression": schedule.expression,
                "ScheduleExpressionTimezone": schedule.timezone,
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "State": "ENABLED" if schedule.enabled else "DISABLED",
                "Target": {
                    "Arn": {"Fn::GetAtt": [source.function, "Arn"]},
                    "RoleArn": {"Fn::GetAtt": [ROLE_ID, "Arn"]},
                    "Input": remote.fire_input(schedule.name),
                    "RetryPolicy": RETRY,
                },
            },
        }
    return resources


def template_problems(template: dict[str, Any], shape: AppShape | None) -> list[str]:
    out: list[str] = []
    resources = template.get("Resources", {})
    for fn_id, fn in resources.items():
        if fn.get("Type") == "AWS::Events::Rule" or any(
            ev.get("Type") == "Schedule" for ev in (fn.get("Properties", {}).get("Events") or {}).values()
        ):
            out.append(f"{fn_id} makes an EventBridge rule; schedules are EventBridge Scheduler's")
    if resources.get(GROUP_ID, {}).get("Type") != "AWS::Scheduler::ScheduleGroup":
        out.append("the schedule group is missing")
    for source in shape.schedules if shape is not None else []:
        props = resources.get(source.event, {}).get("Properties")
        if resources.get(source.event, {}).get("Type") != "AWS::Scheduler::Schedule" or props is None:
            out.append(f"schedule {source.resource} is missing")
            continue
        if not props.get("ScheduleExpressionTimezone") or props.get("FlexibleTimeWindow") != {"Mode": "OFF"}:
            out.append(f"schedule {source.resource} has no time zone or a flexible window")
        if props.get("Target", {}).get("Arn") != {"Fn::GetAtt": [source.function, "Arn"]}:
            out.append(f"schedule {source.resource} does not invoke {source.function}")
    return out


# --- the `chalice deploy` path --------------------------------------------------------------


def ensure_role(iam_client: Any, stage: str, account: str, region: str) -> str:
    """The Scheduler role, created or its policy put right; returns its ARN."""
    from infra import iam

    scope = iam.Scope(stage, region=region, account=account)
    functions = [
        scope.arn("lambda", f"function:{config.physical_name(stage, s.name.replace('-', '_'))}")
        for s in catalog.SCHEDULES.values()
    ]
    queues = [scope.arn("sqs", config.physical_name(stage, q.name)) for q in catalog.QUEUES.values()]
    name = role_name(stage)
    try:
        arn = iam_client.get_role(RoleName=name)["Role"]["Arn"]
        iam_client.update_assume_role_policy(RoleName=name, PolicyDocument=json.dumps(trust(account)))
    except iam_client.exceptions.NoSuchEntityException:
        arn = iam_client.create_role(RoleName=name, AssumeRolePolicyDocument=json.dumps(trust(account)))["Role"]["Arn"]
    iam_client.put_role_policy(RoleName=name, PolicyName=name, PolicyDocument=json.dumps(policy(functions, queues)))
    return str(arn)


def deploy(clients: dict[str, Any], stage: str, account: str, region: str) -> list[str]:
    """Role, group and schedules of the stage (after `chalice deploy` made the functions)."""
    from infra import provision

    role = ensure_role(clients["iam"], stage, account, region)

    def function_arn(handler: str) -> str:
        return f"arn:aws:lambda:{region}:{account}:function:{config.physical_name(stage, handler)}"

    return provision.create_schedules(clients["scheduler"], function_arn, role, stage)


def problems(clients: dict[str, Any], shape: AppShape) -> list[str]:
    out: list[str] = []
    scheduler = clients["scheduler"]
    for source in shape.schedules:
        fn = shape.functions[source.function]
        try:
            found = scheduler.get_schedule(Name=source.resource, GroupName=remote.group_name(shape.stage))
        except scheduler.exceptions.ResourceNotFoundException:
            out.append(f"schedule {source.resource} is missing")
            continue
        if not found["Target"]["Arn"].endswith(f":function:{fn.function_name}"):
            out.append(f"schedule {source.resource} does not invoke {fn.function_name}")
        if found.get("FlexibleTimeWindow") != {"Mode": "OFF"}:
            out.append(f"schedule {source.resource} has a flexible window")
    return out


def teardown(clients: dict[str, Any], stage: str) -> list[str]:
    scheduler, iam_client, removed = clients["scheduler"], clients["iam"], []
    group = remote.group_name(stage)
    try:
        scheduler.delete_schedule_group(Name=group)  # deletes its schedules too
        removed.append(f"schedule group {group}")
    except scheduler.exceptions.ResourceNotFoundException:
        pass
    name = role_name(stage)
    try:
        iam_client.delete_role_policy(RoleName=name, PolicyName=name)
        iam_client.delete_role(RoleName=name)
        removed.append(f"role {name}")
    except iam_client.exceptions.NoSuchEntityException:
        pass
    return removed
