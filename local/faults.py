"""Faults inside AWS, injected on demand (the control server's `/faults`, docs/local-stack.md).

Rules say what fails, where and how often. AWS calls (`service` one of SERVICES, `operation` the
API's name, e.g. `PutItem`, or `*`):
- `error`: the call fails before it reaches AWS with `error` `throttle` (DynamoDB's
  ProvisionedThroughputExceededException, SQS's and the management API's throttling, SES's
  Throttling) or `internal` (a 500); the SDK retries it as it would AWS's answer;
- `lost_answer`: the call is applied, then the caller sees a read timeout (the SDK retries it);
- `latency`: the call waits `seconds` first;
- `outage`: every matching call fails with `error` for `seconds` from now.
Emulator faults (`queue` a queue's logical or physical name, or `*`):
- `duplicate_delivery`: a received message is also handed to a second invocation;
- `lost_delete`: a message its invocation finished is not deleted (it comes back after the
  visibility timeout);
- `kill_invocation`: the invocation is stopped at a random one of its next `within` AWS calls
  (or at its end, before the delete): its work is abandoned there, its messages come back;
- `overrun_timeout`: the invocation stalls `seconds` at a random one of its next `within` AWS
  calls, past its function's timeout (cut to `seconds` for it), and is stopped as Lambda does.
Each rule fires at a `rate` (0-1, drawn from a generator seeded by `seed`) or `count` times (1 by
default); the first matching rule wins. The botocore clients of `chalicelib.aws` get the AWS
faults through a `before-send` hook on their session (`install`), the management API (a plain
HTTP client, served by the control server) through `server_fault`; production never installs it.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from local import logs

SERVICES = ("dynamodb", "sqs", "ses", "apigatewaymanagementapi")
AWS_KINDS = ("error", "lost_answer", "latency", "outage")
EMULATOR_KINDS = ("duplicate_delivery", "lost_delete", "kill_invocation", "overrun_timeout")
KINDS = AWS_KINDS + EMULATOR_KINDS
ERRORS = ("throttle", "internal")
MAX_SECONDS = 60.0


class BadRule(ValueError):
    """A rule the injector cannot take (the control server answers 400 with the message)."""


class Killed(BaseException):  # noqa: N818 (not an error: the end of an invocation)
    """Lambda stopped the invocation: a BaseException, so that no `except Exception` in the app
    handles it, and every later AWS call of the invocation raises it again."""


@dataclass
class Rule:
    id: str
    kind: str
    service: str = "*"
    operation: str = "*"
    queue: str = "*"
    rate: float | None = None
    count: int | None = None
    error: str = "throttle"
    seconds: float = 0.0
    within: int = 20
    until: float | None = None  # an outage's end (the injector's clock)
    injected: int = 0

    def describe(self) -> dict[str, Any]:
        shown = {"id": self.id, "kind": self.kind, "injected": self.injected}
        if self.kind in AWS_KINDS:
            shown.update(service=self.service, operation=self.operation)
        else:
            shown["queue"] = self.queue
        if self.kind in ("error", "outage"):
            shown["error"] = self.error
        if self.kind in ("latency", "outage", "overrun_timeout"):
            shown["seconds"] = self.seconds
        if self.kind in ("kill_invocation", "overrun_timeout"):
            shown["within"] = self.within
        if self.kind != "outage":
            shown.update({"rate": self.rate} if self.rate is not None else {"count": self.count})
        return shown


def parse_rule(spec: Any, rule_id: str, now: float) -> Rule:
    """A Rule from its JSON form; BadRule naming the field otherwise."""
    if not isinstance(spec, dict):
        raise BadRule("a rule is an object")
    known = {"kind", "service", "operation", "queue", "rate", "count", "error", "seconds", "within"}
    if unknown := sorted(set(spec) - known):
        raise BadRule(f"unknown field(s) {', '.join(unknown)}")
    kind = spec.get("kind")
    if kind not in KINDS:
        raise BadRule(f"kind must be one of {', '.join(KINDS)}")
    rule = Rule(rule_id, kind)
    for name in ("service", "operation", "queue"):
        value = spec.get(name, "*")
        if not isinstance(value, str) or not value:
            raise BadRule(f"{name} must be a non-empty string")
        setattr(rule, name, value)
    if rule.service not in ("*", *SERVICES):
        raise BadRule(f"service must be one of {', '.join(SERVICES)} or *")
    rule.error = spec.get("error", "throttle")
    if rule.error not in ERRORS:
        raise BadRule(f"error must be one of {', '.join(ERRORS)}")
    rule.seconds = _number(spec, "seconds", 1.0 if kind in ("outage", "overrun_timeout") else 0.0, 0, MAX_SECONDS)
    rule.within = int(_number(spec, "within", 20, 0, 10_000))
    if kind == "outage":
        rule.until = now + rule.seconds
        return rule
    if "rate" in spec and "count" in spec:
        raise BadRule("give rate or count, not both")
    if "rate" in spec:
        rule.rate = _number(spec, "rate", 0, 0, 1)
    else:
        rule.count = int(_number(spec, "count", 1, 1, 1_000_000))
    return rule


def _number(spec: dict[str, Any], name: str, default: float, low: float, high: float) -> float:
    value = spec.get(name, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise BadRule(f"{name} must be a number from {low} to {high}")
    return float(value)


@dataclass
class Invocation:
    """One emulated Lambda invocation under an emulator fault: where it is stopped."""

    kind: str  # kill_invocation or overrun_timeout
    at_call: int  # the AWS call (counted from 0) where it is killed or stalls
    stall: float = 0.0
    calls: int = 0
    deadline: float | None = None
    killed: bool = False


class _Raw:
    """The body of a made-up HTTP answer, as botocore reads one (`stream()`)."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data


