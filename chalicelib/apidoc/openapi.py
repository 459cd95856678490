"""The OpenAPI 3.1 document of the REST API, built from the app's routes (`app.routes`), the
`Op` each was declared with (`chalicelib.routing.route`) and the pydantic models they name: request
bodies are the models the routes parse with, answers the models of `apidoc.shapes`. Nothing in
the document is written by hand; `build` is pure and its result is cached per container.
"""

from __future__ import annotations

import functools
import re
from typing import Any

from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from chalicelib.routing import ANYONE, USERS, Declared, Op

ERROR_REASONS = {
    400: "bad input: the message and `Errors` name each field at fault",
    401: "no, invalid, expired or revoked credentials",
    403: "signed in without the role this needs",
    404: "unknown id",
    409: "not allowed in the resource's current state",
    413: "the input is larger than allowed",
    415: "the `Content-Type` is not JSON",
    429: "too many attempts; retry after `Retry-After` seconds",
    503: "a dependency failed; trying again later may work",
}
REF = "#/components/schemas/"


def declared(entry: Any) -> Op | None:
    """The `Op` of one route (a Chalice RouteEntry), None unless it was declared with `route`."""
    view = entry.view_function
    return view.op if isinstance(view, Declared) else None


def undocumented(routes: dict[str, dict[str, Any]]) -> list[str]:
    return sorted(f"{m} {p}" for p, entries in routes.items() for m, e in entries.items() if declared(e) is None)


@functools.cache
def _models() -> dict[str, type[BaseModel]]:
    """Every model a declaration may name, by `"module:Class"` (a name alone for `shapes`): the
    modules that hold request models, imported here when the document is first built."""
    from chalicelib.apidoc import shapes
    from chalicelib.audit import api as audit
    from chalicelib.auth import service as auth
    from chalicelib.content import analytics, articles, generation, settings
    from chalicelib.dashboard import bulk
    from chalicelib.dashboard import service as dashboard
    from chalicelib.schedules import change as schedules

    found = {
        f"{'' if module is shapes else module.__name__ + ':'}{name}": value
        for module in (shapes, audit, auth, analytics, articles, generation, settings, dashboard, bulk, schedules)
        for name, value in vars(module).items()
        if isinstance(value, type) and issubclass(value, BaseModel) and value.__module__ == module.__name__
    }
    return found


def model(name: str) -> type[BaseModel]:
    try:
        return _models()[name]
    except KeyError:
        raise LookupError(f"no model {name!r}: add its module to apidoc.openapi._models") from None


def build(routes: dict[str, dict[str, Any]], server: str = "/") -> dict[str, Any]:
    """The document for `routes` (path -> method -> RouteEntry), every one declared."""
    missing = undocumented(routes)
    if missing:
        raise LookupError(f"routes not declared with apidoc.route: {missing}")
    ops = {(path, method): declared(entry) for path, entries in routes.items() for method, entry in entries.items()}
    names = {op.body for op in ops.values() if op and op.body} | {
        n for op in ops.values() if op for n in [op.answer, *op.also.values()] if n
    }
    refs, schemas = _schemas(sorted(names | {"Error"}))
    paths: dict[str, Any] = {}
    for (path, method), op in ops.items():
        assert op is not None
        paths.setdefault(path, {})[method.lower()] = _operation(path, method, op, refs, schemas, ops)
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Inkwell API",
            "version": "1",
            "description": "The REST API of Inkwell's background and real-time engine. The WebSocket "
            "protocol is described at `/docs` (an AsyncAPI document at `/api/asyncapi.json`).",
        },
        "servers": [{"url": server}],
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"},
                "cookie": {"type": "apiKey", "in": "cookie", "name": "__Host-inkwell_refresh"},
            },
        },
    }


def _schemas(names: list[str]) -> tuple[dict[str, str], dict[str, Any]]:
    """Each named model's $ref, and the components holding them and the models they use."""
    models = [model(n) for n in names]
    keys, top = models_json_schema([(m, "validation") for m in models], ref_template=REF + "{model}")
    refs = {n: keys[(m, "validation")]["$ref"] for n, m in zip(names, models, strict=True)}
    return refs, top.get("$defs", {})


