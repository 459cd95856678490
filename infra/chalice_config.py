"""Keeps `.chalice/config.json` in step with the catalogue and the IAM declarations.

The keys it owns: `autogen_policy` (off: the policy comes from `infra.iam`), `xray` (on), each stage's
`INKWELL_STAGE` and, but for the local ones, `INKWELL_SECRETS_PREFIX` (so `@app.on_sqs_message` resolves the stage's
physical queue names when Chalice imports app.py, and secrets come from that stage's SSM path),
and the timeout of every SQS consumer (the catalogue's `Queue.function_timeout`, which the
queue's visibility timeout is derived from). `make package` and `make deploy` run `sync`; the
tests check the committed file is already in step.

Each deployable stage's `throttling` (API Gateway's stage throttling, `infra.throttling`) gets its
defaults where it has none.

`make deploy` also writes a created stage's WebSocket endpoints (`set_websocket_endpoints`: the
API's id is known only once Chalice has created it) into that stage's `environment_variables`,
so that a plain `chalice deploy` gives every function them too; `make teardown` removes them.
"""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from chalicelib import config
from infra import iam
from infra.app_shape import ROOT, AppShape
from infra.template import consumed_queue
from infra.throttling import APIS, DEFAULT_THROTTLING, throttling

PATH = ROOT / ".chalice" / "config.json"


def synced(current: dict[str, Any], shape: AppShape | None = None) -> dict[str, Any]:
    cfg = copy.deepcopy(current)
    cfg["autogen_policy"] = False
    cfg["xray"] = True  # active tracing on every function (and the REST stage on `chalice deploy`)
    for stage, stage_cfg in cfg.get("stages", {}).items():
        env = stage_cfg.setdefault("environment_variables", {})
        env[config.STAGE] = stage
        if stage not in config.LOCAL_STAGES:  # local stages read secrets from the environment
            env[config.SECRETS_PARAMETER_PREFIX] = iam.secrets_prefix(stage)
            env[config.AUDIT_SIGNING_KEY] = iam.audit_key_alias(stage)
            limits = stage_cfg.setdefault("throttling", {})
            for api in APIS:
                limits[api] = {**DEFAULT_THROTTLING[api], **limits.get(api, {})}
    for source in shape.sqs if shape is not None else ():
        queue = consumed_queue(source.queue, shape.stage)  # type: ignore[union-attr]
        fn = shape.functions[source.function]  # type: ignore[union-attr]
        if queue is not None:
            functions = cfg.setdefault("lambda_functions", {})
            functions.setdefault(fn.name, {})["lambda_timeout"] = queue.function_timeout
    return cfg


def local_stage_error(stage: str) -> str | None:
    """Why a stage cannot be deployed or packaged: a local one runs on development secrets."""
    if stage in config.LOCAL_STAGES:
        return (
            f"stage {stage!r} is local (development secrets, no SSM; chalicelib/config.py LOCAL_STAGES): "
            "deploy dev, prod or a stage of your own"
        )
    return None


def webhook_url(stage: str, environ: Mapping[str, str] = os.environ, path: Path | None = None) -> str:
    """The stage's article webhook: `ARTICLE_WEBHOOK_URL` of the process (`make deploy` writes it
    into the stage's config), else the stage's `environment_variables` in `.chalice/config.json`."""
    if environ.get(config.ARTICLE_WEBHOOK_URL):
        return environ[config.ARTICLE_WEBHOOK_URL]
    cfg = json.loads((path or PATH).read_text())
    stage_env = cfg.get("stages", {}).get(stage, {}).get("environment_variables", {})
    return str(
        stage_env.get(config.ARTICLE_WEBHOOK_URL)
        or cfg.get("environment_variables", {}).get(config.ARTICLE_WEBHOOK_URL)
        or ""
    )


def stage_error(stage: str, environ: Mapping[str, str] = os.environ, path: Path | None = None) -> str | None:
    """Why a stage cannot be deployed or packaged: a local stage, or no article webhook (without
    one, every article job would fail on AWS: only the local stack has a built-in generator)."""
    local = local_stage_error(stage)
    if local:
        return local
    try:
        throttling(stage, path)
    except ValueError as exc:
        return str(exc)
    url = webhook_url(stage, environ, path)
    parsed = urlparse(url)
    if parsed.scheme not in ("https", "http") or not parsed.netloc:
        found = f" ({url!r} is not an http(s) URL)" if url else ""
        return (
            f"stage {stage!r} has no ARTICLE_WEBHOOK_URL{found}: set the article generation webhook in "
            f".chalice/config.json under stages.{stage}.environment_variables, or pass it "
            f"(ARTICLE_WEBHOOK_URL=https://... make deploy STAGE={stage})"
        )
    return None


def set_variable(stage: str, name: str, value: str, path: Path | None = None) -> bool:
    """Set one variable in a stage's `environment_variables`; True when the file changed."""
    path = path or PATH
    current = json.loads(path.read_text())
    wanted = copy.deepcopy(current)
    wanted.setdefault("stages", {}).setdefault(stage, {}).setdefault("environment_variables", {})[name] = value
    if wanted == current:
        return False
    path.write_text(json.dumps(wanted, indent=2) + "\n")
    return True


WEBSOCKET_VARIABLES = (config.WS_MANAGEMENT_ENDPOINT, config.WS_URL)


def set_websocket_endpoints(stage: str, endpoints: dict[str, str], path: Path | None = None) -> bool:
    """Set (or, given `{}`, remove) a stage's WebSocket endpoint variables; True when the file changed."""
    path = path or PATH
    current = json.loads(path.read_text())
    if not endpoints and stage not in current.get("stages", {}):
        return False
    wanted = copy.deepcopy(current)
    env = wanted.setdefault("stages", {}).setdefault(stage, {}).setdefault("environment_variables", {})
    for key in WEBSOCKET_VARIABLES:
        if key in endpoints:
            env[key] = endpoints[key]
        else:
            env.pop(key, None)
    if wanted == current:
        return False
    path.write_text(json.dumps(wanted, indent=2) + "\n")
    return True


def sync(shape: AppShape | None = None, path: Path = PATH) -> bool:
    """Rewrite the file if it is out of step; True when it changed."""
    current = json.loads(path.read_text())
    wanted = synced(current, shape)
    if wanted == current:
        return False
    path.write_text(json.dumps(wanted, indent=2) + "\n")
    return True