# (HTTP status, error code) per error kind and service; botocore's standard retry mode retries each.
_CODES = {
    "throttle": {
        "dynamodb": (400, "ProvisionedThroughputExceededException"),
        "ses": (400, "Throttling"),
        "apigatewaymanagementapi": (429, "LimitExceededException"),
        "*": (400, "ThrottlingException"),
    },
    "internal": {"dynamodb": (500, "InternalServerError"), "*": (500, "InternalFailure")},
}


def error_code(error: str, service: str) -> tuple[int, str]:
    codes = _CODES[error]
    return codes.get(service, codes["*"])


@dataclass
class FaultInjector:
    seed: int | None = None
    sleep: Callable[[float], None] = time.sleep
    clock: Callable[[], float] = time.monotonic
    send: Callable[[Any], Any] | None = None  # how a lost answer's call is applied (botocore's HTTP session)
    rules: list[Rule] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._random = random.Random(self.seed)
        self._ids = itertools.count(1)
        self._local = threading.local()
        self.injected: dict[str, int] = {}

    # --- rules ----------------------------------------------------------------------------------

    def configure(self, spec: Any) -> list[Rule]:
        """Add one rule (`{"kind", ...}`) or several (`{"rules": [...], "seed"?}`, which replaces
        every rule and, with a seed, restarts the random draws)."""
        if isinstance(spec, dict) and "rules" in spec:
            if not isinstance(spec["rules"], list):
                raise BadRule("rules must be a list")
            if not isinstance(spec.get("seed", 0), int):
                raise BadRule("seed must be an integer")
            rules = [parse_rule(one, "", self.clock()) for one in spec["rules"]]
            with self._lock:
                if "seed" in spec:
                    self.seed, self._random = spec["seed"], random.Random(spec["seed"])
                self.rules = rules
                for rule in rules:
                    rule.id = f"f{next(self._ids)}"
            return rules
        rule = parse_rule(spec, "", self.clock())
        with self._lock:
            rule.id = f"f{next(self._ids)}"
            self.rules.append(rule)
        return [rule]

    def remove(self, rule_id: str) -> bool:
        with self._lock:
            kept = [r for r in self.rules if r.id != rule_id]
            found, self.rules = len(kept) < len(self.rules), kept
        return found

    def clear(self) -> None:
        with self._lock:
            self.rules = []

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"seed": self.seed, "rules": [r.describe() for r in self.rules], "injected": dict(self.injected)}

    def pick(self, kinds: tuple[str, ...], service: str = "*", operation: str = "*", queue: str = "*") -> Rule | None:
        """The rule that fires for this call or message, if any (counted as injected)."""
        now = self.clock()
        with self._lock:
            for rule in list(self.rules):
                if rule.kind not in kinds or not _matches(rule, service, operation, queue):
                    continue
                if rule.until is not None:
                    if now >= rule.until:
                        self.rules.remove(rule)
                        continue
                elif rule.rate is not None:
                    if self._random.random() >= rule.rate:
                        continue
                else:
                    assert rule.count is not None
                    rule.count -= 1
                    if rule.count <= 0:
                        self.rules.remove(rule)
                rule.injected += 1
                self.injected[rule.kind] = self.injected.get(rule.kind, 0) + 1
                return rule
        return None

    def draw(self, below: int) -> int:
        with self._lock:
            return self._random.randrange(below) if below > 0 else 0

    # --- AWS calls through botocore -------------------------------------------------------------

    def install(self, session: Any) -> None:
        """Hook every client `session` builds from now on (a boto3 or botocore session)."""
        events = getattr(session, "events", None) or session.get_component("event_emitter")
        events.register_first("before-send", self._before_send, unique_id="inkwell-fault-injector")

    def _before_send(self, request: Any, event_name: str, **kwargs: Any) -> Any:
        service, _, operation = event_name.split(".", 1)[1].partition(".")
        if service not in SERVICES:
            return None
        self.checkpoint()
        rule = self.pick(AWS_KINDS, service, operation)
        if rule is None:
            return None
        logs.line("FAULT", f"{rule.kind} {service}.{operation}{_tables(request)} ({rule.id})")
        if rule.kind == "latency":
            self.sleep(rule.seconds)
            return None
        if rule.kind == "lost_answer":
            self._apply(request)
            from botocore.exceptions import ReadTimeoutError

            raise ReadTimeoutError(endpoint_url=request.url, error="injected fault: the answer was lost")
        return _error_response(request, service, rule.error)

    def _apply(self, request: Any) -> None:
        if self.send is None:
            from botocore.httpsession import URLLib3Session

            self.send = URLLib3Session(timeout=30, max_pool_connections=32).send
        answer = self.send(request)
        _ = answer.content  # read to the end: the call is applied, its answer dropped

    # --- the management API (served by the control server) -------------------------------------

    def server_fault(self, service: str, operation: str) -> Rule | None:
        """For an emulated API's server: sleeps a `latency` rule itself; an `error`, `outage` or
        `lost_answer` rule is the server's to act on (it answers the error, or applies the call
        and closes the connection without an answer)."""
        rule = self.pick(AWS_KINDS, service, operation)
        if rule is None:
            return None
        logs.line("FAULT", f"{rule.kind} {service}.{operation} ({rule.id})")
        if rule.kind == "latency":
            self.sleep(rule.seconds)
            return None
        return rule

    # --- emulated Lambda invocations ------------------------------------------------------------

    @contextlib.contextmanager
    def invocation(self, queue: str, timeout: float) -> Iterator[Invocation | None]:
        """Around one SQS invocation on this thread: a kill or an overrun, if a rule fires (the
        invocation's function timeout is then `seconds` for an overrun)."""
        rule = self.pick(("kill_invocation", "overrun_timeout"), queue=queue)
        current = None
        if rule is not None:
            current = Invocation(rule.kind, self.draw(rule.within + 1))
            if rule.kind == "overrun_timeout":
                current.stall, current.deadline = rule.seconds, self.clock() + rule.seconds
        self._local.invocation = current
        try:
            yield current
        finally:
            self._local.invocation = None

    def checkpoint(self) -> None:
        """Before each AWS call of an invocation (and at its end): stop it where a fault says."""
        current: Invocation | None = getattr(self._local, "invocation", None)
        if current is None:
            return
        if current.killed:
            raise Killed("the invocation was stopped")
        at = current.calls
        current.calls += 1
        if current.kind == "overrun_timeout" and at == current.at_call:
            self.sleep(current.stall)
        timed_out = current.deadline is not None and self.clock() >= current.deadline
        if (current.kind == "kill_invocation" and at >= current.at_call) or timed_out:
            current.killed = True
            why = "timed out" if current.kind == "overrun_timeout" else "killed"
            logs.line("FAULT", f"{current.kind}: invocation {why} at AWS call {at}")
            raise Killed(f"the invocation was {why} at AWS call {at}")

    def finish(self) -> None:
        """At an invocation's end, before its messages are deleted: one whose stop point was not
        reached is stopped here (an overrun stalls first)."""
        current: Invocation | None = getattr(self._local, "invocation", None)
        if current is None or current.killed:
            return
        current.at_call = current.calls
        if current.kind == "overrun_timeout":
            current.deadline = self.clock()  # past its timeout once the stall is over
        self.checkpoint()


