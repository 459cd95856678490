"""The overlay generated from the catalogue and an app's shape, and the completeness checks."""

from __future__ import annotations

import copy
from typing import Any

import pytest

from chalicelib import catalog, config
from infra import template
from infra.app_shape import AppShape, Function, ScheduleSource, SqsSource


def shape(stage: str = "prod") -> AppShape:
    s = AppShape(stage, rest=True, websocket=True)
    s.functions = {
        "APIHandler": Function("api_handler", f"inkwell-{stage}-api_handler", "APIHandler", "ApiHandlerRole", 60),
        "JobsArticles": Function(
            "jobs_articles", f"inkwell-{stage}-jobs_articles", "JobsArticles", "JobsArticlesRole", 60
        ),
        "DailyAnalytics": Function(
            "daily_analytics", f"inkwell-{stage}-daily_analytics", "DailyAnalytics", "DailyAnalyticsRole", 60
        ),
    }
    s.sqs = [SqsSource("JobsArticles", "JobsArticlesSqsEventSource", f"inkwell-{stage}-articles", 5)]
    s.schedules = [ScheduleSource("DailyAnalytics", "DailyAnalyticsSchedule", "cron(0 2 * * ? *)", "daily-analytics")]
    return s


def chalice_template(s: AppShape) -> dict[str, Any]:
    """Roughly what `chalice package` emits for the shape (functions, roles, SQS events)."""
    resources: dict[str, Any] = {"WebsocketAPI": {"Type": "AWS::ApiGatewayV2::Api", "Properties": {}}}
    for cfn, fn in s.functions.items():
        resources[cfn] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "Timeout": fn.timeout,
                "Tracing": "Active",  # `xray: true` in .chalice/config.json
                "Environment": {"Variables": {"INKWELL_STAGE": s.stage}},
            },
        }
        resources[fn.role_cfn] = {"Type": "AWS::IAM::Role", "Properties": {"Policies": [{"PolicyName": "x"}]}}
    for source in s.sqs:
        resources[source.function]["Properties"]["Events"] = {
            source.event: {
                "Type": "SQS",
                "Properties": {"Queue": {"Fn::Sub": "arn:...:" + source.queue}, "BatchSize": source.batch_size},
            }
        }
    return {"Resources": resources}


def merge(overlay: Any, base: Any) -> Any:
    """Chalice's TemplateDeepMerger: dictionaries merge key by key, anything else is replaced."""
    if isinstance(overlay, dict) and isinstance(base, dict):
        merged = dict(base)
        for key, value in overlay.items():
            merged[key] = merge(value, base.get(key))
        return merged
    return overlay


def packaged(s: AppShape) -> dict[str, Any]:
    return merge(template.overlay(s), chalice_template(s))


def test_merged_template_has_no_problems() -> None:
    s = shape()
    assert template.problems(packaged(s), s) == []


