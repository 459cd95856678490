"""What every invocation shares: who and what is running (`current()`), and the middleware that
sets it up around every handler.

`Middleware` is registered once, in app.py, with Chalice's public `app.register_middleware(...,
"all")`, so it wraps every kind of handler (REST route, WebSocket, SQS, schedule). Around each
invocation it (1) makes an `Invocation` with the request id, client IP and user agent available to
any code through `current()`, (2) turns a REST handler's `errors.Refused` into the contract's
error answer, and (3) flushes its per-invocation buffers when the invocation ends, on success and
on error alike, in the order app.py lists them; nothing registers itself.

A `Buffer` is what a writer keeps on the running invocation until its end (the audit events to
write, the realtime events of rooms nobody was in, the job tally, the metrics): a name, how to
make an empty one, and its end flush. A flush may fill a buffer flushed after it (the audit's
flush counts metrics), never one flushed before: app.py's order says which comes first.
"""

from __future__ import annotations

import contextlib
import contextvars
import logging
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar, cast

from chalice import Response
from chalice.app import Request, SQSEvent, WebsocketEvent

from chalicelib import errors

log = logging.getLogger("inkwell")
T = TypeVar("T")


@dataclass
class Invocation:
    kind: str  # rest | websocket | sqs | schedule | script
    request_id: str
    ip: str | None = None
    user_agent: str | None = None
    user: dict[str, Any] | None = None  # {"id","email","role"} once authenticated
    headers: dict[str, str] = field(default_factory=dict)  # REST: lower-cased request headers
    extras: dict[str, Any] = field(default_factory=dict)  # the buffers' contents, by name (`Buffer`)
    correlation: dict[str, Any] = field(default_factory=dict)  # job_id, queue, connection_id, ...
    cold_start: bool | None = None  # the container's first invocation (None outside a handler)
    route: str | None = None  # REST: the route's path pattern, e.g. /api/articles/{id}
    method: str | None = None  # REST: the HTTP method
    status: int | None = None  # REST: the status answered
    started: float = field(default_factory=time.perf_counter)
    buffers: tuple[Buffer[Any], ...] = ()  # what its middleware flushes when it ends, in order
    flushed: set[str] = field(default_factory=set)  # the buffers whose end flush has begun


class Buffer(Generic[T]):
    """One kind of per-invocation buffer: `name` keys its content on the invocation, `factory`
    makes an empty one, and `at_end` (a function of the writer's module) is its end flush, which
    takes the content off the invocation (`take`) and writes it. A Middleware given the buffer
    runs `at_end` when each invocation ends."""

    def __init__(self, name: str, factory: Callable[[], T], at_end: Callable[[], object]) -> None:
        self.name, self.factory, self.at_end = name, factory, at_end

    def __repr__(self) -> str:
        return f"Buffer({self.name!r})"

    def get(self) -> T:
        """The running invocation's content (a script's outside any handler), made at first use."""
        extras = current().extras
        if self.name not in extras:
            extras[self.name] = self.factory()
        return cast(T, extras[self.name])

    def peek(self) -> T | None:
        """The running invocation's content, or None if it has none (never makes one)."""
        return cast("T | None", current().extras.get(self.name))

    def take(self) -> T | None:
        """Take the content off the running invocation (None if it had none): the next `get`
        makes a new one."""
        return cast("T | None", current().extras.pop(self.name, None))

    def deferred(self) -> T | None:
        """The running invocation's content if a Middleware will flush this buffer at its end and
        has not begun to: a writer may then leave work for the end. None elsewhere (scripts,
        tests, a Middleware without it) and once its end flush began: the work is done at once."""
        inv = _current.get()
        if inv is None or self not in inv.buffers or self.name in inv.flushed:
            return None
        return self.get()


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("invocation", default=None)


def current() -> Invocation:
    """The running invocation; outside any handler, a `script` one (CLI, tests)."""
    inv = _current.get()
    if inv is None:
        inv = Invocation(kind="script", request_id=str(uuid.uuid4()))
        _current.set(inv)
    return inv


def reset() -> None:
    """Forget the running invocation (tests, between cases: a `script` invocation outlives one
    case otherwise, with whatever its buffers still hold)."""
    _current.set(None)


def peek() -> Invocation | None:
    """The running invocation, or None outside any (never creates one: for log filters)."""
    return _current.get()


@contextlib.contextmanager
def correlate(**keys: Any) -> Iterator[None]:
    """Name what runs inside the block (`job_id=`, `queue=`, ...) on the running invocation; the
    keys it had before come back when the block ends. None values are left out."""
    inv = current()
    before = dict(inv.correlation)
    annotate(**keys)
    try:
        yield
    finally:
        inv.correlation.clear()
        inv.correlation.update(before)