def _matches(rule: Rule, service: str, operation: str, queue: str) -> bool:
    if rule.kind in AWS_KINDS:
        return rule.service in ("*", service) and rule.operation in ("*", operation)
    return rule.queue in ("*", queue) or queue.endswith("-" + rule.queue)


def _tables(request: Any) -> str:
    """` on <table>[, <table>]` for a DynamoDB call (what the log needs to find the path hit)."""
    body, target = request.body, request.headers.get("X-Amz-Target") or ""
    if not body or not (target.decode() if isinstance(target, bytes) else target).startswith("DynamoDB"):
        return ""
    try:
        sent = json.loads(body)
    except ValueError:
        return ""
    names = [sent["TableName"]] if "TableName" in sent else []
    for item in sent.get("TransactItems") or []:
        names += [op.get("TableName", "?") for op in item.values() if isinstance(op, dict)]
    names += list(sent.get("RequestItems") or {})
    return f" on {', '.join(dict.fromkeys(names))}" if names else ""


def _error_response(request: Any, service: str, error: str) -> Any:
    """The answer AWS gives for `error`, in the request's protocol (JSON for an `X-Amz-Target`
    call, the query protocol's XML otherwise)."""
    from botocore.awsrequest import AWSResponse

    status, code = error_code(error, service)
    message = f"injected fault: {code}"
    headers = {"x-amzn-ErrorType": code, "x-amzn-RequestId": "injected-fault"}
    if request.headers.get("X-Amz-Target"):
        headers["Content-Type"] = "application/x-amz-json-1.0"
        body = json.dumps({"__type": code, "message": message}).encode()
    else:
        headers["Content-Type"] = "text/xml"
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{code}</Code><Message>{message}</Message></Error>"
            "<RequestId>injected-fault</RequestId></ErrorResponse>"
        ).encode()
    return AWSResponse(request.url, status, headers, _Raw(body))
