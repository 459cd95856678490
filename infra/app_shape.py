"""What Chalice will deploy for a stage, read from the Chalice app object itself.

The template overlay (`infra.template`) must name the very resources `chalice package` emits
(functions, their roles, their SQS event sources), and the deploy script must find the very
functions `chalice deploy` creates. Both come from Chalice's own application graph, built from
`app.py` and `.chalice/config.json` exactly as `chalice package` builds it, so a handler added to
app.py flows into the template without a hand edit.

Chalice's CLI imports app.py with the *process* environment (its factory keeps the stage's
`environment_variables` in a private copy), yet app.py resolves per-stage names at import (the
SQS handlers' queue names from `INKWELL_STAGE`). So `stage_environment` is applied to the process
before the import here, and scripts pass it to the `chalice` commands they run. Call this from a
script, not a test process: it changes `os.environ` and imports app.py for that stage.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def cfn_name(name: str) -> str:
    """Chalice's CloudFormation logical id for a resource name (`api_handler` -> `ApiHandler`)."""
    from chalice.utils import to_cfn_resource_name

    return to_cfn_resource_name(name)


@dataclass(frozen=True)
class Function:
    name: str  # Chalice's resource name (the handler's name, `api_handler`, `websocket_connect`)
    function_name: str  # the deployed name on the `chalice deploy` path: inkwell-<stage>-<name>
    cfn: str  # its logical id in the packaged template
    role_cfn: str | None  # the logical id of its IAM role
    timeout: int
    role_resource: str = ""  # Chalice's resource name of its role (`api_handler_role`)
    role_name: str = ""  # the role's name on the `chalice deploy` path


@dataclass(frozen=True)
class SqsSource:
    function: str  # logical id of the consuming function
    event: str  # logical id of the SAM event
    queue: str  # the queue's physical name (or ARN)
    batch_size: int
    resource: str = ""  # Chalice's resource name (`jobs_articles-sqs-event-source`)


@dataclass(frozen=True)
class ScheduleSource:
    """A catalogue schedule: an EventBridge Scheduler schedule (not Chalice's) invoking a function."""

    function: str  # logical id of the invoked function (`DailyAnalytics`)
    event: str  # logical id of the AWS::Scheduler::Schedule (`DailyAnalyticsSchedule`)
    expression: str
    resource: str = ""  # the schedule's name in the stage's group (`daily-analytics`)
    timezone: str = "UTC"


@dataclass
class AppShape:
    stage: str
    functions: dict[str, Function] = field(default_factory=dict)  # by logical id
    sqs: list[SqsSource] = field(default_factory=list)
    schedules: list[ScheduleSource] = field(default_factory=list)
    websocket: bool = False
    rest: bool = False
    websocket_name: str = ""  # the WebSocket API's name on the `chalice deploy` path


def _walk(resources: list[Any]) -> list[Any]:
    seen: list[Any] = []
    stack = list(resources)
    while stack:
        model = stack.pop()
        if any(model is s for s in seen):
            continue
        seen.append(model)
        stack.extend(model.dependencies())
    return seen


def stage_environment(stage: str, project_dir: Path = ROOT) -> dict[str, str]:
    """The environment `.chalice/config.json` gives a stage's functions (global, then stage)."""
    from chalice.cli.factory import CLIFactory

    return dict(CLIFactory(str(project_dir)).create_config_obj(stage).environment_variables)


def load(stage: str, project_dir: Path = ROOT) -> AppShape:
    import os

    from chalice.cli.factory import CLIFactory
    from chalice.deploy import models
    from chalice.deploy.appgraph import ApplicationGraphBuilder

    from chalicelib import config as inkwell_config

    os.environ.update(stage_environment(stage, project_dir))
    inkwell_config.reset()
    config = CLIFactory(str(project_dir), environ=os.environ).create_config_obj(stage)
    graph = ApplicationGraphBuilder().build(config, stage)
    shape = AppShape(stage)
    for model in _walk(graph.resources):
        if isinstance(model, models.LambdaFunction):
            managed = model.role if isinstance(model.role, models.ManagedIAMRole) else None
            fn = Function(
                model.resource_name,
                model.function_name,
                cfn_name(model.resource_name),
                cfn_name(managed.resource_name) if managed else None,
                model.timeout,
                managed.resource_name if managed else "",
                managed.role_name if managed else "",
            )
            shape.functions[fn.cfn] = fn
        elif isinstance(model, models.SQSEventSource):
            queue = model.queue.arn if isinstance(model.queue, models.QueueARN) else model.queue
            shape.sqs.append(
                SqsSource(
                    cfn_name(model.lambda_function.resource_name),
                    cfn_name(model.resource_name),
                    queue,
                    model.batch_size,
                    model.resource_name,
                )
            )
        elif isinstance(model, models.WebsocketAPI):
            shape.websocket = True
            shape.websocket_name = model.name
        elif isinstance(model, models.RestAPI):
            shape.rest = True
    if shape.rest and "ApiHandler" in shape.functions:
        # `chalice package` renames the REST handler's function (not its role) to APIHandler
        fn = shape.functions.pop("ApiHandler")
        shape.functions["APIHandler"] = dataclasses.replace(fn, cfn="APIHandler")
    shape.sqs.sort(key=lambda s: s.event)
    shape.schedules = schedule_sources(shape)
    return shape


def schedule_sources(shape: AppShape) -> list[ScheduleSource]:
    """The catalogue's schedules whose handler (`chalicelib.schedules.handler`) the app has."""
    from chalicelib import catalog
    from chalicelib.schedules import slots

    found = []
    for schedule in catalog.SCHEDULES.values():
        cfn = cfn_name(slots.handler_name(schedule.name))
        if cfn in shape.functions:
            found.append(ScheduleSource(cfn, cfn + "Schedule", schedule.expression, schedule.name, schedule.timezone))
    return sorted(found, key=lambda s: s.event)
