"""Every environment variable Inkwell reads, named once.

`.chalice/config.json` sets them per stage on AWS; the local stack and the tests set them in the
process environment. Values are read when asked for (not at import), so tests can change them;
`get()` caches the parsed settings until `reset()`.
"""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass

STAGE = "INKWELL_STAGE"
AWS_ENDPOINT = "INKWELL_AWS_ENDPOINT"  # set only locally: the moto server's URL
REGION = "AWS_DEFAULT_REGION"
JWT_SECRET = "JWT_SECRET"
JWT_TTL_SECONDS = "INKWELL_JWT_TTL_SECONDS"  # an access token's lifetime (default 15 minutes)
REFRESH_TTL_SECONDS = "INKWELL_REFRESH_TTL_SECONDS"  # a refresh token's sliding lifetime (default 7 days)
REFRESH_MAX_SECONDS = "INKWELL_REFRESH_MAX_SECONDS"  # a session's absolute cap from login (default 30 days)
WEBHOOK_SECRET = "WEBHOOK_SECRET"
ARTICLE_WEBHOOK_URL = "ARTICLE_WEBHOOK_URL"
WEBHOOK_TIMEOUT = "INKWELL_WEBHOOK_TIMEOUT_SECONDS"  # one webhook call's timeout (default 30)
AUDIT_DIGEST_KEY = "AUDIT_DIGEST_KEY"  # signs each audit event (HMAC) and each flush manifest
AUDIT_SIGNING_KEY = "INKWELL_AUDIT_SIGNING_KEY"  # on AWS: the KMS key (alias) that signs the digests
AUDIT_EXPORT_BUCKET = "INKWELL_AUDIT_EXPORT_BUCKET"  # the template's export bucket (else named by stage)
WS_MANAGEMENT_ENDPOINT = "INKWELL_WS_MANAGEMENT_ENDPOINT"
FANOUT_THRESHOLD = "INKWELL_FANOUT_THRESHOLD"  # a room with more members is posted to in shards
FANOUT_GROUPS = "INKWELL_FANOUT_GROUPS"  # the shards' groups per room (parallel invocations)
WS_URL = "INKWELL_WS_URL"  # the public wss:// URL clients connect to (returned with tickets)
# Per-connection and per-user limits (chalicelib/limits.py, defaults there; docs/security.md)
WS_FRAME_RATE = "INKWELL_WS_FRAME_RATE"  # frames a second one WebSocket connection may send
WS_FRAME_BURST = "INKWELL_WS_FRAME_BURST"  # frames it may send at once
QUOTA_TICKETS = "INKWELL_QUOTA_TICKETS_PER_MINUTE"  # WebSocket tickets a user may ask for a minute
QUOTA_EVENTS_MINUTE = "INKWELL_QUOTA_EVENTS_PER_MINUTE"  # analytics events a user may record a minute
QUOTA_EVENTS_HOUR = "INKWELL_QUOTA_EVENTS_PER_HOUR"  # ... and an hour
QUOTA_DELAYED_JOBS = "INKWELL_QUOTA_DELAYED_JOBS"  # delayed jobs a user may have waiting at once
SCRYPT_N = "INKWELL_SCRYPT_N"
SECRETS_PARAMETER_PREFIX = "INKWELL_SECRETS_PREFIX"  # on AWS: SSM path holding the secrets
LOG_FORMAT = "INKWELL_LOG_FORMAT"  # json | text (default json on Lambda, text elsewhere)
LOG_LEVEL = "INKWELL_LOG_LEVEL"  # a logging level name (default INFO)
SENTRY_DSN = "SENTRY_DSN"  # optional: where unhandled exceptions are reported

