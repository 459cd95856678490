"""`$disconnect`: forget the connection and record it. A module of its own so that the
disconnect function reaches only what it runs (`infra.reach`): no ticket or token checks, so its
role may not read the JWT secret."""

from __future__ import annotations

import logging
from typing import Any

from chalicelib import audit, runtime
from chalicelib.realtime.live import connections

log = logging.getLogger("inkwell.realtime")


def act_as(conn: dict[str, Any]) -> None:
    """The connection's user is the actor of this invocation (audit, logs)."""
    runtime.current().user = {"id": conn["user_id"], "email": conn["email"], "role": conn["role"]}


def disconnect(event: Any) -> None:
    try:
        removed = connections().close(event.connection_id)
    except Exception:  # best effort: the TTL and the next GoneException catch what is left
        log.warning("could not remove connection %s on $disconnect", event.connection_id, exc_info=True)
        removed = None
    if removed:
        act_as(removed)
    rc = event.to_dict().get("requestContext") or {}
    details = {"code": rc.get("disconnectStatusCode"), "reason": rc.get("disconnectReason") or None}
    audit.record(
        "realtime.disconnect",
        resource=("connection", event.connection_id),
        details={k: v for k, v in details.items() if v is not None},
    )
