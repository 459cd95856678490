"""The local stack: starts every emulator around the Chalice app, prints its endpoints, and
stops everything on Ctrl-C or SIGTERM within 5 seconds.

Order matters: moto first (its URL goes into the app's configuration), then the process
environment the app reads (endpoint URLs and fake credentials, so it never reaches real AWS),
then the app itself, its resources, the admin account, and the servers and workers.
"""

from __future__ import annotations

import errno
import importlib
import json
import os
import secrets
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, NoReturn

from chalicelib import config, secret
from local import logs
from local.control import ControlServer
from local.emulated_aws import EmulatedAws
from local.faults import FaultInjector
from local.generator import FakeGenerator
from local.rest import RestServer
from local.scheduler import Scheduler, fast_clock
from local.sources import schedule_sources, sqs_sources, websocket_handlers
from local.sqs_lambda import SqsPoller
from local.websocket import IDLE_TIMEOUT, MAX_AGE, WebSocketGateway

STOP_BUDGET = 4.5  # seconds; past it the process exits hard (the contract says 5)


class StackError(RuntimeError):
    """The stack cannot start as configured."""


@dataclass
class StackConfig:
    http_port: int = 8000
    ws_port: int = 8001
    aws_port: int = 5000
    control_port: int = 8002
    admin_email: str = "admin@example.com"
    admin_password: str = field(default_factory=lambda: secrets.token_urlsafe(12))
    admin_password_given: bool = False  # from INKWELL_ADMIN_PASSWORD: the operator knows it, never printed
    ws_idle_timeout: float = IDLE_TIMEOUT
    ws_max_age: float = MAX_AGE
    generator_delay: float = 0.2
    app_ref: str = "app:app"
    ready_file: str | None = None
    exit_with_parent: bool = False  # tests: a killed test run must not leave its stack behind
    scheduler_start: str | None = None  # the EventBridge emulator's clock (tests: a fast one)
    scheduler_speed: float = 1.0

    @classmethod
    def from_env(cls, env: dict[str, str] | None = None) -> StackConfig:
        env = dict(os.environ if env is None else env)
        cfg = cls()
        for attr, name, cast in (
            ("http_port", config.LOCAL_HTTP_PORT, int),
            ("ws_port", config.LOCAL_WS_PORT, int),
            ("aws_port", config.LOCAL_AWS_PORT, int),
            ("control_port", config.LOCAL_CONTROL_PORT, int),
            ("admin_email", config.LOCAL_ADMIN_EMAIL, str),
            ("admin_password", config.LOCAL_ADMIN_PASSWORD, str),
            ("ws_idle_timeout", config.LOCAL_WS_IDLE_TIMEOUT, float),
            ("ws_max_age", config.LOCAL_WS_MAX_AGE, float),
            ("generator_delay", config.LOCAL_GENERATOR_DELAY, float),
            ("app_ref", config.LOCAL_APP, str),
            ("ready_file", config.LOCAL_READY_FILE, str),
            ("exit_with_parent", config.LOCAL_EXIT_WITH_PARENT, lambda v: v == "1"),
            ("scheduler_start", config.LOCAL_SCHEDULER_START, str),
            ("scheduler_speed", config.LOCAL_SCHEDULER_SPEED, float),
        ):
            if env.get(name):
                setattr(cfg, attr, cast(env[name]))
        cfg.admin_password_given = bool(env.get(config.LOCAL_ADMIN_PASSWORD))
        return cfg

    def printed_password(self) -> str:
        """The admin's password as the banner prints it: a generated one (the only place it is
        told), never one the operator supplied (logs keep what is printed)."""
        return f"(from {config.LOCAL_ADMIN_PASSWORD})" if self.admin_password_given else self.admin_password


