"""The audit trail on the local stack over real sockets: a login is recorded with the caller's
IP and user agent, the digest job seals the trail, and an event altered directly in DynamoDB
makes verify answer `valid: false` naming it."""

from __future__ import annotations

from typing import Any

from tests.e2e.conftest import LocalStack, eventually


def audit(stack: LocalStack, token: str, query: str) -> list[dict[str, Any]]:
    status, body, _ = stack.request("GET", f"/api/audit?{query}", token=token)
    assert status == 200, body
    return body["items"]


def test_a_login_is_audited_sealed_and_an_edit_in_dynamodb_is_named(stack: LocalStack) -> None:
    status, body, _ = stack.request(
        "POST",
        "/api/auth/login",
        {"email": stack.admin_email, "password": stack.admin_password},
        headers={"user-agent": "e2e-audit/1.0"},
    )
    assert status == 200, body
    token, admin_id = body["token"], body["user"]["id"]

    logins = [e for e in audit(stack, token, f"user_id={admin_id}&action=auth.login") if e["actor"]["user_agent"]]
    login = next(e for e in logins if e["actor"]["user_agent"] == "e2e-audit/1.0")
    assert login["actor"] == {
        "user_id": admin_id,
        "email": stack.admin_email,
        "ip": "127.0.0.1",
        "user_agent": "e2e-audit/1.0",
    }

    status, run, _ = stack.request("POST", "/api/schedules/audit-digest/run", token=token)
    assert status == 202, run
    eventually(lambda: audit(stack, token, "action=audit.sealed"), timeout=20)

    dynamodb = stack.aws("dynamodb")
    table = stack.resource_name("audit_events")
    items = dynamodb.query(
        TableName=table,
        IndexName="by_user",
        KeyConditionExpression="user_id = :u",
        ExpressionAttributeValues={":u": {"S": admin_id}},
    )["Items"]
    original = next(i for i in items if i["id"]["S"] == login["id"])
    dynamodb.put_item(TableName=table, Item={**original, "ip": {"S": "10.6.6.6"}})
    try:
        status, result, _ = stack.request("GET", "/api/audit/verify", token=token)
        assert status == 200, result
        assert result["valid"] is False
        assert [p["type"] for p in result["problems"] if p.get("event_id") == login["id"]] == ["event_changed"]
    finally:
        dynamodb.put_item(TableName=table, Item=original)
    status, result, _ = stack.request("GET", "/api/audit/verify", token=token)
    assert result["valid"] is True, result["problems"]
