"""Audit exports, the job (the REST side is api's `start_export`, `export_status`): an admin asks for a range (`POST /api/audit/exports`), a `cleanup/audit_export`
job seals the trail up to now, then writes one NDJSON file to the stage's export bucket (private,
encrypted, versioned) and `GET /api/audit/exports/{id}` answers a presigned URL for it.

The file, one JSON document a line (`offline` checks it with the public key alone):

- `{"type": "export", "since", "until", "events", "first", "last", "key_id", "algorithm", "sig"}`:
  the range, how many events, the hashes of the first and last digest, signed with the digest key
  (the job runs where sealing runs), so cutting lines off the end shows;
- `{"type": "event", "event": <stored item>}` per event of the range in canonical order (sort
  key), with its MAC;
- `{"type": "digest", "digest": <head>, "leaves": [...]}` per digest covering the range, in
  chain order: their leaves list each event's fingerprint, their signatures cover the leaves.
"""

from __future__ import annotations

import json
from typing import Any

from chalicelib import aws, timeutil
from chalicelib.audit import chain, model, offline, sealer, signing
from chalicelib.audit.api import bucket, object_key
from chalicelib.audit.logger import record
from chalicelib.util import from_dynamo

# --- the job ------------------------------------------------------------------------------------


def lines(since: float, until: float, now: float, digests: chain.Digests) -> tuple[list[str], int]:
    """The export's lines and how many events (reads: every hour of the range, its digests)."""
    hours = [model.hour_of(t) for t in _hours(since, until)]
    heads, parts = digests._load(hours)  # noqa: SLF001 - the same readers verify uses
    if heads:  # nothing before the chain's first digest
        since = max(since, timeutil.parse_iso(heads[0]["start"]))
    lo, hi = timeutil.iso_ms(since), timeutil.iso_ms(until) + "~"
    events = [
        from_dynamo(i)
        for hour in hours
        for i in digests._events.hour(hour)  # noqa: SLF001
        if lo <= i["sk"] <= hi
    ]
    out_digests = []
    for head in heads:
        leaves = [
            line
            for n in range(int(head["parts"]))
            for line in parts.get(f"{head['seg']}#{head['end']}#p{n:04d}", "").split("\n")
            if line
        ]
        out_digests.append(json.dumps({"type": "digest", "digest": _plain(head), "leaves": leaves}, sort_keys=True))
    public = signing.public_key()
    header: dict[str, Any] = {
        "type": "export",
        "since": timeutil.iso_ms(since),
        "until": timeutil.iso_ms(until),
        "exported_at": timeutil.iso_ms(now),
        "events": len(events),
        "digests": len(heads),
        "first": heads[0]["hash"] if heads else "",
        "last": heads[-1]["hash"] if heads else "",
        "key_id": public["key_id"],
        "algorithm": signing.ALGORITHM,
    }
    header["sig"] = sealer.sign(signing.message("export", offline.header_text(header)))
    body = [json.dumps({"type": "event", "event": e}, sort_keys=True, default=str) for e in events]
    return [json.dumps(header, sort_keys=True), *body, *out_digests], len(events)


def _plain(head: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in from_dynamo(head).items() if k not in ("hour", "ttl")}


def _hours(since: float, until: float) -> list[float]:
    t, out = model.hour_start(since), []
    while t <= until:
        out.append(t)
        t += 3600
    return out


def run(job: dict[str, Any], ctx: Any) -> dict[str, Any]:
    """`cleanup/audit_export`: seal up to now, write the file, answer how many events."""
    now = timeutil.now()
    sealed = sealer.seal(now, ctx.time_left)
    since, until = (timeutil.parse_iso(job["payload"][k]) for k in ("since", "until"))
    until = min(until, timeutil.parse_iso(sealed["until"]) if sealed["until"] else until)
    head = sealer.sealer().head()
    if head is not None:
        until = min(until, timeutil.parse_iso(head["end"]) - 0.001)  # only what the digests cover
    text, count = lines(since, until, now, chain.digests())
    aws.client("s3").put_object(
        Bucket=bucket(),
        Key=object_key(job["id"]),
        Body=("\n".join(text) + "\n").encode(),
        ContentType="application/x-ndjson",
        ServerSideEncryption="AES256",
    )
    result = {"events": count, "until": timeutil.iso_ms(until), "key": object_key(job["id"])}
    record("audit.export", resource=("job", job["id"]), details={"state": "written", **result})
    return result