class Stack:
    def __init__(self, cfg: StackConfig) -> None:
        self.cfg = cfg
        self._stop = threading.Event()
        self._parts: list[Any] = []
        self.aws: EmulatedAws | None = None
        self.control: ControlServer | None = None
        self.gateway: WebSocketGateway | None = None
        self.rest: RestServer | None = None
        self.scheduler: Scheduler | None = None
        self.pollers: list[SqsPoller] = []
        self.app: Any = None
        self.faults = FaultInjector()
        self.startup_seconds = 0.0

    # --- start ----------------------------------------------------------------------------------

    def start(self) -> dict[str, Any]:
        started = time.perf_counter()
        cfg = self.cfg
        stage = os.environ.setdefault(config.STAGE, "local")
        if stage not in config.LOCAL_STAGES:
            raise StackError(
                f"{config.STAGE}={stage!r}: the local stack runs only stages {sorted(config.LOCAL_STAGES)}"
            )
        self.aws = EmulatedAws(cfg.aws_port)
        endpoint = self.aws.start()
        self.control = ControlServer(cfg.control_port, self.faults)
        control_url = f"http://127.0.0.1:{self.control.port}"
        _configure_environment(endpoint, control_url)
        from chalicelib import aws

        self.faults.install(aws.session())  # the app's clients, built from here on; no rule yet

        module_name, _, attr = cfg.app_ref.partition(":")
        module = importlib.import_module(module_name)
        self.app = getattr(module, attr or "app")
        logs.adopt(self.app.log)
        extra_queues = tuple(getattr(module, "EXTRA_QUEUES", ()))
        self.aws.provision(extra_queues)
        queue_handlers, schedules = sqs_sources(self.app, extra_queues), schedule_sources(self.app)
        self.aws.deploy(queue_handlers, schedules)
        self._create_admin()

        settings = config.get()
        self.gateway = WebSocketGateway(
            websocket_handlers(self.app),
            cfg.ws_port,
            idle_timeout=cfg.ws_idle_timeout,
            max_age=cfg.ws_max_age,
            stage=settings.stage,
        )
        self.gateway.start()
        # Tickets carry the URL clients connect to (INKWELL_WS_URL), known once the gateway listens.
        os.environ.setdefault(config.WS_URL, f"ws://127.0.0.1:{self.gateway.port}")
        config.reset()
        self.rest = RestServer(cfg.http_port, self.app).start()
        self.scheduler = Scheduler(
            schedules,
            aws.client("events"),
            settings.region,
            self._stop,
            clock=fast_clock(cfg.scheduler_start, cfg.scheduler_speed),
            speed=cfg.scheduler_speed,
            scheduler=aws.client("scheduler"),
            sqs=aws.client("sqs"),
            group=config.physical_name(settings.stage),
        )
        # Lambda's pollers are AWS's, not the app's: their own clients, outside the app's faults
        # (the injector reaches them through its emulator faults).
        sqs, lam = _emulator_client("sqs"), _emulator_client("lambda")
        self.pollers = [SqsPoller(q, sqs, lam, settings.region, self._stop, faults=self.faults) for q in queue_handlers]
        self.control.gateway = self.gateway
        self.control.scheduler = self.scheduler
        self.control.generator = FakeGenerator(secret.get(config.WEBHOOK_SECRET), cfg.generator_delay)
        self.control.start()
        for poller in self.pollers:
            poller.thread.start()
        self.scheduler.thread.start()
        info = self.endpoints()
        self.startup_seconds = time.perf_counter() - started
        info["startup_seconds"] = round(self.startup_seconds, 2)
        if cfg.ready_file:
            tmp = cfg.ready_file + ".tmp"
            with open(tmp, "w") as handle:
                json.dump(info, handle)
            os.replace(tmp, cfg.ready_file)
        return info

    def _create_admin(self) -> None:
        from chalicelib.auth import service as auth

        auth.create_user(self.cfg.admin_email, self.cfg.admin_password, "admin")

    def endpoints(self) -> dict[str, Any]:
        assert self.aws and self.control and self.gateway and self.rest and self.scheduler
        control = f"http://127.0.0.1:{self.control.port}"
        return {
            "pid": os.getpid(),
            "stage": config.get().stage,
            "http_url": f"http://127.0.0.1:{self.rest.port}",
            "ws_url": f"ws://127.0.0.1:{self.gateway.port}",
            "aws_endpoint": self.aws.endpoint,
            "region": config.get().region,
            "control_url": control,
            "management_endpoint": control,
            "generator_url": os.environ[config.ARTICLE_WEBHOOK_URL],
            "admin_email": self.cfg.admin_email,
            "admin_password": self.cfg.admin_password,
            "queue_handlers": {
                p.source.name: {
                    "queue": p.source.queue_name,
                    "function": p.source.function_name,
                    "mapping_uuid": p.source.mapping_uuid,
                    "batch_size": p.source.batch_size,
                }
                for p in self.pollers
            },
            "schedules": [s["name"] for s in self.scheduler.describe()],
        }

    def banner(self) -> str:
        e = self.endpoints()
        rows = [
            ("REST API", f"{e['http_url']}/api/health"),
            ("WebSocket API", f"{e['ws_url']}/?ticket=<POST /api/realtime/ticket>"),
            ("WS management", f"{e['management_endpoint']}/@connections/{{id}}"),
            ("AWS (moto)", f"{e['aws_endpoint']}  region {e['region']}, credentials testing/testing"),
            ("Article generator", e["generator_url"]),
            ("Schedules", f"{e['control_url']}/schedules  (POST .../schedules/{{name}}/fire)"),
            ("Admin", f"{e['admin_email']}  password: {self.cfg.printed_password()}"),
        ]
        rows += [
            (f"Worker {name}", f"{h['queue']} (batch {h['batch_size']})") for name, h in e["queue_handlers"].items()
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"Inkwell local stack (stage {e['stage']}) is up in {self.startup_seconds:.1f} s:"]
        lines += [f"  {k.ljust(width)}  {v}" for k, v in rows]
        lines.append("Ctrl-C stops everything.")
        return "\n".join(lines)

    # --- stop -----------------------------------------------------------------------------------

    def stop(self) -> None:
        """Workers first, then the servers (WebSocket sessions get $disconnect), moto last."""
        self._stop.set()
        if self.scheduler:
            self.scheduler.shutdown()
        deadline = time.monotonic() + 1.5
        for poller in self.pollers:
            if poller.thread.is_alive():
                poller.thread.join(max(0.0, deadline - time.monotonic()))
        if self.gateway:
            self.gateway.stop(2.0)
        for server in (self.rest, self.control):
            if server is not None:
                server.stop()
        if self.aws and self.aws.started:
            self.aws.stop()


