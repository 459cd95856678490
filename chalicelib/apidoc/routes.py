"""The API description's routes: the OpenAPI and AsyncAPI documents and the docs page (anyone).
Each is built once per container from the running app's routes (`Blueprint.current_app`)."""

from __future__ import annotations

import functools
from typing import Any

from chalice import Blueprint, Response

from chalicelib.routing import ANYONE, Op, route

routes = Blueprint(__name__)


@route(routes, "GET /api/openapi.json", Op("This API's OpenAPI 3.1 document", ANYONE, "OpenApiDocument"))
def openapi_document() -> dict:
    return _openapi(_server())


@route(routes, "GET /api/asyncapi.json", Op("The WebSocket API's AsyncAPI 3.0 document", ANYONE, "AsyncApiDocument"))
def asyncapi_document() -> dict:
    return _asyncapi()


@route(routes, "GET /docs", Op("The REST and WebSocket APIs, as a page", ANYONE, media="text/html"))
def docs_page() -> object:
    from chalicelib.apidoc import page

    return Response(
        body=_page(_server()),
        status_code=200,
        headers={
            "Content-Type": "text/html; charset=utf-8",
            "Content-Security-Policy": page.CSP,
            "X-Content-Type-Options": "nosniff",
            "Referrer-Policy": "no-referrer",
        },
    )


def _server() -> str:
    """Where the API is mounted as the caller sees it: API Gateway puts the stage before the route."""
    request = routes.current_request
    full = str((request.context or {}).get("path") or request.path)
    return full[: -len(request.path)] if full.endswith(request.path) and full != request.path else "/"


@functools.cache
def _openapi(server: str) -> dict[str, Any]:
    from chalicelib.apidoc import openapi

    return openapi.build(routes.current_app.routes, server)


@functools.cache
def _asyncapi() -> dict[str, Any]:
    from chalicelib import config
    from chalicelib.apidoc import asyncapi

    return asyncapi.build(config.get().ws_url)


@functools.cache
def _page(server: str) -> str:
    from chalicelib.apidoc import page

    return page.render(_openapi(server), _asyncapi())
