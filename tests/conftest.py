"""Fixtures shared by every tier: a clean environment, and (for functional tests) moto with the
catalogue's resources, the Chalice test client and a login helper per role."""

from __future__ import annotations

import contextlib
import copy
import copyreg
import functools
import json
import logging
import os
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

pytest_plugins = ("tests.aws_recorder", "tests.faults", "tests.xdist_order")

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
    "INKWELL_SCRYPT_N": "1024",  # the production cost (2**17) is checked once (test_passwords) and measured in bench, not paid per test
}

ROLE_PASSWORD = "correct horse battery staple"
ANONYMOUS = "anonymous"  # as_=ANONYMOUS sends no credentials


def _test_env(monkeypatch: pytest.MonkeyPatch) -> None:
    from chalicelib import aws, config

    for key in list(os.environ):
        if key.startswith(("INKWELL_", "AWS_")) or key in ("ARTICLE_WEBHOOK_URL",):
            monkeypatch.delenv(key, raising=False)
    for key, value in TEST_ENV.items():
        monkeypatch.setenv(key, value)
    config.reset()
    aws.reset()


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Each case starts with its own environment and invocation: what an earlier case left in the
    script invocation's buffers (audit events recorded but not flushed, ...) never reaches it."""
    from chalicelib import aws, config, runtime

    _test_env(monkeypatch)
    runtime.reset()
    yield
    runtime.reset()
    config.reset()
    aws.reset()


@pytest.fixture
def logged_errors() -> Iterator[list[str]]:
    """ERROR records of the `inkwell` logger (which app.py's logging may keep from propagating)."""
    found: list[str] = []
    handler = logging.Handler(logging.ERROR)
    handler.emit = lambda record: found.append(record.getMessage())  # type: ignore[method-assign]
    logging.getLogger("inkwell").addHandler(handler)
    yield found
    logging.getLogger("inkwell").removeHandler(handler)


