"""The SQS side of jobs: job messages, sending them, hiding failed ones, dead-lettering.

A message carries only what routes it to its record: `{"job_id", "run", "queue", "type"}`; the
payload lives in the record (which the claim reads back anyway). `run` tells a message of an
earlier run (before an admin's retry or a promote) from the current one.

Delays beyond SQS's 15 minutes wait on a one-time schedule (`later`), which sends the message
when due. A message that carries `run_at` (epoch seconds; sent in hops before one-time schedules,
or by a caller of `first_hop`) and arrives early is sent on again by the worker, delayed by what
remains (at most 900 s), and acknowledged, using no attempt.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

log = logging.getLogger("inkwell.jobs")

MAX_DELAY_SECONDS = 900  # SQS's DelaySeconds limit: one hop
MAX_JOB_DELAY_SECONDS = 365 * 86400  # what `jobs.enqueue` accepts, in hops
MAX_VISIBILITY = 12 * 3600


class JobMessage(BaseModel):
    model_config = ConfigDict(extra="ignore")

    job_id: str = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]{32}$")
    run: int = Field(default=1, ge=1)
    queue: str = ""
    type: str = ""
    run_at: float | None = None  # epoch seconds; only on a message that must hop

    def body(self) -> str:
        return json.dumps(self.model_dump(exclude_none=True), separators=(",", ":"))

    def early_by(self, now: float) -> float:
        """Seconds until `run_at` (0 when due, or when the message has none)."""
        return max(0.0, self.run_at - now) if self.run_at is not None else 0.0


def message_for(record: dict[str, Any], run_at: float | None = None) -> JobMessage:
    return JobMessage(
        job_id=record["id"], run=int(record.get("run", 1)), queue=record["queue"], type=record["type"], run_at=run_at
    )


def first_hop(delay_seconds: float, now: float) -> tuple[int, float | None]:
    """(DelaySeconds, run_at) of a job's first message: a delay SQS can hold needs no run_at."""
    if delay_seconds <= MAX_DELAY_SECONDS:
        return int(delay_seconds), None
    return MAX_DELAY_SECONDS, now + delay_seconds


class JobQueues:
    """SQS operations on the catalogue's queues; `url_of(logical name)` resolves a queue or its DLQ."""

    def __init__(self, sqs: Any, url_of: Callable[[str], str]) -> None:
        self._sqs = sqs
        self._url_of = url_of

    def url(self, queue: str) -> str:
        return self._url_of(queue)

    def send(self, queue: str, message: JobMessage | str, delay_seconds: int = 0, group: str | None = None) -> str:
        """`group`: the MessageGroupId on a fair queue (the job's user)."""
        body = message if isinstance(message, str) else message.body()
        kwargs: dict[str, Any] = {"QueueUrl": self._url_of(queue), "MessageBody": body}
        if delay_seconds:
            kwargs["DelaySeconds"] = int(delay_seconds)
        if group:
            kwargs["MessageGroupId"] = group
        return self._sqs.send_message(**kwargs)["MessageId"]

    def hide(self, queue: str, receipt_handle: str, seconds: int) -> None:
        """Keep a received message invisible for `seconds` (the backoff before its next delivery)."""
        self._sqs.change_message_visibility(
            QueueUrl=self._url_of(queue),
            ReceiptHandle=receipt_handle,
            VisibilityTimeout=max(0, min(MAX_VISIBILITY, int(seconds))),
        )

    def dead_letter(self, queue: str, body: str) -> None:
        """Put a copy in the queue's dead-letter queue (the caller then acknowledges the original)."""
        self._sqs.send_message(QueueUrl=self._url_of(f"{queue}-dlq"), MessageBody=body)

    def dead_letters(self, queue: str, limit: int, visibility: int = 60) -> Iterator[tuple[str, str]]:
        """Up to `limit` messages of the queue's dead-letter queue as (body, receipt handle);
        they stay hidden for `visibility` seconds unless deleted or released."""
        url = self._url_of(f"{queue}-dlq")
        seen = 0
        while seen < limit:
            batch = self._sqs.receive_message(
                QueueUrl=url,
                MaxNumberOfMessages=min(10, limit - seen),
                VisibilityTimeout=visibility,
                WaitTimeSeconds=0,
            ).get("Messages", [])
            if not batch:
                return
            for message in batch:
                seen += 1
                yield message["Body"], message["ReceiptHandle"]

    def delete_dead_letter(self, queue: str, receipt_handle: str) -> None:
        self._sqs.delete_message(QueueUrl=self._url_of(f"{queue}-dlq"), ReceiptHandle=receipt_handle)

    def release_dead_letter(self, queue: str, receipt_handle: str) -> None:
        self._sqs.change_message_visibility(
            QueueUrl=self._url_of(f"{queue}-dlq"), ReceiptHandle=receipt_handle, VisibilityTimeout=0
        )


def parse_body(body: str) -> JobMessage | None:
    try:
        return JobMessage.model_validate_json(body)
    except ValueError:
        return None
