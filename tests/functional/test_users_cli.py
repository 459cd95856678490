"""`python -m infra.users`: creates a user that can then log in, on moto or on an emulator URL."""

from __future__ import annotations

import json

import pytest

from chalicelib import aws, config
from chalicelib.auth import service
from infra import users
from tests.conftest import body

PASSWORD = "a long enough password"


@pytest.fixture
def cli_env(monkeypatch):
    """The CLI sets the stage and endpoint in the environment: let the test put them back."""
    for name in (config.STAGE, config.AWS_ENDPOINT, config.REGION):
        monkeypatch.setenv(name, "placeholder")
    monkeypatch.setenv(config.STAGE, "test")
    monkeypatch.delenv(config.AWS_ENDPOINT)
    monkeypatch.setenv(config.REGION, "us-east-1")
    monkeypatch.setenv("NEW_PASSWORD", PASSWORD)


def _run(*extra: str) -> int:
    return users.main(["--stage", "test", "--email", "Ops@Example.com", "--role", "admin", *extra])


def test_the_cli_creates_a_user_who_can_log_in(aws_mock, cli_env, client, capsys, api):
    assert _run("--password-env", "NEW_PASSWORD") == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["email"] == "ops@example.com" and printed["role"] == "admin"
    response = api.post("/api/auth/login", {"email": "ops@example.com", "password": PASSWORD})
    assert response.status_code == 200
    assert body(response)["user"]["id"] == printed["id"]


def test_the_cli_refuses_a_taken_email(aws_mock, cli_env, capsys):
    assert _run("--password-env", "NEW_PASSWORD") == 0
    assert _run("--password-env", "NEW_PASSWORD") == 1
    assert "taken" in capsys.readouterr().err


def test_the_cli_asks_for_the_password_twice(aws_mock, cli_env, monkeypatch):
    answers = iter([PASSWORD, PASSWORD])
    monkeypatch.setattr(users.getpass, "getpass", lambda prompt: next(answers))
    assert _run() == 0
    assert service.users().by_email("ops@example.com")["role"] == "admin"


def test_the_cli_refuses_passwords_that_differ(aws_mock, cli_env, monkeypatch):
    answers = iter([PASSWORD, PASSWORD + "!"])
    monkeypatch.setattr(users.getpass, "getpass", lambda prompt: next(answers))
    with pytest.raises(SystemExit, match="differ"):
        _run()
    assert service.users().by_email("ops@example.com") is None


@pytest.mark.parametrize(
    "argv, words",
    [
        (["--email", "not-an-email", "--role", "admin", "--password-env", "NEW_PASSWORD"], "email"),
        (["--email", "a@example.com", "--role", "admin", "--password-env", "SHORT"], "password"),
    ],
)
def test_the_cli_refuses_bad_input_with_status_2(aws_mock, cli_env, monkeypatch, capsys, argv, words):
    monkeypatch.setenv("SHORT", "short")
    assert users.main(["--stage", "test", *argv]) == 2
    assert words in capsys.readouterr().err


def test_the_cli_refuses_an_unset_password_variable(cli_env):
    with pytest.raises(SystemExit, match="NOT_SET"):
        _run("--password-env", "NOT_SET")


def test_the_cli_refuses_an_unknown_role(cli_env):
    with pytest.raises(SystemExit):
        users.main(["--stage", "test", "--email", "a@example.com", "--role", "root"])


def test_the_cli_writes_to_the_endpoint_it_is_given(cli_env, monkeypatch):
    from moto.server import ThreadedMotoServer

    from infra import provision

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        url = f"http://{host}:{port}"
        monkeypatch.setenv(config.AWS_ENDPOINT, url)
        config.reset()
        aws.reset()
        provision.create_tables(aws.client("dynamodb"))
        monkeypatch.delenv(config.AWS_ENDPOINT)
        config.reset()
        aws.reset()
        assert _run("--endpoint-url", url, "--password-env", "NEW_PASSWORD") == 0
        assert service.users().by_email("ops@example.com")["role"] == "admin"  # read back through the URL
    finally:
        server.stop()
