"""The stage's limits: each WebSocket connection's frame limit and the per-user quotas
(`chalicelib.quotas`), from the environment (`config`'s `INKWELL_WS_FRAME_*` and `INKWELL_QUOTA_*`,
set per stage in `.chalice/config.json`), else the defaults below. Pure: no AWS.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from chalicelib import config


@dataclass(frozen=True)
class Limits:
    ws_frame_rate: float = 10.0
    ws_frame_burst: int = 100  # a client (re)joining its 50 rooms sends a subscribe and a resume for each
    ws_refused_before_close: int = 20  # frames refused in a row before the connection is closed
    tickets_per_minute: int = 10
    events_per_minute: int = 120
    events_per_hour: int = 2000
    delayed_jobs: int = 50


_VARIABLES = {
    "ws_frame_rate": config.WS_FRAME_RATE,
    "ws_frame_burst": config.WS_FRAME_BURST,
    "tickets_per_minute": config.QUOTA_TICKETS,
    "events_per_minute": config.QUOTA_EVENTS_MINUTE,
    "events_per_hour": config.QUOTA_EVENTS_HOUR,
    "delayed_jobs": config.QUOTA_DELAYED_JOBS,
}


def limits() -> Limits:
    """The stage's limits: each variable of `_VARIABLES` that is set, else the default."""
    given: dict[str, Any] = {}
    for name, variable in _VARIABLES.items():
        value = os.environ.get(variable, "").strip()
        if not value:
            continue
        try:
            number = float(value) if name == "ws_frame_rate" else int(value)
        except ValueError:
            number = 0
        if number <= 0:
            raise config.ConfigError(f"{variable} must be a positive number, not {value!r}")
        given[name] = number
    return Limits(**given)