# Read only by the local stack (`local/`, never deployed); named here with the others.
LOCAL_HTTP_PORT = "INKWELL_HTTP_PORT"
LOCAL_WS_PORT = "INKWELL_WS_PORT"
LOCAL_AWS_PORT = "INKWELL_AWS_PORT"
LOCAL_CONTROL_PORT = "INKWELL_CONTROL_PORT"  # WS management API, fake generator, schedule triggers
LOCAL_ADMIN_EMAIL = "INKWELL_ADMIN_EMAIL"
LOCAL_ADMIN_PASSWORD = "INKWELL_ADMIN_PASSWORD"
LOCAL_WS_IDLE_TIMEOUT = "INKWELL_WS_IDLE_TIMEOUT"  # seconds, API Gateway's 10 minutes by default
LOCAL_WS_MAX_AGE = "INKWELL_WS_MAX_AGE"  # seconds, API Gateway's 2 hours by default
LOCAL_GENERATOR_DELAY = "INKWELL_GENERATOR_DELAY"  # seconds the fake article generator takes
LOCAL_APP = "INKWELL_LOCAL_APP"  # `module:attribute` of the Chalice app to serve (tests add handlers)
LOCAL_READY_FILE = "INKWELL_READY_FILE"  # where the stack writes its endpoints as JSON once ready
LOCAL_EXIT_WITH_PARENT = "INKWELL_EXIT_WITH_PARENT"  # "1": the stack stops when the process that started it dies
LOCAL_SCHEDULER_START = "INKWELL_SCHEDULER_START"  # ISO time the EventBridge emulator's clock starts at
LOCAL_SCHEDULER_SPEED = "INKWELL_SCHEDULER_SPEED"  # how many times faster than real time that clock runs

CHALICE_CLI = (
    "INKWELL_CHALICE_CLI"  # "1": `python -m infra.chalice_cli` runs the chalice command (see unguarded_chalice)
)

LOCAL_STAGES = frozenset({"local", "test"})
APP = "inkwell"  # every AWS name of a stage starts `inkwell-<stage>` (physical_name)
DEV_SECRET = "inkwell-local-development-secret-not-for-production"
MIN_SCRYPT_N = 2**17  # OWASP's minimum scrypt cost: the default, and the least a deployed stage accepts


class ConfigError(RuntimeError):
    """The environment is missing something a stage needs to run."""


@dataclass(frozen=True)
class Settings:
    stage: str
    region: str
    aws_endpoint: str | None
    jwt_ttl_seconds: int
    article_webhook_url: str
    ws_management_endpoint: str | None
    scrypt_n: int
    refresh_ttl_seconds: int = 7 * 24 * 3600
    refresh_max_seconds: int = 30 * 24 * 3600
    webhook_timeout_seconds: float = 30.0
    ws_url: str | None = None
    fanout_threshold: int = 1000
    fanout_groups: int = 8

    @property
    def is_local(self) -> bool:
        return self.stage in LOCAL_STAGES

    def resource_name(self, logical: str) -> str:
        """The run-time name of a catalogue table or queue: `inkwell-<stage>-<name>`, unless its
        `name_variable` says otherwise (the CloudFormation template's stacks name their own)."""
        return os.environ.get(name_variable(logical)) or physical_name(self.stage, logical)


def physical_name(stage: str, name: str = "") -> str:
    """The one rule for a stage's AWS names: `inkwell-<stage>-<name>` (a table, a queue, a function,
    an alarm, a log group), or `inkwell-<stage>` without a name (the REST function, the dashboard)."""
    return f"{APP}-{stage}-{name}" if name else f"{APP}-{stage}"


def name_variable(logical: str) -> str:
    """The environment variable that overrides a catalogue resource's name (`INKWELL_NAME_<NAME>`)."""
    return "INKWELL_NAME_" + logical.upper().replace("-", "_").replace(".", "_")


