"""Job records in DynamoDB: their shape, their state machine, and every write to them.

One item per job, keyed by `id`. `queue_state` (`<queue>#<state>`) with `updated_at` is the
`by_queue_state` index, so "a queue's jobs in a state, by time" is one Query and counts never
scan. An idempotency key is an item of its own, `idem#<queue>#<key>`, written in the same
transaction as the job, so a second enqueue with the key finds the first job.

States: waiting -> active -> completed | failed, with delayed (a delayed enqueue, or a
retry in backoff) -> active, and failed -> waiting again when an admin retries (which bumps
`run`, so messages of the earlier run are recognised as stale). A delayed job may be promoted
(delayed -> waiting, a new run: its delayed message turns stale), and a waiting or delayed one
cancelled (-> cancelled, final; its message is acknowledged without running). Every transition is a
conditional UpdateItem, so two workers holding the same message cannot both run it:

- claim: waiting/delayed, or active under an expired lease (its worker died), -> active with a
  lease (owner and expiry) for the message's run; `started_at` is when the latest attempt started
  (BullMQ's `processedOn`), kept by complete and fail, cleared with `finished_at` by a retry;
- progress / complete / retry_later / failing / fail: only by the lease owner while active.

The claim rules themselves are the pure function `claim_outcome`, used to explain a refused claim.

Every write names itself in the record (`write_token`): a write AWS applied whose answer was lost,
sent again by the SDK, sees its own token in the refused item and is done, not refused.
"""

from __future__ import annotations

import contextlib
import uuid
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.conditions import Key

from chalicelib import aws, timeutil
from chalicelib.jobs import indexes
from chalicelib.util import WRITE_TOKEN, applied, create_args, from_dynamo, own_repeat, refused_item, to_dynamo

STATES = ("waiting", "delayed", "active", "completed", "failed", "cancelled")
FINAL_STATES = ("completed", "failed", "cancelled")

# TTL of a record from its last change: long enough to outlive its message (4 days in the
# queue, 14 in the dead-letter queue) so that a retry still finds it.
TTL_SECONDS = {"completed": 7 * 86400, "failed": 14 * 86400, "cancelled": 7 * 86400}
DEFAULT_TTL_SECONDS = 14 * 86400
IDEMPOTENCY_TTL_SECONDS = 7 * 86400

# What a refused claim means (see claim_outcome).
CLAIMED = "claimed"
MISSING = "missing"  # no record: removed by an admin, or never written -> acknowledge
STALE = "stale"  # a message of an earlier run (the job was retried since) -> acknowledge
DONE = "done"  # completed already: a redelivery, never run twice -> acknowledge
DEAD = "dead"  # failed for this run: the message belongs in the dead-letter queue
CANCELLED = "cancelled"  # cancelled: never runs -> acknowledge (after its cancel hook, idempotent)
BUSY = "busy"  # active under a live lease (a concurrent delivery) -> try again later
RACED = "raced"  # refused, yet claimable as read (a race lost, an unexpected record) -> try again later

# fmt: off
PUBLIC_FIELDS = (
    "id", "queue", "type", "state", "attempts", "max_attempts", "progress", "payload", "result", "error",
    "user_id", "created_at", "updated_at", "started_at", "finished_at", "priority", "run_at",
)
# fmt: on


def new_id() -> str:
    return uuid.uuid4().hex


def public(item: dict[str, Any]) -> dict[str, Any]:
    """The job as `GET /api/jobs/{id}` shows it (what `JobEvent.job` carries)."""
    plain = from_dynamo(item)
    job = {name: plain.get(name) for name in PUBLIC_FIELDS}
    job["payload"] = job["payload"] or {}
    for name in ("attempts", "max_attempts", "progress"):
        job[name] = int(job[name] or 0)
    job["priority"] = job["priority"] or "normal"
    if job["state"] != "delayed":
        job["run_at"] = None  # only a delayed job has one (a backoff's has none)
    return job


def claim_outcome(old: dict[str, Any] | None, run: int, now: float) -> str:
    """Why a claim of `run` was refused, given the record as it was (pure; mirrors the condition)."""
    if old is None:
        return MISSING
    if int(old.get("run", 1)) != run:
        return STALE
    state = old.get("state")
    if state == "completed":
        return DONE
    if state == "failed":
        return DEAD
    if state == "cancelled":
        return CANCELLED
    if state == "active" and float(old.get("lease_until", 0)) >= now:
        return BUSY
    return CLAIMED  # claimable as read