@contextlib.contextmanager
def _moto(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """moto in-process, with every catalogue table and queue created, and DynamoDB writes made
    atomic as on AWS (moto checks a condition and writes without a lock, so two threads can both
    pass the same condition; DynamoDB never lets them)."""
    from moto import mock_aws
    from moto.dynamodb.models import DynamoDBBackend

    from chalicelib import aws
    from infra import provision
    from local import moto_transactions

    moto_transactions.install()  # rollback by item, not by table copies (a moto gap)
    lock = threading.RLock()
    for name in ("put_item", "update_item", "delete_item", "transact_write_items"):
        monkeypatch.setattr(DynamoDBBackend, name, _serialized(getattr(DynamoDBBackend, name), lock))
    with mock_aws():
        _provisioned(lambda: _provision_all(aws, provision))
        yield


def _provision_all(aws: Any, provision: Any) -> None:
    """The catalogue's tables and queues, and its EventBridge Scheduler group and schedules."""
    provision.provision(aws.client("dynamodb"), aws.client("sqs"))
    provision.create_schedules(aws.client("scheduler"), _function_arn, "arn:aws:iam::123456789012:role/test-scheduler")


def _function_arn(handler: str) -> str:
    from chalicelib import config

    return f"arn:aws:lambda:us-east-1:123456789012:function:{config.function_name(handler)}"


# moto's DynamoDB and SQS state just after `infra.provision` ran, per environment it ran in
_PROVISIONED: dict[str, dict[tuple[str, str, str], dict[str, Any]]] = {}


def _provisioned(provision: Callable[[], Any]) -> None:
    """Run `provision` in the first test of a process (per environment), and give each later test
    a copy of the moto state it left: ~5 ms instead of its ~0.4 s of API calls."""
    from moto.dynamodb.models import dynamodb_backends
    from moto.scheduler.models import scheduler_backends
    from moto.sqs.models import sqs_backends

    services: dict[str, Any] = {"dynamodb": dynamodb_backends, "sqs": sqs_backends, "scheduler": scheduler_backends}
    key = json.dumps(sorted((k, v) for k, v in os.environ.items() if k.startswith(("INKWELL_", "AWS_"))))
    if key in _PROVISIONED:
        for (service, account, region), state in _PROVISIONED[key].items():
            services[service][account][region].__dict__ = _copy(state)
        return
    provision()
    _PROVISIONED[key] = {
        (service, account, region): _copy(backend.__dict__)
        for service, backends in services.items()
        for account, regions in backends.items()
        for region, backend in regions.items()
    }


def _copy(state: dict[str, Any]) -> dict[str, Any]:
    """A deep copy of moto state, each lock in it a new one (a lock cannot be copied as such) and
    each condition made anew on its copied lock (copying would keep its methods bound to the old)."""
    reductors: dict[type, Callable[[Any], tuple[Any, tuple[Any, ...]]]] = {
        type(threading.Lock()): lambda _: (threading.Lock, ()),
        type(threading.RLock()): lambda _: (threading.RLock, ()),
        threading.Condition: lambda condition: (threading.Condition, (condition._lock,)),
    }
    for kind, reductor in reductors.items():
        copyreg.pickle(kind, reductor)
    try:
        return copy.deepcopy(state)
    finally:
        for kind in reductors:
            copyreg.dispatch_table.pop(kind, None)


@pytest.fixture
def aws_mock(clean_env: None, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A fresh moto per test (see `_moto`)."""
    with _moto(monkeypatch):
        yield


@pytest.fixture(scope="module")
def shared_api() -> Iterator[Api]:
    """One moto, app and set of logins for a whole module, for tables of cases that only read or
    are refused (bad input): the ~0.5 s of setup is paid once, not per case. A module opts in with
    `@pytest.fixture def api(shared_api): return shared_api`."""
    from chalice.test import Client

    with pytest.MonkeyPatch.context() as monkeypatch:
        _test_env(monkeypatch)
        with _moto(monkeypatch):
            import app as app_module

            with Client(app_module.app, stage_name="test") as test_client:
                yield Api(test_client)


def _serialized(method: Callable[..., Any], lock: threading.RLock) -> Callable[..., Any]:
    @functools.wraps(method)
    def locked(*args: Any, **kwargs: Any) -> Any:
        with lock:
            return method(*args, **kwargs)

    return locked


@pytest.fixture
def app(aws_mock: None) -> Any:
    import app as app_module

    return app_module.app


@pytest.fixture
def client(app: Any) -> Iterator[Any]:
    from chalice.test import Client

    with Client(app, stage_name="test") as test_client:
        yield test_client


class Api:
    """`chalice.test.Client` with JSON bodies and a login per role."""

    def __init__(self, client: Any) -> None:
        self.client = client
        self.users: dict[str, dict[str, Any]] = {}
        self.tokens: dict[str, str] = {}
        self.expiries: dict[str, float] = {}  # role -> its token's expiry (tokens minted elsewhere: none)
        self.made: dict[str, str] = {}  # placeholder -> the resource id made for it (see `fill`)

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
        if as_ is not None and as_ != ANONYMOUS:
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
        """A token for a user of `role` (`editor`, or `editor-2` for a second editor); a new login
        once the last token has expired by the app's clock (tests that move the clock on past an
        access token's 15 minutes)."""
        from chalicelib import timeutil

        expires_at = self.expiries.get(role)
        if role not in self.tokens or (expires_at is not None and expires_at <= timeutil.now()):
            user = self.user(role)
            response = self.post("/api/auth/login", {"email": user["email"], "password": ROLE_PASSWORD})
            assert response.status_code == 200, response.body
            answer = json.loads(response.body)
            self.tokens[role] = answer["token"]
            self.expiries[role] = timeutil.parse_iso(answer["expires_at"])
        return self.tokens[role]


@pytest.fixture
def api(client: Any) -> Api:
    return Api(client)


# Placeholders that tables of endpoints (validation, authorization) use in paths: `{article_id}`
# becomes the id of an article that `editor` wrote. One line per kind of resource; each factory
# gets the Api and returns the id, created once per test.
PLACEHOLDERS: dict[str, Callable[[Api], str]] = {
    "article_id": lambda api: body(api.post("/api/articles", {"title": "A title", "topic": "a topic"}, as_="editor"))[
        "id"
    ],
    "viewer_email": lambda api: api.user("viewer")["email"],
    "editor_id": lambda api: api.user("editor")["id"],
    # a user admins may change (disable, demote) without touching the roles' own users
    "user_id": lambda api: api.user("editor-changeable")["id"],
}


def fill(api: Api, path: str) -> str:
    """`path` with every `{placeholder}` replaced by a resource made for it (see PLACEHOLDERS)."""
    for name, make in PLACEHOLDERS.items():
        if "{" + name + "}" in path:
            if name not in api.made:
                api.made[name] = make(api)
            path = path.replace("{" + name + "}", api.made[name])
    return path


def body(response: Any) -> Any:
    return json.loads(response.body) if response.body else None
