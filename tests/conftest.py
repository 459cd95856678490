"""Fixtures shared by every tier: a clean environment, and (for functional tests) moto with the
catalogue's resources, the Chalice test client and a login helper per role."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

import pytest

pytest_plugins = ("tests.aws_recorder",)

TEST_ENV = {
    "INKWELL_STAGE": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_SECURITY_TOKEN": "testing",
    "AWS_SESSION_TOKEN": "testing",
    "JWT_SECRET": "test-jwt-secret-" + "0123456789abcdef" * 4,
    "WEBHOOK_SECRET": "test-webhook-secret",
    "AUDIT_DIGEST_KEY": "test-audit-digest-key",
    "INKWELL_SCRYPT_N": "1024",  # the production cost (2**14) is measured in bench, not paid per test
}

ROLE_PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    from chalicelib import aws, config

    for key in list(os.environ):
        if key.startswith(("INKWELL_", "AWS_")) or key in ("ARTICLE_WEBHOOK_URL",):
            monkeypatch.delenv(key, raising=False)
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    config.reset()
    aws.reset()
    yield
    config.reset()
    aws.reset()


@pytest.fixture
def aws_mock(clean_env: None) -> Iterator[None]:
    """moto in-process, with every catalogue table and queue created."""
    from moto import mock_aws

    from chalicelib import aws
    from infra import provision

    with mock_aws():
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        yield


@pytest.fixture
def app(aws_mock: None) -> Any:
    import app as app_module

    return app_module.app


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from chalice.test import Client

    with Client(app, stage_name="dev") as test_client:
        yield test_client


class Api:
    """`chalice.test.Client` with JSON bodies and a login per role."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        as_: str | None = None,
        headers: dict[str, str] | None = None,
        raw: bytes | None = None,
    ) -> Any:
        hdrs = {"content-type": "application/json", **(headers or {})}
        if as_ is not None:
            token = self.token(as_)
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        payload = raw if raw is not None else (b"" if body is None else json.dumps(body).encode())
        return self.client.http.request(method, path, headers=hdrs, body=payload)

    def get(self, path: str, **kw: Any) -> Any:
        return self.request("GET", path, **kw)

    def post(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("POST", path, body, **kw)

    def put(self, path: str, body: Any = None, **kw: Any) -> Any:
        return self.request("PUT", path, body, **kw)

    def delete(self, path: str, **kw: Any) -> Any:
        return self.request("DELETE", path, **kw)

    def user(self, role: str) -> dict[str, Any]:
        if role not in self.users:
            from chalicelib.auth import service

            self.users[role] = service.create_user(
                f"{role}-{len(self.users)}@example.com", ROLE_PASSWORD, role.split("-")[0]
            )
        return self.users[role]

    def token(self, role: str) -> str:
        """A token for a user of `role` (`editor`, or `editor-2` for a second editor)."""
        if role not in self.tokens:
            user = self.user(role)
            response = self.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD})
            assert response.status_code == 200, response.body
            self.tokens[role] = json.loads(response.body)["token"]
        return self.tokens[role]


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client)


def body(response: Any) -> Any:
    return json.loads(response.body) if response.body else None
