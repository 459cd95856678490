"""The API description: every route of the app is declared once (`apidoc.route`: method, path,
who, docs), guarded as declared and in the OpenAPI document, described from its `Op` and its
models (chalicelib/apidoc), and the document is valid OpenAPI 3.1. The
WebSocket side (AsyncAPI) covers every client frame and every event type the emitters send. The
Python and browser clients only call operations the document has."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from chalice import Chalice
from openapi_spec_validator import OpenAPIV31SpecValidator

from chalicelib.apidoc import asyncapi, openapi
from chalicelib.auth import access
from chalicelib.realtime import frames, protocol
from chalicelib.routing import ADMIN, ANYONE, EDITORS, USERS, Declared, Op, owner, route

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def app() -> Chalice:
    # function-scoped: a module-scoped fixture would run before the autouse clean environment
    # (INKWELL_STAGE=test), and `app` binds its queue names under the stage of its first import
    import app as app_module

    return app_module.app


@pytest.fixture
def document(app: Chalice) -> dict[str, Any]:
    return openapi.build(app.routes)


def operations(document: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [(path, method.upper(), op) for path, methods in document["paths"].items() for method, op in methods.items()]


def test_every_route_of_the_app_is_declared_and_in_the_document(app, document):
    """A route registered without `apidoc.route` fails here: declare it with one."""
    assert openapi.undocumented(app.routes) == []
    routes = {(path, method) for path, entries in app.routes.items() for method in entries}
    assert {(path, method) for path, method, _ in operations(document)} == routes


def test_every_route_is_guarded_as_its_declaration_says(app):
    """Routes for anyone run without a guard; every other route runs auth's guard first."""
    views = [entry.view_function for entries in app.routes.values() for entry in entries.values()]
    assert all(isinstance(view, Declared) for view in views)
    assert {view.guard for view in views if view.op.who == ANYONE} == {None}
    assert {view.guard for view in views if view.op.who != ANYONE} == {access.guard}
    assert len([view for view in views if view.op.who != ANYONE]) >= 30


def test_an_undeclared_route_is_named_and_refused():
    other = Chalice("other")

    @other.route("/api/new-thing", methods=["POST"])
    def new_thing() -> dict:
        return {}

    assert openapi.undocumented(other.routes) == ["POST /api/new-thing"]
    with pytest.raises(LookupError, match="POST /api/new-thing"):
        openapi.build(other.routes)


def test_a_declaration_registers_the_route_checks_the_caller_first_and_hands_them_to_the_view():
    other, asked = Chalice("other"), []

    def guard(who: Any) -> dict[str, Any]:
        asked.append(who)
        return {"id": "u1", "role": "editor"}

    @route(other, "PUT /api/things/{thing_id}", Op("Put a thing", EDITORS), guard=guard)
    def put_thing(user: dict[str, Any], thing_id: str) -> dict[str, Any]:
        return {"by": user["id"], "thing": thing_id}

    entry = other.routes["/api/things/{thing_id}"]["PUT"]
    assert entry.view_function(thing_id="t1") == {"by": "u1", "thing": "t1"}
    assert asked == [EDITORS]
    assert entry.view_function.__wrapped__ is put_thing and entry.view_function.__module__ == __name__
    assert openapi.declared(entry) == Op("Put a thing", EDITORS)


def test_a_route_for_anyone_is_not_guarded_and_any_other_needs_a_guard():
    other = Chalice("other")

    @route(other, "GET /api/open", Op("Open", ANYONE), guard=lambda who: pytest.fail("guarded"))
    def open_route() -> str:
        return "open"

    assert other.routes["/api/open"]["GET"].view_function() == "open"
    with pytest.raises(TypeError, match="GET /api/closed"):
        route(other, "GET /api/closed", Op("Closed", USERS))


def test_routes_are_registered_and_roles_checked_only_through_declarations():
    """No `@routes.route(...)` or `require(...)` of its own in a module: a route's method, path
    and roles are written once, in its `route(...)`."""
    sources = [ROOT / "app.py", *sorted((ROOT / "chalicelib").rglob("*.py"))]
    found = [
        f"{path.relative_to(ROOT)}: {match}"
        for path in sources
        for match in re.findall(r"[\w.]+\.route\(|\brequire\(", path.read_text())
    ]
    assert sorted(found) == [
        "chalicelib/auth/access.py: require(",  # the one guard
        "chalicelib/auth/service.py: require(",  # its definition
        "chalicelib/routing.py: blueprint.route(",  # the one registration, in `route`
    ]


def test_who_reads_as_the_document_says_it():
    assert [str(w) for w in (ANYONE, USERS, EDITORS, ADMIN, owner("that user"))] == [
        "anyone",
        "any user",
        "editor, admin",
        "admin",
        "admin, or that user",
    ]


def test_the_document_is_valid_openapi_3_1(document):
    assert document["openapi"].startswith("3.1")
    errors = [str(e.message) for e in OpenAPIV31SpecValidator(document).iter_errors()]
    assert errors == []


