"""Configuration: a non-local stage refuses to start without its JWT secret; names per stage."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chalicelib import config, secret

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def dev_lambda(monkeypatch):
    """The environment of a Lambda container of stage `dev` with no JWT secret anywhere."""
    monkeypatch.setenv(config.STAGE, "dev")
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "inkwell-dev")
    monkeypatch.delenv(config.JWT_SECRET, raising=False)
    monkeypatch.delenv(config.SECRETS_PARAMETER_PREFIX, raising=False)
    monkeypatch.delenv(config.SCRYPT_N, raising=False)
    config.reset()


def test_a_non_local_stage_refuses_to_start_without_a_jwt_secret(dev_lambda):
    with pytest.raises(config.ConfigError, match="JWT_SECRET"):
        secret.check_startup()


def test_a_deployed_stage_refuses_a_scrypt_cost_under_owasps_minimum(dev_lambda, monkeypatch):
    monkeypatch.setenv(config.JWT_SECRET, "s" * 64)
    monkeypatch.setenv(config.SCRYPT_N, str(2**16))
    config.reset()
    with pytest.raises(config.ConfigError, match="INKWELL_SCRYPT_N"):
        secret.check_startup()


def test_a_non_local_stage_starts_with_a_jwt_secret(dev_lambda, monkeypatch):
    monkeypatch.setenv(config.JWT_SECRET, "s" * 64)
    config.reset()
    secret.check_startup()
    assert secret.get(config.JWT_SECRET) == "s" * 64


@pytest.mark.parametrize("stage", sorted(config.LOCAL_STAGES))
def test_a_local_stage_falls_back_to_a_development_secret(stage, monkeypatch):
    monkeypatch.setenv(config.STAGE, stage)
    monkeypatch.delenv(config.JWT_SECRET, raising=False)
    config.reset()
    secret.check_startup()
    assert secret.get(config.JWT_SECRET).startswith(config.DEV_SECRET)


def test_importing_the_app_fails_on_a_non_local_stage_without_a_secret():
    env = {k: v for k, v in os.environ.items() if k != config.JWT_SECRET and not k.startswith("INKWELL_")}
    env.update({config.STAGE: "prod", "AWS_LAMBDA_FUNCTION_NAME": "inkwell-prod", "AWS_DEFAULT_REGION": "us-east-1"})
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr and "JWT_SECRET" in result.stderr


@pytest.mark.parametrize("stage", [None, *sorted(config.LOCAL_STAGES)])
def test_a_lambda_without_a_deployed_stage_refuses_to_start(stage, monkeypatch):
    """A function whose INKWELL_STAGE is unset or local would run on the public development
    secrets: it refuses, naming the variable, before reading any secret."""
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "inkwell-prod")
    monkeypatch.setenv(config.JWT_SECRET, "s" * 64)
    if stage is None:
        monkeypatch.delenv(config.STAGE, raising=False)
    else:
        monkeypatch.setenv(config.STAGE, stage)
    config.reset()
    with pytest.raises(config.ConfigError, match="INKWELL_STAGE"):
        secret.check_startup()


def test_importing_the_app_on_lambda_without_a_stage_fails_naming_it():
    env = {k: v for k, v in os.environ.items() if not k.startswith("INKWELL_")}
    env.update({"AWS_LAMBDA_FUNCTION_NAME": "inkwell-prod", "AWS_DEFAULT_REGION": "us-east-1"})
    result = subprocess.run([sys.executable, "-c", "import app"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode != 0
    assert "ConfigError" in result.stderr and "INKWELL_STAGE is not set on Lambda" in result.stderr


@pytest.mark.parametrize(("key", "refused"), [("k" * 31, True), ("k" * 32, False), ("é" * 16, False)])
def test_a_deployed_stage_refuses_a_jwt_key_under_32_bytes(key, refused, dev_lambda, monkeypatch):
    monkeypatch.setenv(config.JWT_SECRET, key)
    monkeypatch.setenv(config.AUDIT_DIGEST_KEY, "audit-key")
    config.reset()
    if refused:
        with pytest.raises(config.ConfigError, match="31 bytes .* at least 32"):
            secret.check_startup()
    else:
        secret.check_startup()
        assert secret.get(config.JWT_SECRET) == key


def test_a_local_stage_accepts_a_short_jwt_key(monkeypatch):
    monkeypatch.setenv(config.STAGE, "local")
    monkeypatch.setenv(config.JWT_SECRET, "short")
    config.reset()
    assert secret.get(config.JWT_SECRET) == "short"


def test_resource_names_follow_the_stage_and_can_be_overridden(monkeypatch):
    monkeypatch.setenv(config.STAGE, "prod")
    config.reset()
    assert config.get().resource_name("articles") == "inkwell-prod-articles"
    monkeypatch.setenv("INKWELL_NAME_LOGIN_ATTEMPTS", "custom")
    assert config.get().resource_name("login_attempts") == "custom"


def test_settings_are_read_from_the_environment_until_reset(monkeypatch):
    monkeypatch.setenv(config.JWT_TTL_SECONDS, "60")
    config.reset()
    assert config.get().jwt_ttl_seconds == 60
    monkeypatch.setenv(config.JWT_TTL_SECONDS, "120")
    assert config.get().jwt_ttl_seconds == 60
    config.reset()
    assert config.get().jwt_ttl_seconds == 120


def test_function_names_are_those_chalice_deploy_gives_the_app_s_handlers(monkeypatch):
    # In a process of its own: Chalice executes app.py again, registering its handlers twice.
    code = (
        "import json\n"
        "from infra import app_shape\n"
        "print(json.dumps({f.name: f.function_name for f in app_shape.load('prod').functions.values()}))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True)
    deployed = json.loads(result.stdout)
    monkeypatch.setenv(config.STAGE, "prod")
    config.reset()
    assert {"api_handler", "jobs_emails", "session_cleanup"} <= set(deployed)
    assert {name: config.function_name(name) for name in deployed} == deployed


@pytest.mark.parametrize(("command", "refused"), [("deploy", True), ("package", True), ("local", False)])
def test_the_plain_chalice_command_is_pointed_to_the_deploy_tooling(command, refused, monkeypatch):
    """app.py refuses a plain `chalice deploy` / `chalice package` (config.unguarded_chalice), so
    that only `python -m infra.chalice_cli` builds for the Lambda runtime and guards the stage."""
    import click
    from chalice import cli

    monkeypatch.delenv(config.CHALICE_CLI, raising=False)
    with click.Context(cli.cli) as root, click.Context(cli.cli.commands[command], parent=root):
        assert config.unguarded_chalice() == (command if refused else None)
        monkeypatch.setenv(config.CHALICE_CLI, "1")  # what infra.chalice_cli sets
        assert config.unguarded_chalice() is None
    assert config.unguarded_chalice() is None  # no command running: tests, the local stack


def test_every_name_of_a_stage_comes_from_one_rule():
    assert config.physical_name("prod", "articles") == "inkwell-prod-articles"
    assert config.physical_name("prod") == "inkwell-prod"
    assert config.function_name("api_handler") == config.physical_name(config.get().stage)
