"""The API description as the app serves it: `GET /api/openapi.json`, `GET /api/asyncapi.json`
and the `/docs` page, to anyone, with nothing on the page loaded from another host."""

from __future__ import annotations

import json
import re

import pytest


@pytest.fixture
def api(shared_api):
    return shared_api  # every case here only reads


def test_the_openapi_document_is_served_to_anyone(api, app_routes):
    response = api.get("/api/openapi.json")
    assert response.status_code == 200
    document = json.loads(response.body)
    assert document["openapi"] == "3.1.0" and document["servers"] == [{"url": "/"}]
    assert {(p, m.upper()) for p, ms in document["paths"].items() for m in ms} == app_routes


def test_the_asyncapi_document_is_served_to_anyone(api):
    response = api.get("/api/asyncapi.json")
    assert response.status_code == 200
    document = json.loads(response.body)
    assert document["asyncapi"].startswith("3.") and "event_article_status" in document["components"]["messages"]


def test_the_docs_page_lists_every_rest_operation_and_websocket_message(api, app_routes):
    response = api.get("/docs")
    assert response.status_code == 200 and header(response, "content-type").startswith("text/html")
    assert "default-src 'none'" in header(response, "content-security-policy")
    html = response.body.decode()
    for path, method in app_routes:
        assert f'<span class="m {method}">{method}</span> <code>{path}</code>' in html
    for name in ("article.status", "job.progress", "system.alert", '{"action": "subscribe"}', '{"type": "resumed"}'):
        assert f"<code>{name.replace(chr(34), '&quot;')}</code>" in html


def test_the_docs_page_loads_nothing_from_another_host(api):
    html = api.get("/docs").body.decode()
    refs = re.findall(r"""(?:src|href|action)\s*=\s*["']?([^"'\s>]+)""", html, flags=re.I)
    assert refs and all(r.startswith("/") and not r.startswith("//") for r in refs), refs
    assert not re.search(r"<(script|link|img|iframe)\b", html, flags=re.I)
    assert not re.search(r"url\(|@import", html, flags=re.I)


def header(response, name: str) -> str:
    return {k.lower(): v for k, v in response.headers.items()}[name]


@pytest.fixture
def app_routes(api):
    import app

    return {(path, method) for path, entries in app.app.routes.items() for method in entries}


def test_behind_api_gateway_the_documents_server_is_the_stage_the_api_is_mounted_under(monkeypatch):
    import app
    from chalicelib.apidoc import routes as doc_routes

    class Request:  # what Chalice hands the view: the route's path, and API Gateway's full path
        path = "/api/openapi.json"
        context = {"path": "/dev/api/openapi.json"}

    monkeypatch.setattr(app.app, "current_request", Request())
    assert doc_routes._server() == "/dev"
    assert doc_routes._openapi("/dev")["servers"] == [{"url": "/dev"}]
    Request.context = {"path": "/api/openapi.json"}  # a custom domain, or the local stack
    assert doc_routes._server() == "/"
