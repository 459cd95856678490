"""The secrets (JWT_SECRET, WEBHOOK_SECRET, AUDIT_DIGEST_KEY): from SSM on AWS, from the environment locally.

Read through `chalicelib.aws` (the one boto3 session every call is seen through), so this module
sits above `config` and `aws`, neither of which imports it.
"""

from __future__ import annotations

import os
import threading

from chalicelib import config
from chalicelib.config import ConfigError

MIN_JWT_KEY_BYTES = 32  # RFC 7518 3.2: an HS256 key at least as long as the hash's output
_lock = threading.Lock()
_read: dict[str, str] = {}  # name -> value, for the settings in `_for` (config.reset() starts again)
_for: list[config.Settings] = []


def get(name: str) -> str:
    """A secret, cached for the container's life (until `config.reset()`).

    When INKWELL_SECRETS_PREFIX is set (every AWS stage), the secret is the SecureString parameter
    `<prefix>/<name>` in SSM Parameter Store, read once per container; an environment variable of
    the same name still wins, so an operator can override one without touching SSM. Without a
    prefix (locally, in tests) only the environment is read, and a local stage falls back to a
    development secret; any other stage refuses to run without one.
    """
    settings = config.get()
    with _lock:
        if not _for or _for[0] is not settings:
            _read.clear()
            _for[:] = [settings]
        if name in _read:
            return _read[name]
    value = _value(name, settings)
    with _lock:
        _read.setdefault(name, value)
    return value


def _value(name: str, settings: config.Settings) -> str:
    value = os.environ.get(name)
    prefix = os.environ.get(config.SECRETS_PARAMETER_PREFIX)
    if not value and prefix:
        from chalicelib import aws

        ssm = aws.client("ssm")
        parameter = config.secret_parameter(name, prefix)
        try:
            response = ssm.get_parameter(Name=parameter, WithDecryption=True)
        except ssm.exceptions.ParameterNotFound:
            raise ConfigError(f"{name} is not in SSM at {parameter}") from None
        value = response["Parameter"]["Value"]
    if not value:
        if settings.is_local:
            return config.DEV_SECRET + ":" + name
        raise ConfigError(f"{name} is not set for stage {settings.stage!r}")
    if name == config.JWT_SECRET and not settings.is_local and len(value.encode()) < MIN_JWT_KEY_BYTES:
        raise ConfigError(
            f"{name} is {len(value.encode())} bytes for stage {settings.stage!r}: "
            f"at least {MIN_JWT_KEY_BYTES} outside local stages (HS256 keys as long as the hash)"
        )
    return value


def check_startup() -> None:
    """At a Lambda cold start, refuse to run without an explicit deployed stage (`INKWELL_STAGE`
    unset or local would run on the public development secrets), or without the audit key (every
    function signs the audit events it records; reading it here warms the cache), or with a scrypt
    cost under OWASP's minimum (`INKWELL_SCRYPT_N` < 2^17). The JWT secret (at least 32 bytes) is
    checked here when it comes from the environment; from SSM, only the functions that use it may
    read it (each function's role names its own secrets), and they do on first use, refusing then.
    Outside Lambda (tests, `chalice package` and `chalice deploy`, which import app.py with
    the stage's environment but have no credentials or no reason to read secrets) nothing is read.
    """
    if not config.on_lambda():
        return
    stage = os.environ.get(config.STAGE, "")
    if not stage or stage in config.LOCAL_STAGES:
        raise ConfigError(
            f"{config.STAGE} is {stage or 'not set'} on Lambda: a function runs only as a deployed stage "
            f"(not {', '.join(sorted(config.LOCAL_STAGES))}, whose secrets are the public development ones)"
        )
    if config.get().scrypt_n < config.MIN_SCRYPT_N:
        raise ConfigError(
            f"{config.SCRYPT_N} is {config.get().scrypt_n}: a deployed stage hashes passwords at "
            f"N >= {config.MIN_SCRYPT_N} (OWASP's minimum for scrypt)"
        )
    get(config.AUDIT_DIGEST_KEY)
    if os.environ.get(config.JWT_SECRET) or not os.environ.get(config.SECRETS_PARAMETER_PREFIX):
        get(config.JWT_SECRET)