def test_an_invalid_document_is_caught_by_the_validator(document):
    """The validator would see a broken document (so the test above can fail)."""
    broken = {**document, "paths": {"/api/x/{id}": {"get": {"responses": {"200": {"description": "x"}}}}}}
    assert list(OpenAPIV31SpecValidator(broken).iter_errors())


def test_each_operation_has_its_parameters_answers_errors_and_security(document):
    for path, method, op in operations(document):
        where = f"{method} {path}"
        in_path = {p["name"] for p in op.get("parameters", []) if p["in"] == "path"}
        assert in_path == set(re.findall(r"{(\w+)}", path)), where
        statuses = {int(s) for s in op["responses"]}
        assert any(200 <= s < 300 for s in statuses), where
        for status in (s for s in statuses if 400 <= s < 500):
            schema = op["responses"][str(status)]["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/Error"}, (where, status)
        if op["security"]:
            assert {401} <= statuses, where
        if in_path:
            assert 404 in statuses, where
        if "requestBody" in op:
            assert {400, 415} <= statuses, where
            assert "example" in op["requestBody"]["content"]["application/json"], where


def test_routes_for_anyone_need_no_credentials_and_the_others_a_bearer_token(document):
    security = {f"{m} {p}": op["security"] for p, m, op in operations(document)}
    assert security["GET /api/health"] == [] and security["POST /api/auth/login"] == []
    assert security["GET /api/openapi.json"] == [] and security["GET /docs"] == []
    assert security["GET /api/auth/me"] == [{"bearer": []}]
    assert security["GET /api/queues/stats"] == [{"bearer": []}]
    assert "bearer" in document["components"]["securitySchemes"]


def test_roles_and_errors_are_derived_from_the_declaration(document):
    op = document["paths"]["/api/queues/{queue}/clean"]["post"]
    assert {"400", "401", "403", "404", "415"} <= set(op["responses"]) and "Who: admin." in op["description"]
    login = document["paths"]["/api/auth/login"]["post"]["responses"]
    assert "429" in login and "Retry-After" in login["429"]["headers"] and "403" not in login
    assert "403" not in document["paths"]["/api/auth/me"]["get"]["responses"]  # any user may


def test_request_examples_are_valid_bodies_of_their_models(app):
    for path, entries in app.routes.items():
        for method, entry in entries.items():
            op = openapi.declared(entry)
            assert op is not None
            if op.body:
                document = openapi.build({path: {method: entry}})
                example = document["paths"][path][method.lower()]["requestBody"]["content"]["application/json"][
                    "example"
                ]
                openapi.model(op.body).model_validate(example)  # raises when the example is no valid body


def test_json_answers_have_a_schema_and_an_example(document):
    for path, method, op in operations(document):
        for status, answer in op["responses"].items():
            for media, spec in answer.get("content", {}).items():
                if media == "application/json" and int(status) < 400:
                    assert "schema" in spec and "example" in spec, (method, path, status)


def test_created_resources_link_to_the_operations_on_them(document):
    links = document["paths"]["/api/articles"]["post"]["responses"]["201"]["links"]
    targets = {link["operationId"] for link in links.values()}
    assert "get_api_articles_article_id" in targets and "post_api_articles_article_id_generate" in targets
    assert all(link["parameters"] == {"article_id": "$response.body#/id"} for link in links.values())
    job_links = document["paths"]["/api/articles/{article_id}/generate"]["post"]["responses"]["202"]["links"]
    assert "get_api_jobs_job_id" in {link["operationId"] for link in job_links.values()}


def test_a_cookie_credential_is_offered_where_a_route_declares_one():
    other = Chalice("other")

    @route(other, "POST /api/refresh", Op("Refresh", USERS, "Login", cookie=True), guard=lambda who: {})
    def refresh(user: dict[str, Any]) -> dict:
        return {}

    document = openapi.build(other.routes)
    assert document["paths"]["/api/refresh"]["post"]["security"] == [{"bearer": []}, {"cookie": []}]


# --- the WebSocket protocol ------------------------------------------------------------------------


def test_the_asyncapi_document_has_every_client_frame_reply_and_event():
    document = asyncapi.build("ws://127.0.0.1:8001")
    messages = document["components"]["messages"]
    names = {m["name"] for m in messages.values()}
    assert set(frames.ACTIONS) <= names
    assert set(protocol.REPLIES) <= names and set(protocol.EVENTS) <= names
    subscribe = document["components"]["schemas"]["Subscribe"]
    assert subscribe["properties"]["action"]["const"] == "subscribe" and "room" in subscribe["required"]


