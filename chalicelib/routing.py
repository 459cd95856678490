"""A route declared once: its method, path, who may call it and what it is, in one `route(...)`
that registers the Chalice route, checks the caller before the view runs and describes it.

    @route(routes, "POST /api/articles", Op("Create an article", EDITORS, "Article", 201, ...))
    def create_article(user: dict) -> object: ...

The view of a route for `ANYONE` gets its path parameters; any other gets the authenticated
caller first (`{"id","email","role",...}`), after the guard answered 401 without valid
credentials and 403 without one of `who.roles` (`chalicelib.auth.access.route` is this `route`
with auth's guard). Checks beyond the role ("the article's author or an admin") stay in the
service, as `Who.owner` says. The document (`apidoc.openapi`, served at `GET /api/openapi.json`)
reads `app.routes` and each route's `Op`; a route registered another way fails the suite
(tests/unit/test_apidoc.py). Nothing here loads a model or auth's modules: models are named
`"module:Class"` and loaded when the document is built.

Derived rather than declared: parameters from the path template, 400 for a body or a query
parameter, 415 for a body (a non-JSON `Content-Type`), 401 unless `who` is `ANYONE`, 403 unless
it is `ANYONE` or `USERS`, 404 for a path parameter, and the bearer security requirement.

An AWS dependency that still refuses after the SDK's retries (throttling, a 5xx, a timeout)
makes any route answer 503 with `Retry-After` (`unavailable`), never 500.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from typing import Any, NamedTuple

from chalicelib import errors

log = logging.getLogger("inkwell")


class Who(NamedTuple):
    """Who may call an operation. `roles`: what the guard admits before the view runs (None:
    anyone, no credentials asked; empty: any signed-in user). `owner`: the service then admits
    only admins and this owner of the resource, 403 for anyone else (`"that user"`)."""

    roles: tuple[str, ...] | None
    owner: str = ""

    def __str__(self) -> str:
        if self.owner:
            return f"admin, or {self.owner}"
        if self.roles is None:
            return "anyone"
        return ", ".join(self.roles) or "any user"


ANYONE = Who(None)
USERS = Who(())
EDITORS = Who(("editor", "admin"))
ADMIN = Who(("admin",))


def owner(whom: str) -> Who:
    """Any user past the guard; the service admits admins and `whom` (403 for anyone else)."""
    return Who((), whom)


class Param(NamedTuple):
    """A query parameter: its name, JSON schema and meaning."""

    name: str
    schema: dict[str, Any]
    description: str
    required: bool = False


class Op(NamedTuple):
    """One operation. `body` and `answer` name pydantic models (`"chalicelib.auth.service:NewUser"`,
    `"Article"` for `chalicelib.apidoc.shapes`); `answer=None` with a 2xx `status` is an empty
    answer, `media` other than JSON is a page or a script. `errors` adds statuses to the derived
    ones (`{409: "when..."}`), `also` documents other answers with their model (`{503: "..."}`).
    `headers` are request headers (`IDEMPOTENCY_KEY`). `path` gives a path parameter a schema
    (default: any string). `gives` links a field of the answer to the path parameter of the same
    meaning in every operation that has one (`{"article_id": "id"}`), Schemathesis's stateful
    links. `cookie` adds the session cookie to the accepted credentials."""

    summary: str
    who: Who
    answer: str | None = None
    status: int = 200
    body: str | None = None
    body_required: bool = True
    query: tuple[Param, ...] = ()
    headers: tuple[Param, ...] = ()
    errors: dict[int, str] = {}
    also: dict[int, str] = {}
    gives: dict[str, str] = {}
    path: dict[str, dict[str, Any]] = {}
    media: str = "application/json"
    cookie: bool = False
    description: str = ""


# An empty value (`?until=`) is the default, as if absent.
ISO_TIME = {"anyOf": [{"type": "string", "format": "date-time"}, {"type": "string", "maxLength": 0}]}
LIMIT = Param("limit", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "page size")
CURSOR = Param("cursor", {"type": "string"}, "the `next_cursor` of the previous page (opaque, signed)")
PAGE = (LIMIT, CURSOR)


def since(default: str) -> Param:
    return Param("since", ISO_TIME, f"start of the range, ISO 8601 (default {default})")


UNTIL = Param("until", ISO_TIME, "end of the range, ISO 8601 (default now)")
IDEMPOTENCY_KEY = Param(
    "Idempotency-Key",
    {"type": "string", "pattern": "^[A-Za-z0-9._:-]{1,128}$"},
    "optional: a repeat of the request with the same key (after a lost answer, a 503) does nothing twice",
)


Guard = Callable[[Who], dict[str, Any]]


class Declared:
    """A view as Chalice calls it: the caller checked by `guard` and handed to the view first;
    `op` is what the API document reads. `__wrapped__` and `__module__` are the view's, so tools
    that follow a route to its code (infra/reach.py) find the view."""

    def __init__(self, view: Callable[..., Any], op: Op, guard: Guard | None) -> None:
        functools.update_wrapper(self, view)
        self.view, self.op, self.guard = view, op, guard

    def __call__(self, **params: Any) -> Any:
        try:
            if self.guard is None:
                return self.view(**params)
            return self.view(self.guard(self.op.who), **params)
        except Exception as exc:
            refused = unavailable(exc)
            if refused is None:
                raise
            raise refused from exc


def unavailable(exc: Exception) -> errors.Unavailable | None:
    """The 503 for an AWS dependency that still refuses after the SDK's retries (throttling, a
    5xx, a timeout: `aws.unavailable`), logged; None for any other exception."""
    from chalicelib import aws

    if isinstance(exc, errors.Refused) or not aws.unavailable(exc):
        return None
    log.warning("a dependency is unavailable: %s", exc)
    return errors.Unavailable("a service this request needs is unavailable; try again shortly")


def route(
    blueprint: Any, key: str, op: Op, guard: Guard | None = None
) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the view for `key` (`"<METHOD> <path>"`) on `blueprint` (a Blueprint or the app),
    guarded as `op.who` says. A route for anyone needs no guard; any other route needs one."""
    method, _, path = key.partition(" ")
    if op.who.roles is not None and guard is None:
        raise TypeError(f"{key} is for {op.who}: declare it with a guard (chalicelib.auth.access.route)")

    def declare(view: Callable[..., Any]) -> Callable[..., Any]:
        blueprint.route(path, methods=[method])(Declared(view, op, guard if op.who.roles is not None else None))
        return view

    return declare
