"""Auth's guard for declared routes: `route` is `chalicelib.routing.route` checking the caller
with `service.require` (401 without valid credentials, 403 without the role, audited as
`security.forbidden`). The service loads on the first guarded request, not when the app is
imported."""

from __future__ import annotations

import functools
from typing import Any

from chalicelib.routing import Who
from chalicelib.routing import route as declare


def guard(who: Who) -> dict[str, Any]:
    """The authenticated caller of the running request, who must hold one of `who.roles` (any
    role when empty)."""
    from chalicelib.auth import service

    return service.require(*(who.roles or ()))


route = functools.partial(declare, guard=guard)
