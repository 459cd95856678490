"""What an operator watches, declared once for both deploy paths: log retention, the API stages'
access logs, the alarms and the CloudWatch dashboard.

Everything is rendered against `Names`, which says how a function, a queue or the region is
written: physical names for `make deploy` (`Names.physical`), `${...}` placeholders for the
template (`Names.template`, wrapped in `Fn::Sub` by `infra.template`). An alarm is the keyword
arguments of CloudWatch's PutMetricAlarm, which are also AWS::CloudWatch::Alarm's properties.

Alarms (all to the stage's SNS topic): per function, Lambda `Errors` and `Throttles` (>= 1 in
5 minutes); the REST API's 5xx rate (>= 5 % of at least 20 requests, 5 minutes); per queue,
`ApproximateAgeOfOldestMessage` beyond what its attempts can take (`age_threshold`); the article
generator's failure rate (non-2xx `GeneratorCalls` >= 20 % of at least 5 calls, twice in a row).
The dead-letter alarms stay in `infra.template.queue_resources` / `infra.deploy.ensure_alarms`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from chalicelib import catalog, config
from chalicelib.jobs.backoff import MAX_DELAY
from infra.app_shape import AppShape, Function

API_STAGE = "api"  # api_gateway_stage in .chalice/config.json
REST_API_NAME = "inkwell"  # Chalice names the REST API after the app (its OpenAPI title), on both paths
METRICS_NAMESPACE = "Inkwell"  # the EMF metrics the code emits (issue 14, logs and metrics)
GENERATOR_STATUSES = ("2xx", "4xx", "429", "5xx", "timeout")
PERIOD = 300

REST_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "method": "$context.httpMethod",
        "route": "$context.resourcePath",
        "status": "$context.status",
        "latency": "$context.responseLatency",
        "integrationLatency": "$context.integrationLatency",
        "time": "$context.requestTime",
    },
    separators=(",", ":"),
)
WEBSOCKET_ACCESS_LOG_FORMAT = json.dumps(
    {
        "requestId": "$context.requestId",
        "ip": "$context.identity.sourceIp",
        "route": "$context.routeKey",
        "eventType": "$context.eventType",
        "connectionId": "$context.connectionId",
        "status": "$context.status",
        "latency": "$context.integrationLatency",
        "time": "$context.requestTime",
    },
    separators=(",", ":"),
)


def log_retention_days(stage: str) -> int:
    """Every log group's retention: a year in prod (incidents are investigated late), a month elsewhere."""
    return 365 if stage == "prod" else 30


def access_log_group(stage: str, api: str) -> str:
    """`api` is `rest` or `websocket`."""
    return f"/aws/apigateway/{config.physical_name(stage, api)}-access"


def age_threshold(queue: catalog.Queue) -> int:
    """Seconds a message may legitimately wait: each attempt's visibility plus the longest backoff."""
    return queue.attempts * (queue.visibility_timeout + MAX_DELAY)


@dataclass(frozen=True)
class Names:
    """How resources are written: physical names (`make deploy`) or `${...}` placeholders (template)."""

    stage: str
    function: Callable[[Function], str]
    queue: Callable[[str], str]  # catalogue queue name -> its physical name
    region: str
    topic: Any  # the SNS topic's ARN (or a reference to it)

    @classmethod
    def physical(cls, stage: str, region: str, topic: str) -> Names:
        return cls(stage, lambda fn: fn.function_name, lambda q: config.physical_name(stage, q), region, topic)

    @classmethod
    def template(cls, stage: str, topic: Any, queue_id: Callable[[str], str]) -> Names:
        return cls(
            stage,
            lambda fn: "${" + fn.cfn + "}",
            lambda q: "${" + queue_id(q) + ".QueueName}",
            "${AWS::Region}",
            topic,
        )


def _alarm(names: Names, name: str, description: str, **props: Any) -> dict[str, Any]:
    return {
        "AlarmName": config.physical_name(names.stage, name),
        "AlarmDescription": description,
        "TreatMissingData": "notBreaching",
        "AlarmActions": [names.topic],
        "OKActions": [names.topic],
        **props,
    }


def _stat(id_: str, namespace: str, metric: str, dimensions: dict[str, str]) -> dict[str, Any]:
    return {
        "Id": id_,
        "ReturnData": False,
        "MetricStat": {
            "Metric": {
                "Namespace": namespace,
                "MetricName": metric,
                "Dimensions": [{"Name": k, "Value": v} for k, v in dimensions.items()],
            },
            "Period": PERIOD,
            "Stat": "Sum",
        },
    }


def _rate_alarm(
    names: Names,
    name: str,
    description: str,
    inputs: list[dict[str, Any]],
    rate: tuple[str, str, int],
    label: str,
    threshold: float,
    periods: int,
) -> dict[str, Any]:
    """An alarm on a percentage in metric math: `rate` = (part, whole, least) is `100 * part /
    whole`, 0 while `whole` is under `least` (too few to judge); `inputs` are the metrics and
    expressions it names."""
    part, whole, least = rate
    expression = f"IF({whole} >= {least}, 100 * {part} / {whole}, 0)"
    return _alarm(
        names,
        name,
        description,
        Metrics=[*inputs, {"Id": "rate", "Label": label, "Expression": expression, "ReturnData": True}],
        EvaluationPeriods=periods,
        Threshold=threshold,
        ComparisonOperator="GreaterThanOrEqualToThreshold",
    )


