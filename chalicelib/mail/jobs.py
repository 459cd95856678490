"""The emails queue: SES `SendEmail` from templates.

A `send` job's payload is `{"template", "data", "to"?}`. The sender is the setting `email.sender`
and the recipients, unless the payload names them, the setting `email.admins` (a list); with no
recipients the job completes without sending. Templates are `string.Template`s filled from
`data`, so a missing value renders empty instead of failing the job.

The `job_failed` template is the alert for a job that failed for good (`alerts.py` queues it).
"""

from __future__ import annotations

import logging
import string
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chalicelib import aws
from chalicelib.content import settings as settings_store
from chalicelib.jobs.errors import PermanentError
from chalicelib.jobs.processor import Job, JobContext, Processor

log = logging.getLogger("inkwell.jobs.emails")

SENDER_KEY = "email.sender"
ADMINS_KEY = "email.admins"
DEFAULT_SENDER = "inkwell@example.com"
MAX_RECIPIENTS = 50
# SES answers these for a request that will never be accepted as it is.
REFUSALS = {"MessageRejected", "MailFromDomainNotVerifiedException", "InvalidParameterValue", "ValidationError"}


@dataclass(frozen=True)
class Template:
    subject: str
    body: str

    def render(self, data: dict[str, Any]) -> tuple[str, str]:
        values = {k: _text(v) for k, v in data.items()}
        subject = string.Template(self.subject).safe_substitute(values)
        return " ".join(subject.split())[:200], string.Template(self.body).safe_substitute(values)


TEMPLATES: dict[str, Template] = {
    "job_failed": Template(
        subject="[Inkwell] Job $queue/$type failed",
        body=(
            "A job failed after $attempts attempt(s) and is waiting in the dead-letter queue.\n\n"
            "Job:     $job_id\nQueue:   $queue\nType:    $type\nError:   $error ($error_kind)\n"
            "Failed:  $finished_at\n\nRetry it from the dashboard, or with POST /api/jobs/$job_id/retry.\n"
        ),
    ),
    "weekly_report": Template(
        subject="[Inkwell] Weekly report $week",
        body=(
            "Analytics for $week ($from to $to)\n\n"
            "Views:   $views\nClicks:  $clicks\nShares:  $shares\nEvents:  $events\n"
            "Articles with activity: $article_count\n\nBusiest articles:\n$top\n"
        ),
    ),
}


def _text(value: Any) -> str:
    if isinstance(value, list):
        return "\n".join(_text(v) for v in value)
    return "" if value is None else str(value)


class SendPayload(BaseModel):
    model_config = ConfigDict(extra="ignore")

    template: str
    data: dict[str, Any] = Field(default_factory=dict)
    to: list[str] | None = Field(default=None, max_length=MAX_RECIPIENTS)

    @field_validator("template")
    @classmethod
    def _known(cls, value: str) -> str:
        if value not in TEMPLATES:
            raise ValueError(f"unknown template {value!r}")
        return value


def _addresses(value: Any) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, list):
        return []
    return [a.strip() for a in value if isinstance(a, str) and "@" in a][:MAX_RECIPIENTS]


def run_send(job: Job, ctx: JobContext, ses: Any, settings: settings_store.Settings) -> dict[str, Any]:
    try:
        payload = SendPayload.model_validate(job["payload"])
    except ValidationError as exc:
        raise PermanentError(f"invalid payload: {exc.errors()[0]['msg']}", kind="invalid_payload") from None
    recipients = _addresses(payload.to) if payload.to is not None else _addresses(settings.value(ADMINS_KEY, []))
    if not recipients:
        log.warning("email %s not sent: no recipients (set %s)", payload.template, ADMINS_KEY)
        return {"sent": False, "template": payload.template, "reason": f"no recipients; set {ADMINS_KEY}"}
    sender = settings.value(SENDER_KEY) or DEFAULT_SENDER
    subject, body = TEMPLATES[payload.template].render(payload.data)

    def send_once() -> dict[str, Any]:
        try:
            answer = ses.send_email(
                Source=sender,
                Destination={"ToAddresses": recipients},
                Message={
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": body, "Charset": "UTF-8"}},
                },
            )
        except Exception as exc:
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code")
            if code in REFUSALS:
                raise PermanentError(f"SES refused the email: {code}", kind="email_rejected") from None
            raise
        return {"message_id": answer["MessageId"]}

    sent = ctx.once("ses.send_email", send_once)  # a redelivered job does not send it again
    return {"sent": True, "template": payload.template, "recipients": len(recipients), **sent}


def send(job: Job, ctx: JobContext) -> dict[str, Any]:
    return run_send(job, ctx, aws.client("ses"), settings_store.settings())


# What this module runs, per (queue, job type): app.py's processor table.
PROCESSORS = (Processor("emails", "send", send),)
