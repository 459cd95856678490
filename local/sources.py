"""What the Chalice app asks AWS to run: its WebSocket, SQS and schedule handlers.

Read from the app object (`app.event_sources`, `app.websocket_handlers`, `app.handler_map`), the
way `chalice package` reads it, so a handler added with a decorator is served locally without any
registration here (schedules: the catalogue's, whose handlers are in the app). Names follow
`chalice deploy`: the function of handler `h` is `config.function_name(h)`, `inkwell-<stage>-h`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from chalice.app import ScheduledEventConfig, ScheduleExpression, SQSEventConfig

from chalicelib import catalog, config

Invoke = Callable[[dict[str, Any], Any], Any]  # a deployed handler: (event dict, Lambda context)
DEFAULT_TIMEOUT = 60  # .chalice/config.json's lambda_timeout


@dataclass
class SqsSource:
    name: str  # the Chalice handler name
    handler: Invoke
    function_name: str
    queue_name: str  # physical
    batch_size: int
    batching_window: int
    timeout: int  # the function's timeout, seconds
    concurrency: int | None = None  # the mapping's maximum concurrency (app.py's maximum_concurrency)
    queue_url: str = ""
    queue_arn: str = ""
    mapping_uuid: str = ""


@dataclass
class ScheduleSource:
    name: str  # the handler's
    handler: Invoke
    function_name: str
    expression: str  # the catalogue's; the emulated Scheduler's schedule may say otherwise now
    description: str = ""
    schedule: str = ""  # an EventBridge Scheduler schedule's name (the catalogue's); else a rule's
    timezone: str = "UTC"
    schedule_arn: str = ""
    rule_arn: str = ""  # a Chalice `@app.schedule` handler's EventBridge rule (tests' apps)


def sqs_sources(app: Any, queues: Iterable[catalog.Queue] = ()) -> list[SqsSource]:
    settings = config.get()
    timeouts = {settings.resource_name(q.name): q.function_timeout for q in [*catalog.QUEUES.values(), *queues]}
    found = []
    for source in app.event_sources:
        if isinstance(source, SQSEventConfig):
            queue = source.queue or (source.queue_arn or "").rsplit(":", 1)[-1]
            found.append(
                SqsSource(
                    name=source.name,
                    handler=app.handler_map[source.name],
                    function_name=config.function_name(source.name),
                    queue_name=queue,
                    batch_size=source.batch_size,
                    batching_window=source.maximum_batching_window_in_seconds or 0,
                    timeout=timeouts.get(queue, DEFAULT_TIMEOUT),
                    concurrency=source.maximum_concurrency,
                )
            )
    return found


def schedule_sources(app: Any) -> list[ScheduleSource]:
    """The catalogue's schedules whose handler the app has (`chalicelib.schedules.handler`):
    EventBridge Scheduler schedules invoking their own functions; and any `@app.schedule`
    handler (an EventBridge rule, as Chalice deploys it: the tests' apps have some)."""
    from chalicelib.schedules import slots

    found = []
    for source in app.event_sources:
        if isinstance(source, ScheduledEventConfig):
            expression = source.schedule_expression
            if isinstance(expression, ScheduleExpression):
                expression = expression.to_string()
            found.append(
                ScheduleSource(
                    name=source.name,
                    handler=app.handler_map[source.name],
                    function_name=config.function_name(source.name),
                    expression=expression,
                    description=source.description or "",
                )
            )
    for schedule in catalog.SCHEDULES.values():
        name = slots.handler_name(schedule.name)
        if name in app.handler_map:
            found.append(
                ScheduleSource(
                    name=name,
                    handler=app.handler_map[name],
                    function_name=config.function_name(name),
                    expression=schedule.expression,
                    description=schedule.description,
                    schedule=schedule.name,
                    timezone=schedule.timezone,
                )
            )
    return found


def websocket_handlers(app: Any) -> dict[str, Invoke]:
    """Route key (`$connect`, `$default`, `$disconnect`) -> deployed handler."""
    return {key: app.handler_map[cfg.name] for key, cfg in app.websocket_handlers.items()}