def test_sqs_event_source_reports_batch_item_failures_and_waits_for_its_queue() -> None:
    props = packaged(shape())["Resources"]["JobsArticles"]["Properties"]
    event = props["Events"]["JobsArticlesSqsEventSource"]["Properties"]
    assert event["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    # replaces Chalice's Fn::Sub of the name: a reference makes CloudFormation create the queue first
    assert event["Queue"] == {"Fn::Sub": "${ArticlesQueue.Arn}"}
    assert event["BatchSize"] == 5  # Chalice's own properties are kept
    assert props["Timeout"] == catalog.queue("articles").function_timeout


def test_every_table_has_keys_indexes_ttl_pitr_and_sse() -> None:
    resources = template.catalogue_resources("prod")
    for table in catalog.TABLES.values():
        props = resources[template.table_id(table.name)]["Properties"]
        assert props["TableName"] == f"inkwell-prod-{table.name}"
        assert props["KeySchema"][0] == {"AttributeName": table.pk, "KeyType": "HASH"}
        assert props["PointInTimeRecoverySpecification"]["PointInTimeRecoveryEnabled"] is True
        assert props["SSESpecification"]["SSEEnabled"] is True
        if table.ttl:
            assert props["TimeToLiveSpecification"] == {"AttributeName": table.ttl, "Enabled": True}
        assert len(props.get("GlobalSecondaryIndexes", [])) == len(table.indexes)


def test_prod_data_is_retained_and_other_stages_are_not() -> None:
    assert template.catalogue_resources("prod")["UsersTable"]["DeletionPolicy"] == "Retain"
    assert template.catalogue_resources("dev")["UsersTable"]["DeletionPolicy"] == "Delete"


def test_every_queue_redrives_to_its_dead_letter_queue_after_its_attempts() -> None:
    resources = template.catalogue_resources("dev")
    for queue in catalog.QUEUES.values():
        props = resources[template.queue_id(queue.name)]["Properties"]
        assert props["RedrivePolicy"] == {
            "deadLetterTargetArn": {"Fn::GetAtt": [template.dlq_id(queue.name), "Arn"]},
            "maxReceiveCount": queue.attempts,
        }
        assert props["VisibilityTimeout"] >= 6 * queue.function_timeout
        assert props["SqsManagedSseEnabled"] is True
        alarm = resources[template.logical_id(queue.dlq, "Alarm")]["Properties"]
        assert alarm["MetricName"] == "ApproximateNumberOfMessagesVisible" and alarm["Threshold"] == 1


def test_functions_are_told_names_and_the_websocket_management_endpoint() -> None:
    env = packaged(shape())["Resources"]["APIHandler"]["Properties"]["Environment"]["Variables"]
    assert env["INKWELL_STAGE"] == "prod"  # Chalice's variables are kept
    assert env[config.WS_MANAGEMENT_ENDPOINT] == {
        "Fn::Sub": "https://${WebsocketAPI}.execute-api.${AWS::Region}.${AWS::URLSuffix}/api"
    }
    assert env["INKWELL_NAME_SESSIONS"] == {"Ref": "SessionsTable"}
    assert env["INKWELL_NAME_EMAILS_DLQ"] == {"Fn::GetAtt": ["EmailsDeadLetterQueue", "QueueName"]}


def test_name_variables_are_the_ones_config_reads(monkeypatch: Any) -> None:
    monkeypatch.setenv(config.name_variable("login_attempts"), "custom-name")
    config.reset()
    assert config.get().resource_name("login_attempts") == "custom-name"


def test_every_role_gets_its_functions_policy() -> None:
    resources = packaged(shape())["Resources"]
    received: dict[str, list[str]] = {}
    for role in ("ApiHandlerRole", "JobsArticlesRole"):
        (policy,) = resources[role]["Properties"]["Policies"]
        assert policy["PolicyName"] == "InkwellLeastPrivilege"
        statements = policy["PolicyDocument"]["Statement"]
        received[role] = [
            r["Fn::Sub"] for s in statements if "sqs:ReceiveMessage" in s["Action"] for r in s["Resource"]
        ]
    # the SQS poller's actions only for the SQS consumer, on its own queue; the REST function
    # receives from the dead-letter queues only (the dashboard's retry-failed)
    assert any(arn.endswith(":inkwell-prod-articles") for arn in received["JobsArticlesRole"])
    assert not any(arn.endswith(":inkwell-prod-emails") for arn in received["JobsArticlesRole"])
    assert received["ApiHandlerRole"] and all(arn.endswith("-dlq") for arn in received["ApiHandlerRole"])


def test_outputs_give_the_rest_and_websocket_urls() -> None:
    outputs = template.overlay(shape())["Outputs"]
    assert outputs["RestApiUrl"]["Value"]["Fn::Sub"].startswith("https://${RestAPI}.")
    assert outputs["WebSocketUrl"]["Value"]["Fn::Sub"].startswith("wss://${WebsocketAPI}.")


def test_problems_names_a_missing_batch_failure_setting() -> None:
    s = shape()
    broken = packaged(s)
    del broken["Resources"]["JobsArticles"]["Properties"]["Events"]["JobsArticlesSqsEventSource"]["Properties"][
        "FunctionResponseTypes"
    ]
    assert template.problems(broken, s) == [
        "SQS event source JobsArticles.JobsArticlesSqsEventSource does not report batch item failures"
    ]


def test_problems_names_a_short_visibility_timeout_and_a_missing_ttl() -> None:
    s = shape()
    broken = packaged(s)
    broken["Resources"]["JobsArticles"]["Properties"]["Timeout"] = 900
    del broken["Resources"]["SessionsTable"]["Properties"]["TimeToLiveSpecification"]
    found = template.problems(broken, s)
    assert any("visibility" in p and "JobsArticles" in p for p in found)
    assert "table sessions has no TTL on ttl" in found


def test_problems_names_a_consumer_of_another_stages_queue() -> None:
    # e.g. `chalice package` run without the stage's INKWELL_STAGE: app.py computed local names
    s = shape()
    s.sqs = [SqsSource("JobsArticles", "JobsArticlesSqsEventSource", "inkwell-local-articles", 5)]
    assert any("not a catalogue queue of this stage" in p for p in template.problems(packaged(s), s))


def test_problems_names_a_wildcard_action() -> None:
    s = shape()
    broken = copy.deepcopy(packaged(s))
    broken["Resources"]["ApiHandlerRole"]["Properties"]["Policies"][0]["PolicyDocument"]["Statement"].append(
        {"Effect": "Allow", "Action": "dynamodb:*", "Resource": "*"}
    )
    assert template.problems(broken, s) == ["role ApiHandlerRole grants a wildcard action"]


def test_overlay_watches_every_function_queue_and_api() -> None:
    s = shape()
    resources = packaged(s)["Resources"]
    for cfn in s.functions:
        group = resources[cfn + "LogGroup"]["Properties"]
        assert group == {"LogGroupName": {"Fn::Sub": "/aws/lambda/${" + cfn + "}"}, "RetentionInDays": 365}
    names = {r["Properties"]["AlarmName"] for r in resources.values() if r.get("Type") == "AWS::CloudWatch::Alarm"}
    assert {"inkwell-prod-api_handler-errors", "inkwell-prod-jobs_articles-throttles"} <= names
    assert {f"inkwell-prod-{q}-oldest-message-age" for q in catalog.QUEUES} <= names
    assert {"inkwell-prod-rest-5xx-rate", "inkwell-prod-generator-failure-rate"} <= names
    assert resources["RestAPI"]["Properties"]["TracingEnabled"] is True
    assert "AccessLogSettings" in resources["WebsocketAPIStage"]["Properties"]


def test_generator_failure_rate_is_metric_math_over_every_status() -> None:
    alarms = {
        a["AlarmName"]: a
        for a in template.monitoring.alarms(
            shape(), template.monitoring.Names.physical("prod", "us-east-1", "arn:topic")
        )
    }
    alarm = alarms["inkwell-prod-generator-failure-rate"]
    statuses = {
        m["MetricStat"]["Metric"]["Dimensions"][0]["Value"]
        for m in alarm["Metrics"]
        if "MetricStat" in m and m["MetricStat"]["Metric"]["MetricName"] == "GeneratorCalls"
    }
    assert statuses == {"2xx", "4xx", "429", "5xx", "timeout"}
    (returned,) = [m for m in alarm["Metrics"] if m["ReturnData"]]
    assert "failed / total" in returned["Expression"] and alarm["AlarmActions"] == ["arn:topic"]


def test_problems_names_an_untraced_function_and_a_missing_alarm() -> None:
    s = shape()
    broken = packaged(s)
    broken["Resources"]["JobsArticles"]["Properties"]["Tracing"] = "PassThrough"
    del broken["Resources"]["ApiHandlerThrottlesAlarm"]
    found = template.problems(broken, s)
    assert "function JobsArticles is not traced" in found
    assert "function APIHandler has no alarm on Throttles" in found
    assert "alarm inkwell-prod-api_handler-throttles is missing" in found


def test_sqs_event_source_carries_the_queues_maximum_concurrency() -> None:
    event = packaged(shape())["Resources"]["JobsArticles"]["Properties"]["Events"]["JobsArticlesSqsEventSource"]
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": catalog.queue("articles").concurrency}


def test_a_high_priority_queue_s_trigger_has_its_own_share_of_concurrency() -> None:
    s = shape()
    s.functions["JobsArticlesHigh"] = Function(
        "jobs_articles_high", "inkwell-prod-jobs_articles_high", "JobsArticlesHigh", "JobsArticlesHighRole", 60
    )
    s.sqs.append(SqsSource("JobsArticlesHigh", "JobsArticlesHighSqsEventSource", "inkwell-prod-articles-high", 5))
    merged = packaged(s)
    event = merged["Resources"]["JobsArticlesHigh"]["Properties"]["Events"]["JobsArticlesHighSqsEventSource"]
    share = catalog.queue("articles").high_concurrency
    assert event["Properties"]["ScalingConfig"] == {"MaximumConcurrency": share}
    assert template.problems(merged, s) == []
    assert catalog.queue("articles-high").concurrency == share != catalog.queue("articles").concurrency
    assert all(
        catalog.queue(f"{q}-high").concurrency == catalog.queue(q).high_concurrency for q in catalog.job_queues()
    )


def test_problems_names_a_missing_or_wrong_maximum_concurrency() -> None:
    s = shape()
    broken = packaged(s)
    props = broken["Resources"]["JobsArticles"]["Properties"]["Events"]["JobsArticlesSqsEventSource"]["Properties"]
    props["ScalingConfig"] = {"MaximumConcurrency": 999}
    assert template.problems(broken, s) == [
        "SQS event source JobsArticles.JobsArticlesSqsEventSource: maximum concurrency 999, the catalogue says 5"
    ]


def test_every_queue_has_a_maximum_concurrency_lambda_accepts_articles_low() -> None:
    assert all(2 <= q.concurrency <= 1000 for q in catalog.QUEUES.values())
    assert catalog.queue("articles").concurrency <= 5


def test_app_gives_every_sqs_trigger_its_queues_maximum_concurrency() -> None:
    from chalice.app import SQSEventConfig

    import app

    # `app` binds queue names at its first import, under whichever stage the suite had then:
    # compare by the catalogue name (`inkwell-<stage>-<name>`), not under today's stage.
    found = {
        s.queue.split("-", 2)[2]: s.maximum_concurrency for s in app.app.event_sources if isinstance(s, SQSEventConfig)
    }
    assert found == {q.name: q.concurrency for q in catalog.QUEUES.values()}


def test_both_api_stages_are_throttled_and_an_unthrottled_one_is_a_problem(tmp_path) -> None:
    import json

    from infra import throttling

    cfg = {"stages": {"prod": {"throttling": {"rest": {"ThrottlingRateLimit": "7.5", "ThrottlingBurstLimit": "15"}}}}}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    limits = throttling.throttling("prod", tmp_path / "config.json")
    assert limits == {"rest": (7.5, 15), "websocket": (50.0, 100)}  # the default where none is given
    s = shape()
    merged = merge(template.overlay(s, limits=limits), chalice_template(s))
    assert merged["Resources"]["RestAPI"]["Properties"]["MethodSettings"][0]["ThrottlingRateLimit"] == 7.5
    assert merged["Resources"]["WebsocketAPIStage"]["Properties"]["DefaultRouteSettings"]["ThrottlingBurstLimit"] == 100
    assert template.throttling_problems(merged) == []
    del merged["Resources"]["RestAPI"]["Properties"]["MethodSettings"]
    del merged["Resources"]["WebsocketAPIStage"]["Properties"]["DefaultRouteSettings"]
    assert template.problems(merged, s) == [
        "the REST API stage is not throttled (MethodSettings /* *)",
        "the WebSocket API stage is not throttled (DefaultRouteSettings)",
    ]
    cfg["stages"]["prod"]["throttling"]["websocket"] = {"ThrottlingRateLimit": "fast"}
    (tmp_path / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(ValueError, match="stages.prod.throttling.websocket"):
        throttling.throttling("prod", tmp_path / "config.json")


# --- EventBridge Scheduler -------------------------------------------------------------------------


def test_each_schedule_is_a_scheduler_schedule_in_the_stage_group_with_a_zone_and_no_window() -> None:
    resources = packaged(shape())["Resources"]
    group = resources["SchedulesGroup"]
    assert (group["Type"], group["Properties"]["Name"]) == ("AWS::Scheduler::ScheduleGroup", "inkwell-prod")
    schedule = resources["DailyAnalyticsSchedule"]
    props = schedule["Properties"]
    assert schedule["Type"] == "AWS::Scheduler::Schedule"
    assert (props["ScheduleExpression"], props["ScheduleExpressionTimezone"]) == ("cron(0 2 * * ? *)", "UTC")
    assert props["FlexibleTimeWindow"] == {"Mode": "OFF"} and props["GroupName"] == {"Ref": "SchedulesGroup"}
    assert props["Target"]["Arn"] == {"Fn::GetAtt": ["DailyAnalytics", "Arn"]}
    assert props["Target"]["RoleArn"] == {"Fn::GetAtt": ["SchedulerRole", "Arn"]}
    assert '"time":"<aws.scheduler.scheduled-time>"' in props["Target"]["Input"]


def test_the_scheduler_role_is_assumed_by_scheduler_only_and_invokes_and_sends_only() -> None:
    role = packaged(shape())["Resources"]["SchedulerRole"]["Properties"]
    [trust] = role["AssumeRolePolicyDocument"]["Statement"]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}
    assert trust["Condition"] == {"StringEquals": {"aws:SourceAccount": {"Ref": "AWS::AccountId"}}}
    statements = role["Policies"][0]["PolicyDocument"]["Statement"]
    assert {a for st in statements for a in st["Action"]} == {"lambda:InvokeFunction", "sqs:SendMessage"}
    invoke = next(st for st in statements if st["Action"] == ["lambda:InvokeFunction"])
    assert invoke["Resource"] == [{"Fn::GetAtt": ["DailyAnalytics", "Arn"]}]


def test_problems_names_a_schedule_left_as_an_eventbridge_rule_or_missing() -> None:
    s = shape()
    merged = packaged(s)
    merged["Resources"]["DailyAnalytics"]["Properties"]["Events"] = {"Nightly": {"Type": "Schedule"}}
    del merged["Resources"]["DailyAnalyticsSchedule"]
    found = template.problems(merged, s)
    assert any("EventBridge rule" in p for p in found) and "schedule daily-analytics is missing" in found


def test_the_audit_key_policy_names_the_sealers_role_to_sign_and_the_bucket_drops_stale_uploads() -> None:
    s = shape()
    for name in ("jobs_cleanup", "jobs_cleanup_high"):
        cfn = "".join(p.capitalize() for p in name.split("_"))
        s.functions[cfn] = Function(name, f"inkwell-prod-{name}", cfn, cfn + "Role", 300)
    resources = packaged(s)["Resources"]
    statements = {st["Sid"]: st for st in resources[template.AUDIT_KEY]["Properties"]["KeyPolicy"]["Statement"]}
    role_of = {fn.name: fn.role_cfn for fn in s.functions.values()}
    assert statements["SealerSigns"]["Principal"] == {"AWS": [{"Fn::GetAtt": [role_of["jobs_cleanup"], "Arn"]}]}
    readers = statements["ReadersGetThePublicKey"]["Principal"]["AWS"]
    assert {"Fn::GetAtt": [role_of["api_handler"], "Arn"]} in readers
    assert {"Fn::GetAtt": [role_of["jobs_cleanup_high"], "Arn"]} not in readers
    assert "kms:Sign" not in statements["AccountAdministers"]["Action"]
    rules = resources[template.EXPORT_BUCKET]["Properties"]["LifecycleConfiguration"]["Rules"]
    assert rules[0]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 1}