def ttl_for(state: str, now: float) -> dict[str, Any]:
    return timeutil.ttl_fields(now + TTL_SECONDS.get(state, DEFAULT_TTL_SECONDS))


@dataclass(frozen=True)
class Claim:
    outcome: str
    job: dict[str, Any] | None  # the record after the claim, or as it was when refused


class JobStore:
    """The `jobs` table (records and idempotency items)."""

    def __init__(self, table: Any) -> None:
        self._table = table

    @property
    def table(self) -> Any:
        return self._table

    # --- creation ------------------------------------------------------------------------------

    def new_record(
        self,
        queue: str,
        job_type: str,
        payload: dict[str, Any],
        *,
        max_attempts: int,
        job_id: str | None = None,
        user_id: str | None = None,
        idempotency_key: str | None = None,
        delay_seconds: float = 0,
        priority: str = "normal",
    ) -> dict[str, Any]:
        now = timeutil.now()
        stamp = timeutil.iso_ms(now)
        state = "delayed" if delay_seconds > 0 else "waiting"
        return {
            "id": job_id or new_id(),
            "queue": queue,
            "type": job_type,
            "payload": to_dynamo(payload),
            "state": state,
            "queue_state": f"{queue}#{state}",
            "run": 1,
            "attempts": 0,
            "max_attempts": max_attempts,
            "progress": 0,
            "result": None,
            "error": None,
            "user_id": user_id,
            "idempotency_key": idempotency_key,
            "created_at": stamp,
            "updated_at": stamp,
            "started_at": None,
            "finished_at": None,
            "priority": priority,
            "run_at": timeutil.iso_ms(now + delay_seconds) if delay_seconds > 0 else None,
            WRITE_TOKEN: new_id(),
            **ttl_for(state, now),
            **indexes.record_fields(payload, user_id, stamp),
        }

    def create(self, record: dict[str, Any]) -> tuple[dict[str, Any], bool]:
        """Write a new record; with an idempotency key, return the existing job instead when the
        key was used already. Returns (record, created)."""
        key, client = record.get("idempotency_key"), self._table.meta.client
        if not key:
            with own_repeat(record):
                self._table.put_item(**create_args(record))
            return record, True
        idem_id = self.idempotency_id(record["queue"], key)
        idem = {"id": idem_id, "job_id": record["id"], **timeutil.ttl_fields(timeutil.now() + IDEMPOTENCY_TTL_SECONDS)}
        for _ in range(2):
            try:
                client.transact_write_items(
                    TransactItems=[
                        {"Put": self._put(idem, "attribute_not_exists(id)")},
                        {"Put": self._put(record, "attribute_not_exists(id)")},
                    ]
                )
                return record, True
            except client.exceptions.TransactionCanceledException:
                first = self._table.get_item(Key={"id": idem_id}, ConsistentRead=True).get("Item")
                existing = self.get(first["job_id"]) if first else None
                if existing is not None:  # created by this very transaction (its answer lost) or another
                    return existing, applied(existing, record[WRITE_TOKEN])
                if first is not None:
                    # The first job is gone (retention or an admin removed it): the key is free again.
                    self._table.delete_item(
                        Key={"id": idem_id},
                        ConditionExpression="job_id = :j",
                        ExpressionAttributeValues={":j": first["job_id"]},
                    )
        raise RuntimeError(f"idempotency key {key!r} is contended")

    def discard(self, record: dict[str, Any]) -> None:
        """Remove a record that was never queued (its message could not be sent)."""
        self._table.delete_item(Key={"id": record["id"]})
        if record.get("idempotency_key"):
            self._table.delete_item(Key={"id": self.idempotency_id(record["queue"], record["idempotency_key"])})

    def _put(self, item: dict[str, Any], condition: str) -> dict[str, Any]:
        # The Table's client serializes plain values itself (boto3's resource layer).
        return {"TableName": self._table.name, "Item": item, "ConditionExpression": condition}

    @staticmethod
    def idempotency_id(queue: str, key: str) -> str:
        return f"idem#{queue}#{key}"

    # --- reads ---------------------------------------------------------------------------------

    def get(self, job_id: str) -> dict[str, Any] | None:
        if job_id.startswith("idem#"):
            return None
        return self._table.get_item(Key={"id": job_id}, ConsistentRead=True).get("Item")

    def list_query(self, queue: str, state: str, newest_first: bool = True) -> dict[str, Any]:
        """Query arguments for a queue's jobs in one state, by `updated_at`."""
        return {
            "IndexName": "by_queue_state",
            "KeyConditionExpression": Key("queue_state").eq(f"{queue}#{state}"),
            "ScanIndexForward": not newest_first,
        }

    def count(self, queue: str, state: str) -> int:
        """How many of a queue's jobs are in `state` (Select COUNT on the index, paged)."""
        pages = aws.query_pages(self._table, **self.list_query(queue, state), Select="COUNT")
        return sum(page["Count"] for page in pages)

    # --- transitions ---------------------------------------------------------------------------

    def claim(self, queue: str, job_id: str, run: int, owner: str, lease_until: float) -> Claim:
        now = timeutil.now()
        try:
            item = self._update(
                job_id,
                "SET #st = :to, queue_state = :qs, attempts = attempts + :one, lease_owner = :owner, "
                "lease_until = :lease, updated_at = :now, started_at = :now, "
                "#ttl = :ttl, expiry_day = :day REMOVE run_at",
                "attribute_exists(id) AND #run = :run AND "
                "(#st IN (:waiting, :delayed) OR "
                "(#st = :to AND (attribute_not_exists(lease_until) OR lease_until < :nowts)))",
                {
                    ":waiting": "waiting",
                    ":delayed": "delayed",
                    ":one": 1,
                    ":owner": owner,
                    ":lease": to_dynamo(float(lease_until)),
                    ":nowts": to_dynamo(float(now)),
                    ":run": run,
                },
                (queue, "active"),
                now,
            )
        except _Refused as refused:
            outcome = claim_outcome(refused.old, run, now)
            return Claim(RACED if outcome == CLAIMED else outcome, refused.old)
        return Claim(CLAIMED, item)

    def progress(self, job: dict[str, Any], owner: str, percent: int) -> dict[str, Any]:
        return self._owned(job, owner, "SET progress = :p, updated_at = :now", {":p": percent})

    def record_effects(self, job: dict[str, Any], owner: str, effects: dict[str, Any]) -> dict[str, Any]:
        """Store the side effects done so far (`JobContext.once`); only while the lease is held."""
        return self._owned(job, owner, "SET effects = :fx, updated_at = :now", {":fx": to_dynamo(effects)})

    def complete(self, job: dict[str, Any], owner: str, result: dict[str, Any] | None) -> dict[str, Any]:
        return self._owned(
            job,
            owner,
            "SET #st = :to, queue_state = :qs, progress = :p, #res = :r, #err = :null, updated_at = :now, "
            "finished_at = :now, #ttl = :ttl, expiry_day = :day REMOVE lease_owner, lease_until",
            {":p": 100, ":r": to_dynamo(result or {}), ":null": None},
            to="completed",
        )

    def retry_later(self, job: dict[str, Any], owner: str, error: dict[str, str]) -> dict[str, Any]:
        """Back off: the job waits (state `delayed`) for its message to become visible again."""
        return self._owned(
            job,
            owner,
            "SET #st = :to, queue_state = :qs, #err = :e, updated_at = :now REMOVE lease_owner, lease_until",
            {":e": error},
            to="delayed",
        )

    def give_back(self, job: dict[str, Any], owner: str, error: dict[str, str]) -> dict[str, Any]:
        """A throttled attempt that does not count: active -> delayed, the claim's attempt given
        back, one more such wait noted in `throttled` (only by the lease owner)."""
        return self._owned(
            job,
            owner,
            "SET #st = :to, queue_state = :qs, #err = :e, attempts = attempts - :one, "
            "throttled = if_not_exists(throttled, :zero) + :one, updated_at = :now REMOVE lease_owner, lease_until",
            {":e": error, ":one": 1, ":zero": 0},
            to="delayed",
        )

    def failing(self, job: dict[str, Any], owner: str, error: dict[str, str]) -> dict[str, Any]:
        """Note on the active job that it is failing for good (`failing`: the error and the
        attempts so far) before its final-failure hook runs: a delivery that finds the note (its
        worker died before `fail`) finishes the failure instead of running the job again."""
        note = {"error": error, "attempts": int(job["attempts"])}
        return self._owned(job, owner, "SET failing = :f, updated_at = :now", {":f": note})

    def fail(
        self, job: dict[str, Any], owner: str, error: dict[str, str], attempts: int | None = None
    ) -> dict[str, Any]:
        """active -> failed; `attempts` restores the count of a failure finished by a later
        delivery (whose claim counted one more)."""
        values: dict[str, Any] = {":e": error}
        update = (
            "SET #st = :to, queue_state = :qs, #err = :e, updated_at = :now, finished_at = :now, "
            "#ttl = :ttl, expiry_day = :day"
        )
        if attempts is not None:
            update += ", attempts = :attempts"
            values[":attempts"] = attempts
        return self._owned(job, owner, update + " REMOVE lease_owner, lease_until, failing", values, to="failed")

    def dead_lettered(self, job: dict[str, Any]) -> None:
        """Note on the failed job that its run's message was copied to the dead-letter queue
        (`dead_letter`: that run), so a redelivery of the message copies it no more (the worker)."""
        with contextlib.suppress(_Refused):
            self._update(
                job["id"],
                "SET dead_letter = #run",
                "#st = :failed AND #run = :run",
                {":failed": "failed", ":run": job.get("run", 1)},
            )

    def reset_for_retry(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """failed -> waiting for a new run with fresh attempts; None unless the job is failed."""
        try:
            return self._update(
                job["id"],
                "SET #st = :to, queue_state = :qs, #run = #run + :one, attempts = :zero, progress = :zero, "
                "#res = :null, #err = :null, updated_at = :now, started_at = :null, finished_at = :null, "
                "#ttl = :ttl, expiry_day = :day REMOVE throttled",
                "attribute_exists(id) AND #st = :failed",
                {":failed": "failed", ":one": 1, ":zero": 0, ":null": None},
                (job["queue"], "waiting"),
            )
        except _Refused:
            return None

    def promote(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """delayed -> waiting as a new run (its delayed message turns stale); None unless the job
        is delayed in that run."""
        try:
            return self._update(
                job["id"],
                "SET #st = :to, queue_state = :qs, #run = #run + :one, updated_at = :now, "
                "#ttl = :ttl, expiry_day = :day REMOVE run_at",
                "attribute_exists(id) AND #st = :delayed AND #run = :run",
                {":delayed": "delayed", ":one": 1, ":run": job.get("run", 1)},
                (job["queue"], "waiting"),
            )
        except _Refused:
            return None

    def undo_promote(self, old: dict[str, Any]) -> None:
        """Put a job promoted by `promote` back as it was before (`old`): its message could not
        be sent, so its delayed message must stay current."""
        run = int(old.get("run", 1))
        with contextlib.suppress(_Refused):
            self._update(
                old["id"],
                "SET #st = :to, queue_state = :qs, #run = :old, run_at = :at, updated_at = :now, "
                "#ttl = :ttl, expiry_day = :day",
                "#st = :waiting AND #run = :run",
                {":waiting": "waiting", ":run": run + 1, ":old": run, ":at": old.get("run_at")},
                (old["queue"], "delayed"),
            )

    def cancel(self, job: dict[str, Any]) -> dict[str, Any] | None:
        """waiting | delayed -> cancelled (final); None unless the job is waiting or delayed."""
        try:
            return self._update(
                job["id"],
                "SET #st = :to, queue_state = :qs, updated_at = :now, finished_at = :now, "
                "#ttl = :ttl, expiry_day = :day REMOVE run_at",
                "attribute_exists(id) AND #st IN (:waiting, :delayed)",
                {":waiting": "waiting", ":delayed": "delayed"},
                (job["queue"], "cancelled"),
            )
        except _Refused:
            return None

    def undo_retry(self, job: dict[str, Any], error: dict[str, str]) -> None:
        """Put a job reset by `reset_for_retry` back to failed (its retry could not go ahead)."""
        with contextlib.suppress(_Refused):
            self._update(
                job["id"],
                "SET #st = :to, queue_state = :qs, #err = :e, updated_at = :now, #ttl = :ttl, expiry_day = :day",
                "#st = :waiting AND #run = :run",
                {":waiting": "waiting", ":e": error, ":run": job["run"]},
                (job["queue"], "failed"),
            )

    def remove(self, job_id: str) -> dict[str, Any] | None:
        """Delete a job record (returns it, or None); its message, when it arrives, is
        acknowledged without running."""
        if job_id.startswith("idem#"):
            return None
        return self._table.delete_item(Key={"id": job_id}, ReturnValues="ALL_OLD").get("Attributes")

    def trim(self, queue: str, state: str, keep: int, batch: int = 25) -> int:
        """Delete the oldest of a queue's jobs in `state` beyond the newest `keep` (at most
        `batch` per call; every final transition calls it, so the excess never builds up)."""
        result = self._table.query(**self.list_query(queue, state), Limit=keep + batch, ProjectionExpression="id")
        excess = result.get("Items", [])[keep:]
        if excess:
            with self._table.batch_writer() as writer:
                for item in excess:
                    writer.delete_item(Key={"id": item["id"]})
        return len(excess)

    # --- plumbing ------------------------------------------------------------------------------

    def _owned(
        self, job: dict[str, Any], owner: str, update: str, values: dict[str, Any], to: str | None = None
    ) -> dict[str, Any]:
        from chalicelib.jobs.errors import LeaseLost

        try:
            return self._update(
                job["id"],
                update,
                "#st = :active AND lease_owner = :owner",
                dict(values, **{":active": "active", ":owner": owner}),
                (job["queue"], to) if to else None,
            )
        except _Refused:
            raise LeaseLost(f"job {job['id']} is no longer held by this worker") from None

    def _update(
        self,
        job_id: str,
        update: str,
        condition: str,
        values: dict[str, Any],
        new_state: tuple[str, str] | None = None,
        now: float | None = None,
    ) -> dict[str, Any]:
        """One conditional UpdateItem returning the new item. For a change of state,
        `new_state` = (queue, state) fills `:to`, `:qs`, `:ttl` and `:day`. Raises _Refused
        carrying the item as it was."""
        now = timeutil.now() if now is None else now
        values = dict(values, **{":now": timeutil.iso_ms(now)})
        if new_state:
            queue, state = new_state
            ttl = ttl_for(state, now)
            values.update({":to": state, ":qs": f"{queue}#{state}", ":ttl": ttl["ttl"], ":day": ttl["expiry_day"]})
        token = new_id()
        update = update.replace("SET ", "SET #wt = :wt, ", 1)
        values[":wt"] = token
        text = update + " " + condition
        names = {n: v for n, v in _NAMES.items() if n in text}
        values = {k: v for k, v in values.items() if _used(k, text)}
        client = self._table.meta.client
        try:
            return self._table.update_item(
                Key={"id": job_id},
                UpdateExpression=update,
                ConditionExpression=condition,
                ExpressionAttributeNames=names,
                ExpressionAttributeValues=values,
                ReturnValues="ALL_NEW",
                ReturnValuesOnConditionCheckFailure="ALL_OLD",
            )["Attributes"]
        except client.exceptions.ConditionalCheckFailedException as exc:
            old = refused_item(exc)
            if old is not None and applied(old, token):  # this very update, its answer lost: done
                return old
            raise _Refused(old) from None


_NAMES = {"#st": "state", "#run": "run", "#res": "result", "#err": "error", "#ttl": "ttl", "#wt": WRITE_TOKEN}


def _used(placeholder: str, text: str) -> bool:
    """Is `:name` used in the expression text (and not only as the prefix of a longer name)?"""
    start = 0
    while (i := text.find(placeholder, start)) >= 0:
        end = i + len(placeholder)
        if end == len(text) or not (text[end].isalnum() or text[end] == "_"):
            return True
        start = end
    return False


class _Refused(Exception):
    def __init__(self, old: dict[str, Any] | None) -> None:
        super().__init__("condition failed")
        self.old = old