def _operation(
    path: str, method: str, op: Op, refs: dict[str, str], schemas: dict[str, Any], ops: dict[Any, Any]
) -> dict[str, Any]:
    path_params = re.findall(r"{(\w+)}", path)
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": op.path.get(p, {"type": "string"})} for p in path_params
    ]
    params += [
        {"name": q.name, "in": "query", "required": q.required, "description": q.description, "schema": q.schema}
        for q in op.query
    ]
    params += [
        {"name": h.name, "in": "header", "required": h.required, "description": h.description, "schema": h.schema}
        for h in op.headers
    ]
    statuses = dict(op.errors)
    if op.body or op.query or op.headers:
        statuses.setdefault(400, ERROR_REASONS[400])
    if op.body:
        statuses.setdefault(415, ERROR_REASONS[415])
    if op.who != ANYONE:
        statuses.setdefault(401, ERROR_REASONS[401])
    if op.who not in (ANYONE, USERS):
        statuses.setdefault(403, ERROR_REASONS[403])
    if path_params:
        statuses.setdefault(404, ERROR_REASONS[404])
    responses: dict[str, Any] = {str(op.status): _answer(op, op.answer, refs, schemas, ops)}
    for status, name in op.also.items():
        responses[str(status)] = _answer(op, name, refs, schemas, {})
    for status, reason in sorted(statuses.items()):
        responses.setdefault(str(status), _error(status, reason or ERROR_REASONS.get(status, ""), refs))
    operation: dict[str, Any] = {
        "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_"),
        "summary": op.summary,
        "description": f"Who: {op.who}." + (f" {op.description}" if op.description else ""),
        "tags": [path.strip("/").split("/")[1] if path.startswith("/api/") else "pages"],
        "parameters": params,
        "responses": responses,
        "security": [] if op.who == ANYONE else [{"bearer": []}, *([{"cookie": []}] if op.cookie else [])],
    }
    if op.body:
        schema = {"$ref": refs[op.body]}
        operation["requestBody"] = {
            "required": op.body_required,
            "content": {"application/json": {"schema": schema, "example": sample(schema, schemas)}},
        }
    if not params:
        del operation["parameters"]
    return operation


def _answer(op: Op, name: str | None, refs: dict[str, str], schemas: dict[str, Any], ops: dict[Any, Any]) -> Any:
    answer: dict[str, Any] = {"description": op.summary}
    if op.media != "application/json":
        answer["content"] = {op.media: {"schema": {"type": "string"}}}
    elif name:
        schema = {"$ref": refs[name]}
        answer["content"] = {"application/json": {"schema": schema, "example": sample(schema, schemas)}}
    links = {
        f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_"): {
            "operationId": f"{method.lower()}{re.sub(r'[^A-Za-z0-9]+', '_', path)}".rstrip("_"),
            "parameters": {param: f"$response.body#/{field}"},
        }
        for param, field in op.gives.items()
        for path, method in ops
        if path.endswith("{" + param + "}") or "{" + param + "}/" in path
    }
    if links:
        answer["links"] = links
    return answer


def _error(status: int, reason: str, refs: dict[str, str]) -> dict[str, Any]:
    answer: dict[str, Any] = {
        "description": reason,
        "content": {"application/json": {"schema": {"$ref": refs["Error"]}}},
    }
    if status == 429:
        answer["headers"] = {"Retry-After": {"schema": {"type": "string"}, "description": "seconds"}}
    return answer


def sample(schema: dict[str, Any], defs: dict[str, Any], depth: int = 0) -> Any:
    """An example value of `schema` (its own example, else one made from its type)."""
    if "$ref" in schema:
        return sample(defs[schema["$ref"].removeprefix(REF)], defs, depth + 1)
    for key in ("examples", "enum"):
        if schema.get(key):
            return schema[key][0]
    if "const" in schema or "default" in schema:
        return schema.get("const", schema.get("default"))
    if "anyOf" in schema:
        return sample(next((s for s in schema["anyOf"] if s.get("type") != "null"), {}), defs, depth + 1)
    kind = schema.get("type")
    if kind == "object" and depth < 8:
        props = schema.get("properties", {})
        return {k: sample(v, defs, depth + 1) for k, v in props.items()}
    if kind == "array":
        return [sample(schema.get("items", {}), defs, depth + 1)] if depth < 8 else []
    if kind == "string":
        if schema.get("format") == "date-time":
            return "2026-11-28T02:00:00Z"
        return "x" * max(1, schema.get("minLength", 1)) if not schema.get("pattern") else _patterned(schema)
    if kind in ("integer", "number"):
        return schema.get("minimum", schema.get("exclusiveMinimum", 0) + (1 if kind == "integer" else 0.5))
    if kind == "boolean":
        return True
    return None


def _patterned(schema: dict[str, Any]) -> str:
    return {"^[^@\\s]+@[^@\\s]+\\.[^@\\s]+$": "editor@example.com"}.get(schema["pattern"], "x")