def annotate(**keys: Any) -> None:
    """Add correlation keys to the running invocation (until the enclosing `correlate` ends)."""
    current().correlation.update({k: v for k, v in keys.items() if v is not None})


_cold = [True]  # the next invocation is the container's first


def _cold_start() -> bool:
    cold, _cold[0] = _cold[0], False
    return cold


class Middleware:
    """Chalice middleware for every handler (see the module docstring); the `buffers` are flushed
    in their order when each invocation ends (a failing flush is logged and does not stop the
    others; a buffer written again after its flush is logged as an error: its flush comes too
    early), and `on_error` is called with any exception that escapes the handler (it then
    propagates as before)."""

    def __init__(
        self,
        buffers: Sequence[Buffer[Any]] = (),
        on_error: Sequence[Callable[[Exception], object]] = (),
    ) -> None:
        names = [buffer.name for buffer in buffers]
        if len(set(names)) != len(names):
            raise ValueError(f"two buffers share a name: {names}")
        self.buffers = tuple(buffers)
        self.at_end = tuple(buffer.at_end for buffer in buffers)  # what runs at the end, in order
        self.on_error = tuple(on_error)

    def __call__(self, event: Any, get_response: Callable[[Any], Any]) -> Any:
        inv = invocation_of(event)
        inv.cold_start = _cold_start()
        if inv.kind == "rest":
            return self.run(inv, _answer_refusals, get_response, event)
        return self.run(inv, get_response, event)

    def run(self, inv: Invocation, fn: Callable[..., Any], *args: Any) -> Any:
        """Run `fn(*args)` as invocation `inv`: context set, buffers flushed whatever happens."""
        inv.buffers = self.buffers  # a writer may leave work for the end (Buffer.deferred)
        token = _current.set(inv)
        try:
            result = fn(*args)
            if inv.kind == "rest":
                inv.status = getattr(result, "status_code", None)
            return result
        except Exception as exc:
            if inv.kind == "rest":
                inv.status = 500
            for report in self.on_error:
                try:
                    report(exc)
                except Exception:
                    log.exception("error hook %s failed", getattr(report, "__name__", report))
            raise
        finally:
            try:
                self._flush(inv)
            finally:
                _current.reset(token)

    def _flush(self, inv: Invocation) -> None:
        for buffer in self.buffers:
            inv.flushed.add(buffer.name)
            try:
                buffer.at_end()
            except Exception:
                log.exception("the end flush of buffer %s failed", buffer.name)
        for buffer in self.buffers:
            if buffer.name in inv.extras:
                log.error("buffer %s was written after its end flush (lost): flush it later", buffer.name)


def _answer_refusals(get_response: Callable[[Any], Any], request: Any) -> Any:
    try:
        return get_response(request)
    except errors.Refused as exc:
        from chalicelib import http  # the REST edge: loaded by the first refused request

        return http.error_response(exc)


def invocation_of(event: Any) -> Invocation:
    """The Invocation of a Chalice event object (what middleware receives)."""
    if isinstance(event, Request):
        ctx = event.context or {}
        headers = {k.lower(): v for k, v in dict(event.headers or {}).items()}
        return Invocation(
            kind="rest",
            request_id=ctx.get("requestId") or str(uuid.uuid4()),
            ip=(ctx.get("identity") or {}).get("sourceIp"),
            user_agent=headers.get("user-agent"),
            headers=headers,
            route=ctx.get("resourcePath"),
            method=event.method,
        )
    if event is None:  # a REST event Chalice could not route (no resourcePath)
        return Invocation(kind="rest", request_id=str(uuid.uuid4()))
    context = getattr(event, "context", None)
    request_id = getattr(context, "aws_request_id", None) or str(uuid.uuid4())
    if isinstance(event, WebsocketEvent):
        raw = event.to_dict()
        rc = raw.get("requestContext") or {}
        identity = rc.get("identity") or {}
        headers = raw.get("headers") or {}  # only on $connect
        return Invocation(
            kind="websocket",
            request_id=rc.get("requestId") or request_id,
            ip=identity.get("sourceIp"),
            user_agent=headers.get("User-Agent") or headers.get("user-agent") or identity.get("userAgent"),
            correlation={"connection_id": rc["connectionId"]} if rc.get("connectionId") else {},
        )
    return Invocation(kind="sqs" if isinstance(event, SQSEvent) else "schedule", request_id=request_id)


def response(body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body if body is not None else "", status_code=status, headers=dict(headers or {}))
