"""The local stack as a subprocess on free ports, shared by every e2e test of the session.

Fixture `stack` (session scope) yields a `LocalStack`: its URLs (`http_url`, `ws_url`,
`aws_endpoint`, `control_url`), the admin's credentials, and helpers: `request(method, path,
body, token=)`, `login()`, `aws(service)` (a boto3 client on the embedded moto), `ws(token=)`
(a WebSocket URL), `fire(schedule)`, `connections()`. `eventually(check)` polls instead of
sleeping. The stack serves `tests.e2e.stack_app:app` (the real app plus probe handlers). On
teardown it gets SIGTERM and must be gone within 5 seconds.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import urlencode

import pytest

ROOT = Path(__file__).resolve().parents[2]
T = TypeVar("T")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if Path(str(item.fspath)).is_relative_to(Path(__file__).parent):
            item.add_marker(pytest.mark.e2e)


def eventually(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.1) -> T:
    """Poll `check` until it returns something truthy (or stops raising AssertionError)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            result = check()
            if result:
                return result
        except AssertionError:
            if time.monotonic() >= deadline:
                raise
        if time.monotonic() >= deadline:
            raise AssertionError(f"not true within {timeout} s: {check}")
        time.sleep(interval)


class LocalStack:
    def __init__(self, info: dict[str, Any], log: Path) -> None:
        self.info = info
        self.log = log
        self.http_url: str = info["http_url"]
        self.ws_url: str = info["ws_url"]
        self.aws_endpoint: str = info["aws_endpoint"]
        self.control_url: str = info["control_url"]
        self.admin_email: str = info["admin_email"]
        self.admin_password: str = info["admin_password"]
        self._clients: dict[str, Any] = {}

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        token: str | None = None,
        headers: dict[str, str] | None = None,
        base: str | None = None,
        raw: bytes | None = None,
    ) -> tuple[int, Any, dict[str, str]]:
        """(status, JSON body or None, headers) of one HTTP call; never raises for a status."""
        data = raw if raw is not None else None if body is None else json.dumps(body).encode()
        hdrs = {"content-type": "application/json", **(headers or {})}
        if token:
            hdrs["authorization"] = f"Bearer {token}"
        req = urllib.request.Request((base or self.http_url) + path, data=data, method=method, headers=hdrs)
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                status, payload, out = resp.status, resp.read(), dict(resp.headers)
        except urllib.error.HTTPError as exc:
            status, payload, out = exc.code, exc.read(), dict(exc.headers)
        try:
            parsed = json.loads(payload) if payload else None
        except ValueError:
            parsed = payload.decode(errors="replace")
        return status, parsed, {k.lower(): v for k, v in out.items()}

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any, dict[str, str]]:
        return self.request(method, path, body, base=self.control_url)

    def login(self, email: str | None = None, password: str | None = None) -> str:
        status, body, _ = self.request(
            "POST", "/api/auth/login", {"email": email or self.admin_email, "password": password or self.admin_password}
        )
        assert status == 200, body
        return body["token"]

    def ws(self, token: str | None = None, **params: str) -> str:
        """The WebSocket URL with `params`; given an access token, with a ticket it asks for (a
        token in the URL is refused)."""
        if token:
            status, body, _ = self.request("POST", "/api/realtime/ticket", token=token)
            params = {**params, "ticket": body["ticket"]} if status == 200 else {**params, "ticket": "refused"}
        query = dict(params)
        return f"{self.ws_url}/" + (f"?{urlencode(query)}" if query else "")

    def aws(self, service: str) -> Any:
        if service not in self._clients:
            import boto3

            self._clients[service] = boto3.client(
                service,
                endpoint_url=self.aws_endpoint,
                region_name=self.info["region"],
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
            )
        return self._clients[service]

    def management(self) -> Any:
        """boto3's apigatewaymanagementapi client on the stack's management endpoint."""
        import boto3

        return boto3.client(
            "apigatewaymanagementapi",
            endpoint_url=self.info["management_endpoint"],
            region_name=self.info["region"],
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def resource_name(self, logical: str) -> str:
        return f"inkwell-{self.info['stage']}-{logical}"

    def queue_url(self, logical: str) -> str:
        return self.aws("sqs").get_queue_url(QueueName=self.resource_name(logical))["QueueUrl"]

    def fire(self, schedule: str) -> dict[str, Any]:
        status, body, _ = self.control("POST", f"/schedules/{schedule}/fire")
        assert status == 200, body
        return body

    def connections(self) -> list[dict[str, Any]]:
        return self.control("GET", "/connections")[1]["items"]

    def log_tail(self, lines: int = 40) -> str:
        return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])


def stack_env(ready_file: Path, **overrides: str) -> dict[str, str]:
    """The subprocess's environment: this one without AWS or Inkwell settings, on free ports."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("INKWELL_", "AWS_")) and k not in ("ARTICLE_WEBHOOK_URL", "WEBHOOK_SECRET", "JWT_SECRET")
    }
    env.update(
        INKWELL_HTTP_PORT="0",
        INKWELL_WS_PORT="0",
        INKWELL_AWS_PORT="0",
        INKWELL_CONTROL_PORT="0",
        INKWELL_READY_FILE=str(ready_file),
        INKWELL_LOCAL_APP="tests.e2e.stack_app:app",
        INKWELL_SCRYPT_N="1024",
        INKWELL_EXIT_WITH_PARENT="1",
        INKWELL_GENERATOR_DELAY="0.05",
        # the tests share a few users over many connections and events: quotas have their own tests
        INKWELL_QUOTA_TICKETS_PER_MINUTE="100000",
        INKWELL_QUOTA_EVENTS_PER_MINUTE="100000",
        INKWELL_QUOTA_EVENTS_PER_HOUR="100000",
        PYTHONUNBUFFERED="1",
    )
    env.update(overrides)
    return env


def start_stack(tmp: Path, **overrides: str) -> tuple[subprocess.Popen[bytes], LocalStack]:
    ready, log = tmp / "ready.json", tmp / "stack.log"
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "local"], cwd=ROOT, env=stack_env(ready, **overrides), stdout=out, stderr=out
        )
    # a generous deadline: on a busy machine (the suite's other worker, other builds) a start that
    # takes a few seconds alone can take a minute; only a stack that never starts waits it out
    deadline = time.monotonic() + 180
    while not ready.exists():
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            process.wait()
            raise RuntimeError(f"the local stack did not start:\n{log.read_text(errors='replace')[-4000:]}")
        time.sleep(0.05)
    return process, LocalStack(json.loads(ready.read_text()), log)


def stop_stack(process: subprocess.Popen[bytes], sig: int = signal.SIGTERM) -> float:
    """Signal the stack; the seconds it took to exit (it is killed, and the test fails, past 5 s)."""
    started = time.monotonic()
    process.send_signal(sig)
    try:
        process.wait(timeout=5)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
        raise AssertionError("the local stack was still running 5 s after the signal") from None
    return time.monotonic() - started


@pytest.fixture(scope="session")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    process, handle = start_stack(tmp_path_factory.mktemp("stack"))
    try:
        yield handle
    finally:
        seconds = stop_stack(process)
        assert process.returncode == 0, handle.log_tail()
        assert seconds < 5
