"""What each REST operation is, declared next to its route: the API description's source.

Every capability's `routes.py` (and app.py for its one route) has a module-level
`DOCS: dict[str, Op]` keyed `"<METHOD> <path>"` as the route is registered. The document
(`apidoc.openapi`, served at `GET /api/openapi.json`) reads `app.routes` and, for each route, the
`DOCS` of the module its view function lives in; a route without an entry fails the suite
(tests/unit/test_apidoc.py). These are plain values: nothing is registered, and no model is loaded
until the document is built (models are named `"module:Class"`).

Derived rather than declared: parameters from the path template, 400 for a body or a query
parameter, 415 for a body (a non-JSON `Content-Type`), 401 unless `who` is `anyone`, 403 unless
it is `anyone` or `any user`, 404 for a path parameter, and the bearer security requirement.
"""

from __future__ import annotations

from typing import Any, NamedTuple

ANYONE = "anyone"
USERS = "any user"
EDITORS = "editor, admin"
ADMIN = "admin"


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
    `path` gives a path parameter a schema (default: any string). `gives` links a field of the answer to the path parameter of the same meaning in every
    operation that has one (`{"article_id": "id"}`), Schemathesis's stateful links. `cookie`
    adds the session cookie to the accepted credentials."""

    summary: str
    who: str
    answer: str | None = None
    status: int = 200
    body: str | None = None
    body_required: bool = True
    query: tuple[Param, ...] = ()
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
