"""In-memory stand-ins for the job gateways (no AWS), for unit tests of the worker and processors."""

from __future__ import annotations

import copy
from typing import Any

from chalicelib import catalog
from chalicelib.jobs import errors, records
from chalicelib.jobs.queues import JobMessage, message_for


class FakeClock:
    def __init__(self, t: float = 1_800_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


class FakeStore:
    """JobStore's transitions over a dict, with the same conditions."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.items: dict[str, dict[str, Any]] = {}
        self.trimmed: list[tuple[str, str, int]] = []

    def add(self, queue: str, job_type: str, payload: dict[str, Any] | None = None, **fields: Any) -> dict[str, Any]:
        job_id = f"{len(self.items) + 1:032x}"
        record = {
            "id": job_id,
            "queue": queue,
            "type": job_type,
            "payload": payload or {},
            "state": "waiting",
            "run": 1,
            "attempts": 0,
            "max_attempts": catalog.queue(queue).attempts,
            "progress": 0,
            "result": None,
            "error": None,
            "user_id": None,
            "created_at": "t",
            "updated_at": "t",
            **fields,
        }
        self.items[job_id] = record
        return record

    def claim(self, queue: str, job_id: str, run: int, owner: str, lease_until: float) -> records.Claim:
        old = self.items.get(job_id)
        outcome = records.claim_outcome(copy.deepcopy(old), run, self.clock())
        if outcome != records.CLAIMED or old is None:
            return records.Claim(outcome, copy.deepcopy(old))
        old.update(state="active", attempts=old["attempts"] + 1, lease_owner=owner, lease_until=lease_until)
        return records.Claim(records.CLAIMED, copy.deepcopy(old))

    def _owned(self, job: dict[str, Any], owner: str, **changes: Any) -> dict[str, Any]:
        item = self.items.get(job["id"])
        if not item or item["state"] != "active" or item.get("lease_owner") != owner:
            raise errors.LeaseLost(job["id"])
        item.update(changes)
        if changes.get("state") in ("completed", "failed", "delayed"):
            item.pop("lease_owner", None)
            item.pop("lease_until", None)
        return copy.deepcopy(item)

    def progress(self, job: dict[str, Any], owner: str, percent: int) -> dict[str, Any]:
        return self._owned(job, owner, progress=percent)

    def complete(self, job: dict[str, Any], owner: str, result: dict[str, Any] | None) -> dict[str, Any]:
        return self._owned(job, owner, state="completed", result=result or {}, progress=100, error=None)

    def retry_later(self, job: dict[str, Any], owner: str, error: dict[str, str]) -> dict[str, Any]:
        return self._owned(job, owner, state="delayed", error=error)

    def failing(self, job: dict[str, Any], owner: str, error: dict[str, str]) -> dict[str, Any]:
        return self._owned(job, owner, failing={"error": error, "attempts": job["attempts"]})

    def fail(
        self, job: dict[str, Any], owner: str, error: dict[str, str], attempts: int | None = None
    ) -> dict[str, Any]:
        changes: dict[str, Any] = {"state": "failed", "error": error}
        if attempts is not None:
            changes["attempts"] = attempts
        failed = self._owned(job, owner, **changes)
        self.items[job["id"]].pop("failing", None)
        failed.pop("failing", None)
        return failed

    def trim(self, queue: str, state: str, keep: int) -> int:
        self.trimmed.append((queue, state, keep))
        return 0


class FakeQueues:
    """JobQueues recording what was asked of SQS."""

    def __init__(self) -> None:
        self.sent: list[tuple[str, str, int]] = []
        self.hidden: list[tuple[str, str, int]] = []
        self.dead: list[tuple[str, str]] = []
        self.fail_dead_letter = False

    def send(self, queue: str, message: JobMessage | str, delay_seconds: int = 0) -> str:
        body = message if isinstance(message, str) else message.body()
        self.sent.append((queue, body, delay_seconds))
        return "m"

    def hide(self, queue: str, receipt_handle: str, seconds: int) -> None:
        self.hidden.append((queue, receipt_handle, seconds))

    def dead_letter(self, queue: str, body: str) -> None:
        if self.fail_dead_letter:
            raise ConnectionError("SQS down")
        self.dead.append((queue, body))


def sqs_record(
    job: dict[str, Any] | None, receive_count: int = 1, body: str | None = None, n: int = 1
) -> dict[str, Any]:
    return {
        "messageId": f"msg-{n}",
        "receiptHandle": f"rh-{n}",
        "body": body if body is not None else message_for(job).body(),  # type: ignore[arg-type]
        "attributes": {"ApproximateReceiveCount": str(receive_count)},
    }


class FakeContext:
    def __init__(self, clock: FakeClock, seconds: float) -> None:
        self.clock = clock
        self.deadline = clock() + seconds
        self.aws_request_id = "req-1"

    def get_remaining_time_in_millis(self) -> int:
        return int((self.deadline - self.clock()) * 1000)
