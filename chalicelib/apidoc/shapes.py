"""The answers' shapes, as the API description states them (request bodies are the capabilities'
own models). Loaded only to build the document; Schemathesis checks every answer against them
(tests/e2e/test_schemathesis.py), so they cannot drift from what the routes return unnoticed.
Fields a client may rely on are declared; an answer may carry more."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field

Role = Literal["admin", "editor", "viewer"]
ArticleStatus = Literal["DRAFT", "PROCESSING", "PUBLISHED", "ARCHIVED"]
JobState = Literal["waiting", "delayed", "active", "completed", "failed", "cancelled"]
TIME: dict[str, Any] = {"format": "date-time"}


class FieldError(BaseModel):
    field: str
    message: str


class Error(BaseModel):
    """The contract's error shape; a 400 names each input at fault in `Errors`."""

    Code: str = Field(examples=["BadRequestError"])
    Message: str = Field(examples=["title: String should have at least 1 character"])
    Errors: list[FieldError] | None = None


class Health(BaseModel):
    status: Literal["ok"]


class User(BaseModel):
    id: str
    email: str
    role: Role


class Login(BaseModel):
    token: str
    expires_at: str = Field(json_schema_extra=TIME)
    user: User
    # absent for a browser (`X-Inkwell-Session: cookie`): it is in the HttpOnly cookie instead
    refresh_token: str | None = None
    refresh_expires_at: str = Field(json_schema_extra=TIME)


class ListedUser(User):
    disabled: bool
    created_at: str = Field(json_schema_extra=TIME)


class Article(BaseModel):
    id: str
    title: str
    topic: str
    keywords: list[str]
    status: ArticleStatus
    author_id: str
    content: str | None
    created_at: str = Field(json_schema_extra=TIME)
    updated_at: str = Field(json_schema_extra=TIME)


class Page(BaseModel):
    next_cursor: str | None


class ArticlePage(Page):
    items: list[Article]


class UserPage(Page):
    items: list[ListedUser]


class Job(BaseModel):
    id: str
    queue: str
    type: str
    state: JobState
    attempts: int
    max_attempts: int
    progress: int
    payload: dict[str, Any]
    result: Any
    error: Any
    created_at: str | None = Field(json_schema_extra=TIME)
    updated_at: str | None = Field(json_schema_extra=TIME)
    priority: Literal["high", "normal"]
    run_at: str | None = None


class JobPage(Page):
    items: list[Job]


class LogLine(BaseModel):
    ts: str | None = Field(json_schema_extra=TIME)
    run: int
    attempt: int
    level: Literal["debug", "info", "warning", "error"]
    message: str


class JobAttempt(BaseModel):
    run: int
    attempt: int
    started_at: str | None
    ended_at: str | None
    outcome: Literal["completed", "retrying", "failed", "throttled"] | None
    error: dict[str, Any] | None


class JobLogs(BaseModel):
    items: list[LogLine]
    attempts: list[JobAttempt] = []


class BulkResult(BaseModel):
    action: Literal["retry", "promote", "cancel", "remove"]
    matched: int
    done: int
    next_cursor: str | None = None


class JobStarted(BaseModel):
    """A job was queued for the request; the job's own fields come along."""

    job_id: str
    queue: str


class Accepted(BaseModel):
    accepted: bool


class AnalyticsReport(BaseModel):
    period: Literal["daily", "weekly"]
    generated_at: str
    total: dict[str, int]
    articles: list[dict[str, Any]]


class Setting(BaseModel):
    key: str
    value: Any
    updated_at: str | None
    updated_by: str | None


class SettingPage(Page):
    items: list[Setting]


class Schedule(BaseModel):
    name: str
    expression: str
    timezone: str
    enabled: bool
    description: str
    queue: str
    job_type: str
    next_run: str | None
    last_run: str | None
    last_status: str | None
    last_job_id: str | None


class SchedulePage(Page):
    items: list[Schedule]


class Ticket(BaseModel):
    ticket: str
    expires_at: str = Field(json_schema_extra=TIME)
    url: str | None = None


class AuditActor(BaseModel):
    user_id: str | None
    ip: str | None
    user_agent: str | None


class AuditEvent(BaseModel):
    id: str
    ts: str
    action: str
    category: str
    severity: str
    actor: AuditActor
    resource: dict[str, Any] | None
    details: dict[str, Any]
    request_id: str | None


class AuditPage(Page):
    items: list[AuditEvent]


class AuditSummary(BaseModel):
    user_id: str
    total: int
    by_action: dict[str, int]
    first: str | None
    last: str | None


class AuditReport(BaseModel):
    since: str
    until: str


class AuditVerification(BaseModel):
    valid: bool
    checked: int
    problems: list[dict[str, Any]]
    complete: bool = True  # false: the call ran out of its budget; the hours left start at next_since
    next_since: str | None = None


class AuditExportStarted(BaseModel):
    export_id: str
    job_id: str


class AuditExport(BaseModel):
    export_id: str
    state: str  # pending | ready | failed
    events: int
    url: str | None = None


class AuditPublicKey(BaseModel):
    key_id: str
    algorithm: str
    public_key_pem: str


class RateLimit(BaseModel):
    max: int
    duration_seconds: float


class QueueStats(BaseModel):
    waiting: int
    active: int
    delayed: int
    completed: int
    failed: int
    dead_letter: int
    paused: bool
    concurrency: int | None
    rate_limit: RateLimit | None


class Stats(BaseModel):
    queues: dict[str, QueueStats]
    generated_at: str


class MetricPoint(BaseModel):
    ts: str
    completed: int
    failed: int
    duration_p50_ms: float | None
    duration_p95_ms: float | None


class QueueMetrics(BaseModel):
    queue: str
    interval_seconds: int
    points: list[MetricPoint]


class QueueHealth(BaseModel):
    status: Literal["healthy", "unhealthy"]
    checks: list[dict[str, Any]]


class Requeued(BaseModel):
    requeued: int


class Paused(BaseModel):
    queue: str
    paused: bool


class Limits(BaseModel):
    queue: str
    concurrency: int | None
    rate_limit: RateLimit | None


class Removed(BaseModel):
    removed: int


class OpenApiDocument(BaseModel):
    openapi: str
    info: dict[str, Any]
    paths: dict[str, Any]
    components: dict[str, Any]


class AsyncApiDocument(BaseModel):
    asyncapi: str
    info: dict[str, Any]
    channels: dict[str, Any]
    operations: dict[str, Any]
