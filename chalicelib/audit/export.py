"""Audit exports, the job (the REST side is api's `start_export`, `export_status`): an admin asks
for a range (`POST /api/audit/exports`), a `cleanup/audit_export` job seals the trail up to now,
then streams one NDJSON file to the stage's export bucket (private, encrypted, versioned) as an S3
multipart upload, and `GET /api/audit/exports/{id}` answers a presigned URL for it.

The file, one JSON document a line (`offline` checks it with the public key alone):

- `{"type": "event", "event": <stored item>}` per event of the range in canonical order (sort
  key), with its MAC;
- `{"type": "digest", "digest": <head>, "leaves": [...]}` per digest covering the range, in
  chain order: their leaves list each event's fingerprint, their signatures cover the leaves;
- last, `{"type": "export", "since", "until", "events", "digests", "first", "last", "key_id",
  "algorithm", "sig"}`: the range, how many events and digests, the hashes of the first and last
  digest, signed with the digest key (the job runs where sealing runs), so a file cut short
  shows (its signed summary is gone).

Memory stays flat whatever the range: events are read shard page by shard page and merged in
sort key order (`_merged`), digests an hour at a time, and the text goes out in parts of
PART_BYTES (S3 wants 5 MiB at least, but for the last). A job that runs short of time
(`ctx.time_left()`) stops after a part and a follow-up job carries on the same upload: the job's
payload carries the upload id, the parts' ETags and the position (the last sort key or digest
start the uploaded parts hold). A failure aborts the upload (the bucket's lifecycle rule also
drops one left incomplete after a day); the attempt retried starts the export again.
"""

from __future__ import annotations

import heapq
import json
from collections.abc import Callable, Iterator
from typing import Any

from boto3.dynamodb.conditions import Attr, Key

from chalicelib import aws, timeutil
from chalicelib.audit import chain, model, offline, sealer, signing
from chalicelib.audit.api import bucket, object_key
from chalicelib.audit.logger import record
from chalicelib.jobs.sweep import carry_on
from chalicelib.util import from_dynamo

PART_BYTES = 8 * 1024 * 1024  # each part but the last (S3: at least 5 MiB)
RESERVE_SECONDS = 30.0  # a job stops after a part once it has less time than this left
CHECK_EVERY = 500  # lines between two looks at the clock


