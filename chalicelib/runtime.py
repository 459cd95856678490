"""The Chalice app class and what every invocation shares.

`Inkwell` is Chalice with one addition: every handler it registers (REST route, WebSocket, SQS,
schedule) is wrapped so that (1) an `Invocation` with the request id, client IP and user agent is
available to any code through `current()`, (2) REST errors are turned into the contract's error
shape, and (3) the functions registered with `at_end()` (the audit buffer's flush, for one) run
when the invocation ends, on success and on error alike. Nothing has to remember to do it.
"""

from __future__ import annotations

import contextvars
import functools
import importlib
import logging
import sys
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

from chalice import Chalice, Response

log = logging.getLogger("inkwell")


@dataclass
class Invocation:
    kind: str  # rest | websocket | sqs | schedule | script
    request_id: str
    ip: str | None = None
    user_agent: str | None = None
    user: dict[str, Any] | None = None  # {"id","email","role"} once authenticated
    headers: dict[str, str] = field(default_factory=dict)  # REST: lower-cased request headers
    extras: dict[str, Any] = field(default_factory=dict)


_current: contextvars.ContextVar[Invocation | None] = contextvars.ContextVar("invocation", default=None)
_end_hooks: list[Callable[[], object]] = []


def current() -> Invocation:
    """The running invocation; outside any handler, a `script` one (CLI, tests)."""
    inv = _current.get()
    if inv is None:
        inv = Invocation(kind="script", request_id=str(uuid.uuid4()))
        _current.set(inv)
    return inv


def at_end(hook: Callable[[], object]) -> Callable[[], object]:
    """Run `hook` at the end of every invocation (registered once, at import); its result is ignored."""
    if hook not in _end_hooks:
        _end_hooks.append(hook)
    return hook


def run_end_hooks() -> None:
    for hook in _end_hooks:
        try:
            hook()
        except Exception:  # one failing hook must not stop the others
            log.exception("end-of-invocation hook %s failed", getattr(hook, "__name__", hook))


def invoke(inv: Invocation, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Run `fn` as invocation `inv`: context set, end hooks run whatever happens."""
    token = _current.set(inv)
    try:
        return fn(*args, **kwargs)
    finally:
        try:
            run_end_hooks()
        finally:
            _current.reset(token)


def _lambda_request_id(context: Any) -> str:
    return getattr(context, "aws_request_id", None) or str(uuid.uuid4())


class Inkwell(Chalice):
    """Chalice, with every handler wrapped (see the module docstring)."""

    def _register_handler(
        self, handler_type: str, name: str, user_handler: Any, wrapped_handler: Any, kwargs: Any, options: Any = None
    ) -> None:
        # Routes are dispatched to the function registered here, not to the decorator's result.
        if handler_type == "route":
            user_handler = self._wrap_route(user_handler)
        super()._register_handler(handler_type, name, user_handler, wrapped_handler, kwargs, options)

    def _wrap_handler(self, handler_type: str, handler_name: str, user_handler: Any) -> Any:
        # Event handlers are deployed as the decorator's result (`app.<name>`), so wrap here.
        if handler_type in ("on_sqs_message", "schedule", "on_ws_connect", "on_ws_message", "on_ws_disconnect"):
            user_handler = _wrap_event(handler_type, user_handler)
        return super()._wrap_handler(handler_type, handler_name, user_handler)

    def _wrap_route(self, view: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(view)
        def wrapped(**kwargs: Any) -> Any:
            from chalicelib import http  # pydantic: loaded by the first request, not at registration

            request = self.current_request
            ctx = request.context if request is not None else {}
            headers = request.headers if request is not None else {}
            inv = Invocation(
                kind="rest",
                request_id=ctx.get("requestId") or str(uuid.uuid4()),
                ip=(ctx.get("identity") or {}).get("sourceIp"),
                user_agent=headers.get("user-agent"),
                headers={k.lower(): v for k, v in dict(headers).items()},
            )
            return invoke(inv, http.run_view, view, kwargs)

        return wrapped


def _wrap_event(handler_type: str, fn: Callable[..., Any]) -> Callable[..., Any]:
    kind = {"on_sqs_message": "sqs", "schedule": "schedule"}.get(handler_type, "websocket")

    @functools.wraps(fn)
    def wrapped(event: Any) -> Any:
        context = getattr(event, "context", None)
        inv = Invocation(kind=kind, request_id=_lambda_request_id(context))
        if kind == "websocket":
            raw = event.to_dict()
            rc = raw.get("requestContext") or {}
            inv.request_id = rc.get("requestId") or inv.request_id
            identity = rc.get("identity") or {}
            headers = raw.get("headers") or {}  # only on $connect
            inv.ip = identity.get("sourceIp")
            inv.user_agent = headers.get("User-Agent") or headers.get("user-agent") or identity.get("userAgent")
        return invoke(inv, fn, event)

    return wrapped


def response(body: Any = None, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return Response(body=body if body is not None else "", status_code=status, headers=dict(headers or {}))


class _LazyModule(ModuleType):
    """Stands for a module until an attribute is read; every read then goes to the real module."""

    def __getattr__(self, attr: str) -> Any:
        return getattr(importlib.import_module(self.__name__), attr)


def lazy(name: str) -> Any:
    """Module `name`, imported when an attribute is first read instead of now.

    app.py wires every capability, but each Lambda function runs only some handlers: a module used
    only inside handlers is then loaded by the first handler that needs it, which keeps cold starts
    cheap (`make bench`). The import itself is Python's (thread-safe, once). Never use it for a
    module imported for its side effects (event subscriptions, processor registration): nothing
    would ever import it.
    """
    return sys.modules.get(name) or _LazyModule(name)
