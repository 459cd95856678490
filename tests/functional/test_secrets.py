"""Secrets come from SSM Parameter Store (SecureString) on AWS, once per container, and from the
environment locally; a stage without its JWT secret refuses to start on Lambda."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib import aws, config, secret, timeutil
from chalicelib.auth import tokens
from tests.conftest import body

# a deployed stage's SSM path (the test stage itself reads its secrets from the environment)
PREFIX = "/inkwell/prod"


def value(name: str) -> str:
    return f"ssm-{name}-" + "0123456789abcdef" * 3  # long enough for HS256


@pytest.fixture
def on_aws(aws_mock: None, monkeypatch: pytest.MonkeyPatch) -> Any:
    """An AWS stage: secrets only in SSM under the stage's prefix, none in the environment."""
    for name in config.SECRETS:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(config.SECRETS_PARAMETER_PREFIX, PREFIX)
    ssm = aws.client("ssm")
    for name in config.SECRETS:
        ssm.put_parameter(Name=f"{PREFIX}/{name}", Value=value(name), Type="SecureString")
    config.reset()
    return ssm


def test_secret_is_read_from_ssm_securestring_under_the_stage_prefix(on_aws: Any) -> None:
    for name in config.SECRETS:
        assert secret.get(name) == value(name)


def test_secret_is_read_once_per_container(on_aws: Any) -> None:
    # GIVEN a secret already read
    assert secret.get(config.WEBHOOK_SECRET) == value(config.WEBHOOK_SECRET)
    # WHEN the parameter changes (or SSM becomes unreachable)
    on_aws.delete_parameter(Name=f"{PREFIX}/WEBHOOK_SECRET")
    # THEN the cached value is still served, without another call
    assert secret.get(config.WEBHOOK_SECRET) == value(config.WEBHOOK_SECRET)


def test_environment_variable_overrides_ssm(on_aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.AUDIT_DIGEST_KEY, "from-env")
    assert secret.get(config.AUDIT_DIGEST_KEY) == "from-env"


def test_missing_parameter_names_the_parameter(on_aws: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.STAGE, "prod")
    on_aws.delete_parameter(Name=f"{PREFIX}/JWT_SECRET")
    config.reset()
    with pytest.raises(config.ConfigError, match=f"{PREFIX}/JWT_SECRET"):
        secret.get(config.JWT_SECRET)


def test_cold_start_on_lambda_refuses_a_stage_without_its_audit_key(
    on_aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.STAGE, "prod")
    monkeypatch.setenv(config.LAMBDA_FUNCTION, "inkwell-prod-api_handler")
    on_aws.delete_parameter(Name=f"{PREFIX}/AUDIT_DIGEST_KEY")
    config.reset()
    with pytest.raises(config.ConfigError):
        secret.check_startup()


def test_cold_start_on_lambda_reads_only_the_audit_key_every_function_uses(
    on_aws: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(config.STAGE, "prod")
    monkeypatch.delenv(config.SCRYPT_N)  # the tests' cheap cost is refused on a deployed stage
    monkeypatch.setenv(config.LAMBDA_FUNCTION, "inkwell-prod-websocket_disconnect")
    on_aws.delete_parameter(Name=f"{PREFIX}/JWT_SECRET")  # as if this function's role could not read it
    config.reset()
    secret.check_startup()
    on_aws.delete_parameter(Name=f"{PREFIX}/AUDIT_DIGEST_KEY")
    assert secret.get(config.AUDIT_DIGEST_KEY) == value(config.AUDIT_DIGEST_KEY)  # warmed
    with pytest.raises(config.ConfigError, match="JWT_SECRET"):
        secret.get(config.JWT_SECRET)  # a function that uses it refuses on first use


def test_packaging_imports_the_app_without_reading_secrets(monkeypatch: pytest.MonkeyPatch) -> None:
    # GIVEN `chalice package` importing app.py with the prod stage's environment and no credentials
    monkeypatch.setenv(config.STAGE, "prod")
    monkeypatch.setenv(config.SECRETS_PARAMETER_PREFIX, PREFIX)
    monkeypatch.delenv(config.JWT_SECRET)
    config.reset()
    # WHEN the cold-start check runs outside Lambda THEN it reads nothing (an SSM call would fail here)
    secret.check_startup()


def test_local_stage_falls_back_to_a_development_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.STAGE, "local")
    monkeypatch.delenv(config.WEBHOOK_SECRET)
    config.reset()
    assert secret.get(config.WEBHOOK_SECRET).startswith(config.DEV_SECRET)


def test_other_stage_without_prefix_or_env_refuses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(config.STAGE, "staging")
    monkeypatch.delenv(config.WEBHOOK_SECRET)
    config.reset()
    with pytest.raises(config.ConfigError, match="WEBHOOK_SECRET"):
        secret.get(config.WEBHOOK_SECRET)


def test_tokens_are_signed_with_the_jwt_secret_from_ssm(on_aws: Any, api: Any) -> None:
    # GIVEN the JWT secret only in SSM WHEN a user logs in and uses the token
    token = api.token("viewer")
    # THEN the token verifies with that secret
    claims = tokens.verify(token, value(config.JWT_SECRET), timeutil.now())
    assert claims.sub == api.user("viewer")["id"]
    assert body(api.get("/api/auth/me", token=token))["id"] == claims.sub