class Source:
    """What an export reads: the range's events in order, its digests an hour at a time."""

    def __init__(self, digests: chain.Digests) -> None:
        self._digests = digests

    def events(self, hour: str, lo: str, hi: str) -> Iterator[dict[str, Any]]:
        return _merged(self._digests._events._table, hour, lo, hi)  # noqa: SLF001

    def digest_hour(self, hour: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
        return self._digests._load([hour])  # noqa: SLF001 - the same reader verify uses

    def heads(self, hour: str) -> list[dict[str, Any]]:
        """The digests stored under `hour`, without their leaves' parts."""
        table = self._digests._table  # noqa: SLF001
        pages = aws.query_pages(
            table,
            KeyConditionExpression=Key("hour").eq(hour),
            FilterExpression=Attr("leaves").not_exists(),
            ConsistentRead=True,
        )
        return sorted((i for p in pages for i in p.get("Items", [])), key=lambda h: h["start"])


def _merged(table: Any, hour: str, lo: str, hi: str) -> Iterator[dict[str, Any]]:
    """An hour's events within [lo, hi] from its shards, one Query page of each at a time."""

    def shard(pk: str) -> Iterator[dict[str, Any]]:
        key = Key("hour").eq(pk) & Key("sk").between(lo, hi)
        for page in aws.query_pages(table, KeyConditionExpression=key, ConsistentRead=True):
            yield from page.get("Items", [])

    return heapq.merge(*(shard(pk) for pk in model.partitions(hour)), key=lambda i: i["sk"])


class Parts:
    """An S3 multipart upload (or, for tests and the bench, any `put(number, data) -> etag`)."""

    def __init__(self, key: str, upload_id: str = "", etags: list[str] | None = None) -> None:
        self.key, self.upload_id, self.etags = key, upload_id, list(etags or [])

    def start(self) -> None:
        answer = aws.client("s3").create_multipart_upload(
            Bucket=bucket(), Key=self.key, ContentType="application/x-ndjson", ServerSideEncryption="AES256"
        )
        self.upload_id = answer["UploadId"]

    def put(self, data: bytes) -> None:
        number = len(self.etags) + 1
        answer = aws.client("s3").upload_part(
            Bucket=bucket(), Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=data
        )
        self.etags.append(answer["ETag"])

    def complete(self) -> None:
        parts = [{"PartNumber": n, "ETag": e} for n, e in enumerate(self.etags, 1)]
        aws.client("s3").complete_multipart_upload(
            Bucket=bucket(), Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
        )

    def abort(self) -> None:
        if self.upload_id:
            aws.client("s3").abort_multipart_upload(Bucket=bucket(), Key=self.key, UploadId=self.upload_id)


class Writer:
    """The export's text, sent a part at a time; `state` says what the uploaded parts hold."""

    def __init__(self, parts: Parts, state: dict[str, Any], time_left: Callable[[], float]) -> None:
        self.parts, self.state, self.time_left = parts, state, time_left
        self.buffer: list[bytes] = []
        self.size = self.lines = 0
        self.uploaded = 0  # parts this job uploaded
        self.pending: dict[str, Any] = {}  # what the buffer adds to the state

    def add(self, line: str, **position: Any) -> bool:
        """Append a line; False when the job should stop (after a part, short of time)."""
        data = line.encode() + b"\n"
        self.buffer.append(data)
        self.size, self.lines = self.size + len(data), self.lines + 1
        self.pending.update(position)
        if self.size >= PART_BYTES:
            self.flush()
            return self.time_left() > RESERVE_SECONDS
        # short of time after a part: stop, the buffer dropped (the follow-up reads it again)
        return not (self.lines % CHECK_EVERY == 0 and self.uploaded and self.time_left() <= RESERVE_SECONDS)

    def finish(self, line: str) -> None:
        """The last line, then the last part (any size) and the upload completed."""
        self.buffer.append(line.encode() + b"\n")
        self.flush()
        self.parts.complete()

    def flush(self) -> None:
        self.parts.put(b"".join(self.buffer))
        self.buffer, self.size, self.uploaded = [], 0, self.uploaded + 1
        self.state.update(self.pending, upload=self.parts.upload_id, etags=self.parts.etags)
        self.pending = {}


def begin(since: float, until: float, now: float, source: Source) -> dict[str, Any]:
    """The export's fixed facts, read once (by the first job): its range, from the first digest
    covering it, the digests' count and first and last hashes (reads: the digests' hours)."""
    cut = timeutil.iso_ms(until)
    heads = [h for hour in _hours(since, until) for h in source.heads(model.hour_of(hour)) if h["start"] <= cut]
    if heads:  # nothing before the chain's first digest
        since = max(since, timeutil.parse_iso(heads[0]["start"]))
    return {
        "since": timeutil.iso_ms(since),
        "until": cut,
        "exported_at": timeutil.iso_ms(now),
        "digests": len(heads),
        "first": heads[0]["hash"] if heads else "",
        "last": heads[-1]["hash"] if heads else "",
        "phase": "events",
        "after": "",
        "events": 0,
    }


def write(state: dict[str, Any], source: Source, out: Writer) -> bool:
    """Go on writing the export `state` describes; True once the whole file is uploaded."""
    since, until = timeutil.parse_iso(state["since"]), timeutil.parse_iso(state["until"])
    lo, hi = state["since"], state["until"] + "~"
    count = int(state["events"])
    if state["phase"] == "events":
        after = state["after"]
        for t in _hours(max(since, timeutil.parse_iso(after[:24])) if after else since, until):
            for item in source.events(model.hour_of(t), max(lo, after), hi):
                if item["sk"] <= after:
                    continue
                count += 1
                line = json.dumps({"type": "event", "event": from_dynamo(item)}, sort_keys=True, default=str)
                if not out.add(line, after=item["sk"], events=count):
                    return False
        out.pending.update(phase="digests", after="", events=count)
    after = state["after"] if state["phase"] == "digests" else ""
    for t in _hours(since, until):
        heads, parts = source.digest_hour(model.hour_of(t))
        for head in heads:
            if not after < head["start"] <= state["until"]:
                continue
            leaves = chain.leaf_lines(head, parts)
            line = json.dumps({"type": "digest", "digest": _plain(head), "leaves": leaves}, sort_keys=True)
            if not out.add(line, phase="digests", after=head["start"]):
                return False
    out.finish(json.dumps(summary({**state, **out.pending, "events": count}), sort_keys=True))
    return True


def summary(state: dict[str, Any]) -> dict[str, Any]:
    """The export's last line, signed with the digest key."""
    public = signing.public_key()
    fields = ("since", "until", "exported_at", "events", "digests", "first", "last")
    line: dict[str, Any] = {"type": "export", **{k: state[k] for k in fields}}
    line.update(key_id=public["key_id"], algorithm=signing.ALGORITHM)
    line["sig"] = sealer.sign(signing.message("export", offline.header_text(line)))
    return line


def _plain(head: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in from_dynamo(head).items() if k not in ("hour", "ttl")}


def _hours(since: float, until: float) -> list[float]:
    t, out = model.hour_start(since), []
    while t <= until:
        out.append(t)
        t += 3600
    return out


def run(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """`cleanup/audit_export`: seal up to now, then stream the file (continued by a follow-up job
    when one job's time is not enough), answer how many events."""
    payload = job["payload"]
    export_id = payload.get("export_id", job["id"])
    source = Source(chain.digests())
    state = payload.get("state") if ctx.attempt == 1 else None  # a retried attempt starts again
    if state is None:
        now = timeutil.now()
        sealed = sealer.seal(now, ctx.time_left)
        since, until = (timeutil.parse_iso(payload[k]) for k in ("since", "until"))
        until = min(until, timeutil.parse_iso(sealed["until"]) if sealed["until"] else until)
        head = sealer.sealer().head()
        if head is not None:
            until = min(until, timeutil.parse_iso(head["end"]) - 0.001)  # only what the digests cover
        state = begin(since, until, now, source)
    parts = Parts(object_key(export_id), state.get("upload", ""), state.get("etags"))
    try:
        if not parts.upload_id:
            parts.start()
        out = Writer(parts, dict(state), ctx.time_left)
        done = write(state, source, out)
    except BaseException:
        parts.abort()
        raise
    if not done:
        progress = {"events": out.state["events"], "parts": len(parts.etags), "more": True}
        return carry_on(job, progress, export_id=export_id, state=out.state)
    result = {"events": out.state["events"], "until": state["until"], "key": parts.key, "parts": len(parts.etags)}
    record("audit.export", resource=("job", export_id), details={"state": "written", **result})
    return result
