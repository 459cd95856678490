"""API Gateway's stage throttling of a stage: `throttling` in `.chalice/config.json`.

Each deployable stage carries `"throttling": {"rest": {...}, "websocket": {...}}`, each with API
Gateway's `ThrottlingRateLimit` (requests, or messages, a second, for the whole stage) and
`ThrottlingBurstLimit`, as strings like every Chalice setting. `infra.chalice_config.sync` fills
in `DEFAULT_THROTTLING` where a stage has none; the template (`infra.template`) and `make deploy`
(`infra.deploy.ensure_throttling`) apply them to the stage's two APIs.
"""

from __future__ import annotations

import json
from pathlib import Path

from infra.app_shape import ROOT

PATH = ROOT / ".chalice" / "config.json"
APIS = ("rest", "websocket")
RATE, BURST = "ThrottlingRateLimit", "ThrottlingBurstLimit"
# per API and stage (API Gateway's account default is 10,000 a second with a 5,000 burst)
DEFAULT_THROTTLING = {"rest": {RATE: "100", BURST: "200"}, "websocket": {RATE: "50", BURST: "100"}}


def throttling(stage: str, path: Path | None = None) -> dict[str, tuple[float, int]]:
    """`{"rest": (rate, burst), "websocket": (rate, burst)}` of a stage (defaults for what is
    missing); ValueError naming a bad value."""
    cfg = json.loads((path or PATH).read_text())
    given = cfg.get("stages", {}).get(stage, {}).get("throttling", {})
    found: dict[str, tuple[float, int]] = {}
    for api in APIS:
        settings = {**DEFAULT_THROTTLING[api], **given.get(api, {})}
        try:
            rate, burst = float(settings[RATE]), int(settings[BURST])
        except (TypeError, ValueError):
            rate, burst = -1.0, -1
        if not (0 < rate <= 10_000 and 0 < burst <= 5_000):
            raise ValueError(
                f"stages.{stage}.throttling.{api} of .chalice/config.json: {RATE} must be a number in (0, 10000] "
                f"and {BURST} an integer in (0, 5000] (API Gateway's account limits), as strings"
            )
        found[api] = (rate, burst)
    return found
