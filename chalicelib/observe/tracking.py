"""Error tracking: every exception that escapes a handler goes to Sentry once, when SENTRY_DSN
is set (sentry-sdk is imported only then, so without it a cold start pays nothing).

Two seams, both wired in app.py: the middleware's error hook (`report`) sees what escapes an SQS,
schedule or WebSocket handler; for REST routes Chalice itself catches the exception, answers 500
and logs it on the app's logger ("Caught exception for path ..."), so a filter on that logger
(`ChaliceErrors`) reports it. Refusals (4xx) are answers, not errors: never reported. Each event
carries the invocation's context (request id, kind, route, correlation keys) and nothing secret:
no request headers, bodies or local variables are sent, and `before_send` masks credentials in
what remains with the audit trail's redaction.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from chalicelib import config, errors, runtime
from chalicelib.redact import MASK, SECRET_KEY, scrub

log = logging.getLogger("inkwell.observe")

_state: dict[str, Any] = {"on": False}
_REPORTED = "_inkwell_reported"
FLUSH_SECONDS = 2.0  # a Lambda freezes after it answers: send before that


def configure(app_log: logging.Logger) -> bool:
    """Start the Sentry client when SENTRY_DSN is set, and watch `app_log` (Chalice's logger) for
    the exceptions Chalice turns into 500s. True when reporting is on."""
    dsn = config.sentry_dsn()
    if not dsn:
        return False
    import sentry_sdk

    sentry_sdk.init(
        dsn=dsn,
        environment=config.get().stage,
        default_integrations=False,  # no logging, excepthook or atexit hooks of its own: we report
        auto_enabling_integrations=False,
        include_local_variables=False,
        max_breadcrumbs=0,
        before_send=scrub_event,
    )
    if not any(isinstance(f, ChaliceErrors) for f in app_log.filters):
        app_log.addFilter(ChaliceErrors())
    _state["on"] = True
    return True


def shutdown() -> None:
    """Stop reporting (tests)."""
    if _state["on"]:
        import sentry_sdk

        sentry_sdk.get_client().close(timeout=FLUSH_SECONDS)
        sentry_sdk.get_global_scope().set_client(None)  # not init(): that would enable its integrations
    _state["on"] = False


def report(exc: BaseException) -> None:
    """Send `exc` with the running invocation's context, once (a middleware error hook). A
    refusal is a REST request's answer, not a failure; escaping any other handler, it is one."""
    if not _state["on"] or getattr(exc, _REPORTED, False):
        return
    inv = runtime.current()
    if isinstance(exc, errors.Refused) and inv.kind == "rest":
        return
    import sentry_sdk

    with contextlib.suppress(AttributeError):
        setattr(exc, _REPORTED, True)
    with sentry_sdk.new_scope() as scope:
        scope.set_tag("kind", inv.kind)
        scope.set_tag("request_id", inv.request_id)
        if inv.route:
            scope.set_tag("route", f"{inv.method} {inv.route}")
        for key, value in inv.correlation.items():
            scope.set_tag(key, str(value))
        if inv.user and inv.user.get("id"):
            scope.set_user({"id": inv.user["id"]})
        scope.set_context("invocation", {"request_id": inv.request_id, "kind": inv.kind, **inv.correlation})
        sentry_sdk.capture_exception(exc)
    sentry_sdk.flush(timeout=FLUSH_SECONDS)


class ChaliceErrors(logging.Filter):
    """On Chalice's app logger: reports the exception of "Caught exception for path ..." (a REST
    view's unhandled exception, answered 500 by Chalice). Passes every record on unchanged."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None and str(record.msg).startswith("Caught exception"):
            try:
                report(record.exc_info[1])
            except Exception:  # reporting must never change the answer
                log.warning("could not report an exception", exc_info=True)
        return True


def scrub_event(event: Any, _hint: Any = None) -> Any:
    """Sentry's before_send: credentials masked anywhere in the event (keys naming a secret, values
    that look like one), nothing else changed."""
    return _scrub(event)


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: (MASK if SECRET_KEY.search(str(k)) and v not in (None, "") else _scrub(v)) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    if isinstance(value, str):
        return "\n".join(scrub(part) for part in value.split("\n"))
    return value