def _emulator_client(service: str) -> Any:
    """A client of the emulators' own, on a session the app's fault injector does not hook."""
    import boto3
    from botocore.config import Config

    settings = config.get()
    return boto3.session.Session().client(
        service,
        config=Config(max_pool_connections=50),
        region_name=settings.region,
        endpoint_url=settings.aws_endpoint,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )


def _configure_environment(aws_endpoint: str, control_url: str) -> None:
    """What the app reads, set before it is imported: emulator URLs and fake credentials."""
    env = os.environ
    env.setdefault(config.REGION, "us-east-1")
    for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_SECURITY_TOKEN", config.SECRETS_PARAMETER_PREFIX):
        env.pop(name, None)
    env["AWS_ACCESS_KEY_ID"] = env["AWS_SECRET_ACCESS_KEY"] = "testing"
    env[config.AWS_ENDPOINT] = aws_endpoint
    env[config.WS_MANAGEMENT_ENDPOINT] = control_url
    env.setdefault(config.ARTICLE_WEBHOOK_URL, control_url + "/generator")
    from chalicelib import aws

    config.reset()
    aws.reset()


def main() -> None:
    logs.setup()
    stack = Stack(StackConfig.from_env())
    stopping = threading.Event()

    def interrupt(signum: int, frame: Any) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, interrupt)  # during start-up, SIGTERM acts as Ctrl-C does
    try:
        stack.start()
    except KeyboardInterrupt:
        _shutdown(stack)
    except StackError as exc:
        logs.line("STACK", f"cannot start: {exc}")
        _shutdown(stack, status=2)
    except OSError as exc:
        if exc.errno != errno.EADDRINUSE:
            raise
        ports = ", ".join(f"{name}={value}" for name, value in _port_settings(stack.cfg))
        logs.line("STACK", f"cannot start: a port is already in use ({ports}); set another, or 0 for any free one")
        _shutdown(stack, status=2)
    except Exception:
        logs.log.exception("the local stack failed to start")
        _shutdown(stack, status=1)
    logs.announce(stack.banner())

    def request_stop(signum: int, frame: Any) -> None:
        stopping.set()

    signal.signal(signal.SIGINT, request_stop)
    signal.signal(signal.SIGTERM, request_stop)
    parent = os.getppid()
    while not stopping.wait(0.5):
        if stack.cfg.exit_with_parent and os.getppid() != parent:
            logs.line("STACK", f"the process that started it ({parent}) is gone")
            break
    _shutdown(stack)


def _port_settings(cfg: StackConfig) -> list[tuple[str, int]]:
    return [
        (config.LOCAL_HTTP_PORT, cfg.http_port),
        (config.LOCAL_WS_PORT, cfg.ws_port),
        (config.LOCAL_AWS_PORT, cfg.aws_port),
        (config.LOCAL_CONTROL_PORT, cfg.control_port),
    ]


def _shutdown(stack: Stack, status: int = 0) -> NoReturn:
    logs.line("STACK", "stopping")
    hard_stop = threading.Timer(STOP_BUDGET, lambda: os._exit(status))
    hard_stop.daemon = True
    hard_stop.start()
    started = time.perf_counter()
    try:
        stack.stop()
    finally:
        logs.line("STACK", f"stopped in {logs.ms(started)}")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)  # executor threads blocked in a handler must not hold the process