def test_every_event_type_the_emitters_send_is_in_the_catalogue():
    source = (ROOT / "chalicelib/realtime/emitters.py").read_text()
    sent = set(re.findall(r'\bemit(?:_many)?\(\s*"([a-z_.]+)"', source))
    outcomes = re.search(r"if outcome not in \(([^)]*)\)", source)
    assert outcomes is not None and 'f"job.{outcome}"' in source
    sent |= {f"job.{o}" for o in re.findall(r'"(\w+)"', outcomes.group(1))}
    assert len(sent) >= 7
    assert sent == set(protocol.EVENTS)


def test_every_reply_type_the_handlers_send_is_in_the_catalogue():
    source = (ROOT / "chalicelib/realtime/handlers.py").read_text()
    replies = set(re.findall(r'\{"type": "(\w+)"', source)) | {"error"}
    assert replies and replies <= set(protocol.REPLIES)


# --- the clients' REST calls ---------------------------------------------------------------------


def _calls_in_js(text: str) -> list[tuple[str, str]]:
    calls = [(m, p) for m, p in re.findall(r'\bapi\(\s*"(\w+)",\s*[`"]([^`"]+)[`"]', text)]
    for url, options in re.findall(r'\bfetch\(\s*[`"]([^`"]+)[`"]\s*(?:,\s*(\{[^}]*\}))?', text):
        method = re.search(r'method:\s*"(\w+)"', options or "")
        calls.append((method.group(1) if method else "GET", url))
    calls += [("GET", p) for p in re.findall(r'\bimport\(\s*"(/[^"]+)"\s*\)', text)]
    # JobsApi: `this.call("GET", `/api/...`)` through its one fetch of `${this.apiUrl}${path}`
    calls += [(m, "${this.apiUrl}" + p) for m, p in re.findall(r'\bthis\.call\(\s*"(\w+)",\s*`([^`]+)`', text)]
    return [(m, url) for m, url in calls if url != "${this.apiUrl}${path}"]


def _calls_in_python(text: str) -> list[tuple[str, str]]:
    """Calls as `self._post("/api/...", ...)` (the client's one POST helper), and any
    `urllib.request.Request(url, method=...)` built with a literal path."""
    posts = [("POST", "{self.api_url}" + path) for path in re.findall(r'self\._post\(\s*"([^"]+)"', text)]
    found = re.findall(r'Request\(\s*f?"([^"]+)"(.*?)\)\n', text, flags=re.S)
    built = [(re.search(r'method="(\w+)"', rest).group(1) if 'method="' in rest else "GET", url) for url, rest in found]
    called = [(m, "{self.api_url}" + p) for m, p in re.findall(r'self\._call\(\s*"(\w+)",\s*f?"([^"]+)"', text)]
    return posts + called + [(method, url) for method, url in built if url != "{self.api_url}{path}"]


def _operation_of(method: str, url: str, document: dict[str, Any]) -> str | None:
    """The document's operation a client call hits: `${x}` and `{x}` match any one segment."""
    path = re.sub(r"^(\$\{[^}]+\}|\{[^}]+\})", "", url).split("?")[0]
    parts = path.split("/")
    for template, methods in document["paths"].items():
        t = template.split("/")
        if (
            method.lower() in methods
            and len(t) == len(parts)
            and all(a == b or a.startswith("{") or b.startswith(("${", "{")) for a, b in zip(t, parts, strict=True))
        ):
            return f"{method} {template}"
    return None


def test_the_clients_call_only_operations_of_the_document(document):
    sources = {
        "clients/python": _calls_in_python((ROOT / "clients/python/inkwell_realtime/client.py").read_text()),
        "clients/python/jobs": _calls_in_python((ROOT / "clients/python/inkwell_realtime/jobs.py").read_text()),
        **{f"static/{p.name}": _calls_in_js(p.read_text()) for p in sorted((ROOT / "chalicelib/static").glob("*.js"))},
    }
    assert set(sources["clients/python"]) == {
        ("POST", "{self.api_url}/api/realtime/ticket"),
        ("POST", "{self.api_url}/api/auth/refresh"),
    }
    assert ("POST", "${this.apiUrl}/api/realtime/ticket") in sources["static/realtime.js"]
    assert ("POST", "${this.apiUrl}/api/queues/${encodeURIComponent(queue)}/bulk") in sources["static/realtime.js"]
    assert len(sources["clients/python/jobs"]) == 4  # page, logs, duplicate, bulk
    assert len(sources["static/dashboard.js"]) >= 20
    unknown = {
        (where, method, url)
        for where, calls in sources.items()
        for method, url in calls
        if _operation_of(method, url, document) is None
    }
    assert unknown == set()


def test_a_call_to_an_operation_the_document_lacks_is_caught(document):
    assert _operation_of("POST", "/api/queues/${queue}/pause", document) == "POST /api/queues/{queue}/pause"
    assert _operation_of("GET", "/api/queues/${queue}/pause", document) is None
    assert _operation_of("POST", "/api/no-such-thing", document) is None
    assert _calls_in_js('await api("PATCH", `/api/users/${id}`, body)') == [("PATCH", "/api/users/${id}")]
