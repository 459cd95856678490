"""The AWS side of the dashboard: queue depths, the dead-letter move, and the switches that pause
a queue and set its maximum concurrency.

A queue is paused by disabling its Lambda event source mapping, found by the consuming
function's name and the queue's ARN, exactly as on AWS; the local stack's pollers obey the same
flag. Every call takes its client in `__init__`, so tests can hand in moto's or a stub.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

log = logging.getLogger("inkwell.dashboard")

DEPTH_ATTRIBUTES = (
    "ApproximateNumberOfMessages",
    "ApproximateNumberOfMessagesDelayed",
    "ApproximateNumberOfMessagesNotVisible",
)
PAUSED_STATES = ("Disabled", "Disabling")


class NoMapping(LookupError):
    """The queue has no event source mapping (its consumer is not deployed)."""


@dataclass(frozen=True)
class Depth:
    waiting: int
    delayed: int
    active: int
    arn: str


@dataclass(frozen=True)
class Mapping:
    uuid: str
    paused: bool
    changed_at: float | None  # epoch seconds of the mapping's last change
    concurrency: int | None = None  # its ScalingConfig's MaximumConcurrency (None: unbounded)


class QueueControl:
    def __init__(
        self,
        sqs: Any,
        lam: Any,
        url_of: Callable[[str], str],
        function_of: Callable[[str], str],
        *,
        can_move: bool = True,  # False: the endpoint has no StartMessageMoveTask, do not ask
    ) -> None:
        self._sqs = sqs
        self._lambda = lam
        self._url_of = url_of
        self._function_of = function_of
        self._can_move = can_move

    def depth(self, queue: str) -> Depth:
        attrs = self._sqs.get_queue_attributes(
            QueueUrl=self._url_of(queue), AttributeNames=[*DEPTH_ATTRIBUTES, "QueueArn"]
        )["Attributes"]
        return Depth(
            waiting=int(attrs.get("ApproximateNumberOfMessages", 0)),
            delayed=int(attrs.get("ApproximateNumberOfMessagesDelayed", 0)),
            active=int(attrs.get("ApproximateNumberOfMessagesNotVisible", 0)),
            arn=attrs["QueueArn"],
        )

    def dead_letter_depth(self, queue: str, visible_only: bool = False) -> int:
        """Messages in the queue's dead-letter queue, by default with those hidden while looked at."""
        names = ["ApproximateNumberOfMessages"] + ([] if visible_only else ["ApproximateNumberOfMessagesNotVisible"])
        attrs = self._sqs.get_queue_attributes(QueueUrl=self._url_of(f"{queue}-dlq"), AttributeNames=names)[
            "Attributes"
        ]
        return sum(int(v) for v in attrs.values())

    def arn(self, name: str) -> str:
        return self._sqs.get_queue_attributes(QueueUrl=self._url_of(name), AttributeNames=["QueueArn"])["Attributes"][
            "QueueArn"
        ]

    def mapping(self, queue: str, queue_arn: str) -> Mapping | None:
        found = self._lambda.list_event_source_mappings(
            EventSourceArn=queue_arn, FunctionName=self._function_of(queue)
        ).get("EventSourceMappings", [])
        if not found:
            return None
        first = found[0]
        changed = first.get("LastModified")
        return Mapping(
            uuid=first["UUID"],
            paused=first.get("State") in PAUSED_STATES,
            changed_at=changed.timestamp() if isinstance(changed, datetime) else None,
            concurrency=(first.get("ScalingConfig") or {}).get("MaximumConcurrency"),
        )

    def set_paused(self, queue: str, paused: bool) -> None:
        mapping = self.mapping(queue, self.arn(queue))
        if mapping is None:
            raise NoMapping(queue)
        self._lambda.update_event_source_mapping(UUID=mapping.uuid, Enabled=not paused)

    def set_concurrency(self, queue: str, most: int) -> None:
        """The most invocations of the queue's consumer at once (the mapping's ScalingConfig)."""
        mapping = self.mapping(queue, self.arn(queue))
        if mapping is None:
            raise NoMapping(queue)
        self._lambda.update_event_source_mapping(UUID=mapping.uuid, ScalingConfig={"MaximumConcurrency": most})

    def start_move(self, queue: str) -> bool:
        """Ask SQS to move the dead-letter messages back to `queue` (StartMessageMoveTask). False
        where it did not (an endpoint without it, a task already running, an error): the caller
        moves them itself, this time. Nothing is remembered; the next call asks again."""
        if not self._can_move:
            return False
        try:
            self._sqs.start_message_move_task(SourceArn=self.arn(f"{queue}-dlq"), DestinationArn=self.arn(queue))
        except (ClientError, NotImplementedError) as exc:
            code = (getattr(exc, "response", None) or {}).get("Error", {}).get("Code", "")
            log.info("StartMessageMoveTask refused for %s (%s %s); moving by hand", queue, exc.__class__.__name__, code)
            return False
        return True
