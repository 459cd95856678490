"""One item per schedule in the `schedules` table: its last run and outcome, its run lease, and
its run-time settings (`expression`, `timezone`, `enabled`, when an admin changed them).

`last_*` says which run was enqueued last and how it went; it only moves forward (a late event
for an old slot, or a duplicate of the current one, never overwrites it) and an outcome is only
written for the job recorded as the last run. `lease_job` / `lease_until` keep two runs of one
schedule from overlapping: a worker takes the lease before running a scheduled job and gives it
back afterwards; a worker that dies leaves a lease that simply expires.
"""

from __future__ import annotations

from typing import Any

from botocore.exceptions import ClientError

from chalicelib.util import from_dynamo, refused_item

__all__ = ["ScheduleRuns"]


def _conditional_failed(exc: ClientError) -> bool:
    return exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException"


class ScheduleRuns:
    def __init__(self, table: Any) -> None:
        self._table = table

    def get_many(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """The stored items of these schedules (one BatchGetItem; absent ones are left out)."""
        if not names:
            return {}
        client, table_name = self._table.meta.client, self._table.name
        request: dict[str, Any] = {table_name: {"Keys": [{"name": n} for n in names], "ConsistentRead": True}}
        found: dict[str, dict[str, Any]] = {}
        for _ in range(5):  # a catalogue's worth of keys; unprocessed ones are rare
            response = client.batch_get_item(RequestItems=request)
            for item in response.get("Responses", {}).get(table_name, []):
                found[item["name"]] = from_dynamo(item)
            request = response.get("UnprocessedKeys") or {}
            if not request:
                break
        return found

    def get(self, name: str) -> dict[str, Any] | None:
        item = self._table.get_item(Key={"name": name}, ConsistentRead=True).get("Item")
        return from_dynamo(item) if item else None

    def set_settings(self, name: str, expression: str, timezone: str, enabled: bool, now: str) -> None:
        """Store the schedule's run-time expression, zone and state (what `PUT` changed)."""
        self._table.update_item(
            Key={"name": name},
            UpdateExpression="SET #e = :e, #z = :z, #on = :on, settings_updated_at = :now",
            ExpressionAttributeNames={"#e": "expression", "#z": "timezone", "#on": "enabled"},
            ExpressionAttributeValues={":e": expression, ":z": timezone, ":on": enabled, ":now": now},
        )

    def record_run(self, name: str, run_at: str, job: dict[str, Any], manual: bool, now: str) -> bool:
        """Make `job` the schedule's last run, unless a later run (or this one) is recorded already."""
        try:
            self._table.update_item(
                Key={"name": name},
                UpdateExpression=(
                    "SET last_run = :run, last_status = :status, last_job_id = :job, "
                    "last_manual = :manual, last_updated_at = :now"
                ),
                ConditionExpression="attribute_not_exists(last_run) OR (last_run <= :run AND last_job_id <> :job)",
                ExpressionAttributeValues={
                    ":run": run_at,
                    ":status": job.get("state") or "waiting",
                    ":job": job["id"],
                    ":manual": manual,
                    ":now": now,
                },
            )
            return True
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def record_outcome(self, name: str, job_id: str, status: str, now: str) -> bool:
        """Store the status of the last run; a job that is not the last run changes nothing."""
        try:
            self._table.update_item(
                Key={"name": name},
                UpdateExpression="SET last_status = :status, last_updated_at = :now",
                ConditionExpression="last_job_id = :job",
                ExpressionAttributeValues={":status": status, ":job": job_id, ":now": now},
            )
            return True
        except ClientError as exc:
            if _conditional_failed(exc):
                return False
            raise

    def acquire(self, name: str, job_id: str, now: float, lease_seconds: int) -> dict[str, Any] | None:
        """Take the schedule's run lease for `job_id` (again, if it holds it already). None when the
        lease is ours; while another job holds an unexpired one, that holder: `{"job_id", "until"}`."""
        try:
            self._table.update_item(
                Key={"name": name},
                UpdateExpression="SET lease_job = :job, lease_until = :until",
                ConditionExpression="attribute_not_exists(lease_job) OR lease_job = :job OR lease_until < :now",
                ExpressionAttributeValues={":job": job_id, ":until": int(now) + lease_seconds, ":now": int(now)},
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )
            return None
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
            old = refused_item(exc) or {}
            return {"job_id": old.get("lease_job"), "until": int(old.get("lease_until") or now + lease_seconds)}

    def release(self, name: str, job_id: str) -> None:
        """Give the lease back if `job_id` still holds it."""
        try:
            self._table.update_item(
                Key={"name": name},
                UpdateExpression="REMOVE lease_job, lease_until",
                ConditionExpression="lease_job = :job",
                ExpressionAttributeValues={":job": job_id},
            )
        except ClientError as exc:
            if not _conditional_failed(exc):
                raise
