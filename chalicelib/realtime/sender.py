"""Posting to WebSocket connections through the API Gateway management API.

Chalice's `websocket_api.send` only works inside a WebSocket event and only over https; this
sender works from any handler (REST, SQS, schedule) against the endpoint in configuration
(`INKWELL_WS_MANAGEMENT_ENDPOINT`: API Gateway's `https://{api}.execute-api.{region}.amazonaws.com/{stage}`,
or the local gateway emulator's URL).
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import aws, config


class Sender:
    def __init__(self, client: Any) -> None:
        self._client = client

    def post(self, connection_id: str, message: Any) -> bool:
        """Send one frame; False when the connection is gone (410)."""
        data = message if isinstance(message, (bytes, str)) else json.dumps(message, separators=(",", ":"))
        try:
            self._client.post_to_connection(ConnectionId=connection_id, Data=data)
        except self._client.exceptions.GoneException:
            return False
        return True


def endpoint_from_event(event_dict: dict[str, Any]) -> str | None:
    rc = event_dict.get("requestContext") or {}
    if not rc.get("domainName"):
        return None
    return f"https://{rc['domainName']}/{rc.get('stage', '')}".rstrip("/")


def sender(endpoint: str | None = None) -> Sender:
    url = config.get().ws_management_endpoint or endpoint
    if not url:
        raise config.ConfigError(f"{config.WS_MANAGEMENT_ENDPOINT} is not set")
    return Sender(aws.client("apigatewaymanagementapi", endpoint_url=url))