@functools.lru_cache(maxsize=1)
def get() -> Settings:
    env = os.environ
    return Settings(
        stage=env.get(STAGE, "local"),
        region=env.get(REGION, "us-east-1"),
        aws_endpoint=env.get(AWS_ENDPOINT) or None,
        jwt_ttl_seconds=int(env.get(JWT_TTL_SECONDS, "900")),
        refresh_ttl_seconds=int(env.get(REFRESH_TTL_SECONDS, str(7 * 24 * 3600))),
        refresh_max_seconds=int(env.get(REFRESH_MAX_SECONDS, str(30 * 24 * 3600))),
        article_webhook_url=env.get(ARTICLE_WEBHOOK_URL, ""),
        ws_management_endpoint=env.get(WS_MANAGEMENT_ENDPOINT) or None,
        scrypt_n=int(env.get(SCRYPT_N, str(MIN_SCRYPT_N))),
        webhook_timeout_seconds=float(env.get(WEBHOOK_TIMEOUT, "30")),
        ws_url=env.get(WS_URL) or None,
        fanout_threshold=int(env.get(FANOUT_THRESHOLD, "1000")),
        fanout_groups=max(1, int(env.get(FANOUT_GROUPS, "8"))),
    )


def function_name(handler_name: str) -> str:
    """The Lambda function of app.py's handler `handler_name` as `chalice deploy` (and the local
    stack) names it: `inkwell-<stage>-<handler>`, e.g. `inkwell-prod-jobs_emails`; the REST
    handler's is `inkwell-<stage>`."""
    return physical_name(get().stage, "" if handler_name == "api_handler" else handler_name)


SECRETS = (JWT_SECRET, WEBHOOK_SECRET, AUDIT_DIGEST_KEY)
LAMBDA_FUNCTION = "AWS_LAMBDA_FUNCTION_NAME"  # set by the Lambda runtime, never by us


def on_lambda() -> bool:
    """True inside a Lambda container (not in `chalice package`/`deploy`, which import app.py too)."""
    return bool(os.environ.get(LAMBDA_FUNCTION))


def unguarded_chalice() -> str | None:
    """`deploy` or `package` when the plain `chalice` command is loading app.py to build the Lambda
    package, not `python -m infra.chalice_cli` (`make deploy`, `make package`), which builds for the
    Lambda runtime and refuses a deploy that would break the stage; None anywhere else (Lambda,
    tests, the local stack, `chalice local`)."""
    cli = sys.modules.get("chalice.cli")  # imported by the `chalice` command before it loads app.py
    if cli is None or on_lambda() or os.environ.get(CHALICE_CLI) == "1":
        return None
    import click

    context = click.get_current_context(silent=True)
    if context is None or context.find_root().command is not cli.cli:
        return None
    return context.command.name if context.command.name in ("deploy", "package") else None


LOG_FORMATS = ("json", "text")


def log_format() -> str:
    """`json` or `text`: INKWELL_LOG_FORMAT, else json on Lambda and text elsewhere."""
    value = os.environ.get(LOG_FORMAT, "").strip().lower()
    if value and value not in LOG_FORMATS:
        raise ConfigError(f"{LOG_FORMAT} must be one of {', '.join(LOG_FORMATS)}, not {value!r}")
    return value or ("json" if on_lambda() else "text")


def log_level() -> str:
    """INKWELL_LOG_LEVEL as a logging level name (DEBUG, INFO, WARNING, ERROR); default INFO."""
    value = os.environ.get(LOG_LEVEL, "").strip().upper() or "INFO"
    if value not in ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"):
        raise ConfigError(f"{LOG_LEVEL} must be DEBUG, INFO, WARNING, ERROR or CRITICAL, not {value!r}")
    return value


def sentry_dsn() -> str | None:
    return os.environ.get(SENTRY_DSN) or None


def secret_parameter(name: str, prefix: str | None = None) -> str:
    """The SSM parameter holding a secret: `<INKWELL_SECRETS_PREFIX>/<name>`, e.g. `/inkwell/prod/JWT_SECRET`."""
    prefix = prefix if prefix is not None else os.environ.get(SECRETS_PARAMETER_PREFIX, "")
    return f"{prefix.rstrip('/')}/{name}"


def reset() -> None:
    """Forget the cached settings, and with them the secrets read for them (tests change the environment)."""
    get.cache_clear()