def alarms(shape: AppShape, names: Names) -> list[dict[str, Any]]:
    """Every alarm of a stage but the dead-letter ones, as PutMetricAlarm arguments."""
    found = []
    threshold = {"Threshold": 1, "ComparisonOperator": "GreaterThanOrEqualToThreshold"}
    for fn in sorted(shape.functions.values(), key=lambda f: f.name):
        for metric in ("Errors", "Throttles"):
            found.append(
                _alarm(
                    names,
                    f"{fn.name}-{metric.lower()}",
                    f"Lambda function {fn.name}: {metric.lower()} in the last 5 minutes",
                    Namespace="AWS/Lambda",
                    MetricName=metric,
                    Dimensions=[{"Name": "FunctionName", "Value": names.function(fn)}],
                    Statistic="Sum",
                    Period=PERIOD,
                    EvaluationPeriods=1,
                    **threshold,
                )
            )
    if shape.rest:
        api = {"ApiName": REST_API_NAME, "Stage": API_STAGE}
        found.append(
            _rate_alarm(
                names,
                "rest-5xx-rate",
                "The REST API answered 5xx to 5 % or more of its requests (at least 20) in 5 minutes",
                [_stat("errors", "AWS/ApiGateway", "5XXError", api), _stat("requests", "AWS/ApiGateway", "Count", api)],
                ("errors", "requests", 20),
                "5xx %",
                threshold=5,
                periods=1,
            )
        )
    for queue in catalog.QUEUES.values():
        found.append(
            _alarm(
                names,
                f"{queue.name}-oldest-message-age",
                f"A message of the {queue.name} queue waits longer than its {queue.attempts} attempts "
                f"can take ({age_threshold(queue)} s): its consumer is stuck, paused or throttled",
                Namespace="AWS/SQS",
                MetricName="ApproximateAgeOfOldestMessage",
                Dimensions=[{"Name": "QueueName", "Value": names.queue(queue.name)}],
                Statistic="Maximum",
                Period=PERIOD,
                EvaluationPeriods=2,
                Threshold=age_threshold(queue),
                ComparisonOperator="GreaterThanThreshold",
            )
        )
    calls = [
        _stat(f"s{status}", METRICS_NAMESPACE, "GeneratorCalls", {"Status": status}) for status in GENERATOR_STATUSES
    ]
    total = " + ".join(f"FILL(s{s}, 0)" for s in GENERATOR_STATUSES)
    failed = " + ".join(f"FILL(s{s}, 0)" for s in GENERATOR_STATUSES if s != "2xx")
    found.append(
        _rate_alarm(
            names,
            "generator-failure-rate",
            "The article generator failed (non-2xx or timeout) 20 % or more of at least 5 calls, "
            "two 5-minute periods in a row",
            [
                *calls,
                {"Id": "total", "Expression": total, "ReturnData": False},
                {"Id": "failed", "Expression": failed, "ReturnData": False},
            ],
            ("failed", "total", 5),
            "generator failure %",
            threshold=20,
            periods=2,
        )
    )
    return found


def dashboard_name(stage: str) -> str:
    return config.physical_name(stage)


def dashboard_body(shape: AppShape, names: Names) -> str:
    """The CloudWatch dashboard (JSON text): queues, jobs, the generator, Lambda, the REST API."""
    queues = list(catalog.QUEUES)
    functions = sorted(shape.functions.values(), key=lambda f: f.name)

    def widget(title: str, metrics: list[list[Any]], stat: str = "Sum") -> dict[str, Any]:
        return {
            "type": "metric",
            "width": 12,
            "height": 6,
            "properties": {"title": title, "region": names.region, "stat": stat, "period": 60, "metrics": metrics},
        }

    def per_queue(metric: str) -> list[list[Any]]:
        return [["AWS/SQS", metric, "QueueName", names.queue(q)] for q in queues]

    def per_function(metric: str) -> list[list[Any]]:
        return [["AWS/Lambda", metric, "FunctionName", names.function(fn)] for fn in functions]

    widgets = [
        widget("Queue depth (waiting)", per_queue("ApproximateNumberOfMessagesVisible"), "Maximum"),
        widget("Age of oldest message (s)", per_queue("ApproximateAgeOfOldestMessage"), "Maximum"),
        widget(
            "Jobs completed / failed",
            [[METRICS_NAMESPACE, m, "Queue", q] for m in ("JobCompleted", "JobFailed") for q in queues],
        ),
        widget(
            "Generator calls by status",
            [[METRICS_NAMESPACE, "GeneratorCalls", "Status", s] for s in GENERATOR_STATUSES],
        ),
        widget("Lambda errors", per_function("Errors")),
        widget("Lambda throttles", per_function("Throttles")),
    ]
    if shape.rest:
        api = ["ApiName", REST_API_NAME, "Stage", API_STAGE]
        widgets.append(
            widget("REST API 5xx / requests", [["AWS/ApiGateway", "5XXError", *api], ["AWS/ApiGateway", "Count", *api]])
        )
    for i, w in enumerate(widgets):
        w["x"], w["y"] = 12 * (i % 2), 6 * (i // 2)
    return json.dumps({"widgets": widgets}, separators=(",", ":"))
