"""A moto server for the real `chalice deploy` (run as a subprocess), with the few shims moto 5.2
needs to stand in for AWS on that path. Each names the gap; remove one when moto closes it.
"""

from __future__ import annotations

import contextlib
import socket
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

# `chalice deploy` passes every mapping update through here: the test checks what Chalice sends.
MAPPING_UPDATES: list[dict[str, Any]] = []
# Not a gap, a fault the tests inject: this many WebSocket API deployments fail. That is
# the last thing Chalice's deployer does, so the run fails with everything else already made
# (a 400, which botocore does not retry).
FAILING_WEBSOCKET_DEPLOYMENTS = [0]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def apply_shims(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.apigateway.models import APIGatewayBackend
    from moto.apigatewayv2 import urls as apigatewayv2_urls
    from moto.apigatewayv2.responses import ApiGatewayV2Response
    from moto.awslambda.models import LambdaBackend
    from moto.core.exceptions import JsonRESTError

    # Gap 1: Chalice imports its REST API as Swagger 2.0 without `info.description`; moto's
    # import_rest_api reads info["description"] (a KeyError, HTTP 500) and its put_rest_api refuses
    # any Swagger 2.0 document. The paths and integrations are read the same way in both formats.
    put_rest_api = APIGatewayBackend.put_rest_api

    def put_rest_api_swagger2(self: Any, function_id: str, api_doc: dict, fail_on_warnings: bool, mode: str = "merge"):
        if "swagger" in api_doc:
            api_doc = {**{k: v for k, v in api_doc.items() if k != "swagger"}, "openapi": "3.0.1"}
        return put_rest_api(self, function_id, api_doc, False, mode)

    def import_rest_api(self: Any, api_doc: dict, fail_on_warnings: bool) -> Any:
        info = api_doc.get("info", {})
        api = self.create_rest_api(name=info.get("title", ""), description=info.get("description", ""))
        self.put_rest_api(api.id, api_doc, fail_on_warnings=False)
        return api

    monkeypatch.setattr(APIGatewayBackend, "put_rest_api", put_rest_api_swagger2)
    monkeypatch.setattr(APIGatewayBackend, "import_rest_api", import_rest_api)

    # Gap 2: apigatewayv2 has no CreateDeployment (no route, no method); Chalice deploys the
    # WebSocket API's stage with it.
    monkeypatch.setitem(
        apigatewayv2_urls.url_paths, "{0}/v2/apis/(?P<api_id>[^/]+)/deployments$", ApiGatewayV2Response.dispatch
    )

    def create_deployment(self: Any) -> Any:
        import json

        if FAILING_WEBSOCKET_DEPLOYMENTS[0] > 0:
            FAILING_WEBSOCKET_DEPLOYMENTS[0] -= 1
            headers = {"x-amzn-errortype": "BadRequestException"}
            return 400, headers, json.dumps({"message": "injected fault: the deployment failed"})
        return json.dumps({"deploymentId": uuid.uuid4().hex[:6], "deploymentStatus": "DEPLOYED"})

    monkeypatch.setattr(ApiGatewayV2Response, "create_deployment", create_deployment, raising=False)

    # Gap 5: apigatewayv2 has no UpdateStage; `make deploy` sets the WebSocket stage's access logs and
    # its default route's throttling.
    def update_stage(self: Any) -> Any:
        import json
        from urllib.parse import unquote

        parts = self.path.split("/")
        stage = self.apigatewayv2_backend.get_stage(parts[-3], unquote(parts[-1]))
        body = json.loads(self.body or "{}")
        if "accessLogSettings" in body:
            stage.access_log_settings = body["accessLogSettings"]
        if "defaultRouteSettings" in body:  # `make deploy` throttles the stage's default route too
            stage.default_route_settings = body["defaultRouteSettings"]
        return 200, {}, json.dumps(stage.to_json())

    monkeypatch.setattr(ApiGatewayV2Response, "update_stage", update_stage, raising=False)

    # Gap 3: ListEventSourceMappings compares FunctionName literally with what the mapping was
    # created with (Chalice passes the ARN; the deploy script lists by name). AWS accepts either.
    def list_event_source_mappings(self: Any, event_source_arn: str, function_name: str) -> list[Any]:
        found = list(self._event_source_mappings.values())
        if event_source_arn:
            found = [m for m in found if m.event_source_arn == event_source_arn]
        if function_name:
            arn = self._lambdas.get_function_by_name_or_arn_with_qualifier(function_name).function_arn
            found = [m for m in found if m.function_arn == arn]
        return found

    monkeypatch.setattr(LambdaBackend, "list_event_source_mappings", list_event_source_mappings)

    # Gap 4: moto accepts a second mapping of one queue to one function; AWS refuses it with a
    # ResourceConflictException (what a `chalice deploy` without the stage's record runs into).
    create_mapping = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        function = self._lambdas.get_function_by_name_or_arn_with_qualifier(spec.get("FunctionName", ""))
        for mapping in self._event_source_mappings.values():
            if mapping.event_source_arn == spec.get("EventSourceArn") and mapping.function_arn == function.function_arn:
                raise JsonRESTError(
                    "ResourceConflictException",
                    f'An event source mapping with SQS arn (" {mapping.event_source_arn} ") and function '
                    f'(" {function.function_name} ") already exists. Please update or delete the existing '
                    f"mapping with UUID {mapping.uuid}",
                )
        return create_mapping(self, spec)

    monkeypatch.setattr(LambdaBackend, "create_event_source_mapping", create_event_source_mapping)

    update_mapping = LambdaBackend.update_event_source_mapping

    def update_event_source_mapping(self: Any, uuid: str, spec: dict[str, Any]) -> Any:
        MAPPING_UPDATES.append(dict(spec))
        return update_mapping(self, uuid, spec)

    monkeypatch.setattr(LambdaBackend, "update_event_source_mapping", update_event_source_mapping)


@contextlib.contextmanager
def moto_server(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """A shimmed moto server in this process's threads; yields its URL."""
    from moto.server import ThreadedMotoServer

    apply_shims(monkeypatch)
    MAPPING_UPDATES.clear()
    FAILING_WEBSOCKET_DEPLOYMENTS[0] = 0
    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
