"""`make audit-verify FILE=<export> KEY=<public key PEM file>`: check a downloaded audit export
with the digest key's public half alone (no secret, no network).

    python -m chalicelib.audit.offline export.ndjson --key public.pem

Exit 0 when the export is complete, untampered and signed by that key; 1 naming each problem
(line numbers are the file's, from 1): its signed summary (the last line; a file cut short has
none); each digest's hash, leaves and
signature and its link to the one before; each event against the fingerprint its digest sealed,
in canonical order; every sealed event of the range present (unless its retention had passed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from chalicelib import timeutil
from chalicelib.audit import chain, model, signing


def header_text(header: dict[str, Any]) -> str:
    fields = ("since", "until", "exported_at", "events", "digests", "first", "last", "key_id")
    return "|".join(str(header.get(k, "")) for k in fields)


def check(text: str, public_key_pem: str) -> list[str]:
    """Every problem of an export (pure): empty when it verifies."""
    problems: list[str] = []
    rows: list[tuple[int, dict[str, Any]]] = []
    for n, raw in enumerate(text.splitlines(), 1):
        if raw.strip():
            try:
                rows.append((n, json.loads(raw)))
            except ValueError:
                problems.append(f"line {n}: not JSON")
    if rows and rows[-1][1].get("type") == "export":
        at, header = rows[-1]
    elif rows and rows[0][1].get("type") == "export":  # exports written before streaming: first
        at, header = rows[0]
    else:
        return [*problems, "no export summary on the last line: the file was cut short"]
    if not signing.valid(public_key_pem, signing.message("export", header_text(header)), str(header.get("sig", ""))):
        problems.append(f"line {at}: the export summary's signature does not match this key")
    events = [(n, r["event"]) for n, r in rows if r.get("type") == "event"]
    digests = [(n, r) for n, r in rows if r.get("type") == "digest"]
    if len(events) != int(header.get("events", -1)):
        problems.append(f"the summary says {header.get('events')} events, the file holds {len(events)}")
    if len(digests) != int(header.get("digests", -1)):
        problems.append(f"the summary says {header.get('digests')} digests, the file holds {len(digests)}")
    leaves = _digests(digests, header, public_key_pem, problems)
    _events(events, leaves, header, problems)
    return problems


def _digests(
    digests: list[tuple[int, dict[str, Any]]], header: dict[str, Any], pem: str, problems: list[str]
) -> dict[str, tuple[str, int, int]]:
    """Check each digest and the chain; returns sort key -> (fingerprint, ttl, line of its digest)."""
    leaves: dict[str, tuple[str, int, int]] = {}
    prev: dict[str, Any] | None = None
    for n, row in digests:
        head, lines = row.get("digest") or {}, [str(x) for x in row.get("leaves") or []]
        try:
            ok = chain.head_hash(head) == head["hash"] and chain.root(lines) == head["root"]
            ok = ok and len(lines) == int(head["count"])
        except (KeyError, TypeError, ValueError):
            ok = False
        if not ok:
            problems.append(f"line {n}: digest {head.get('seq')} does not match its hash or its leaves")
        elif not signing.valid(pem, signing.message("digest", head["hash"]), str(head.get("sig", ""))):
            problems.append(f"line {n}: digest {head.get('seq')} is not signed by this key")
        if prev is not None and (head.get("prev") != prev.get("hash") or head.get("start") != prev.get("end")):
            problems.append(f"line {n}: digest {head.get('seq')} does not follow digest {prev.get('seq')}")
        prev = head
        for text in lines:
            sk, print_, ttl = text.split(" ")
            leaves[sk] = (print_, int(ttl), n)
    if digests:
        first, last = digests[0][1]["digest"], digests[-1][1]["digest"]
        if first.get("hash") != header.get("first") or last.get("hash") != header.get("last"):
            problems.append("the digests are not those the summary names (first or last)")
        if first.get("start", "~") > header.get("since", "") or last.get("end", "") <= header.get("until", "~"):
            problems.append("the digests do not cover the export's range")
    elif int(header.get("events", 0)):
        problems.append("no digest covers the export's events")
    return leaves


def _events(
    events: list[tuple[int, dict[str, Any]]],
    leaves: dict[str, tuple[str, int, int]],
    header: dict[str, Any],
    problems: list[str],
) -> None:
    seen: set[str] = set()
    last = ""
    for n, event in events:
        sk = str(event.get("sk", ""))
        if sk <= last:
            problems.append(f"line {n}: event {event.get('id')} is out of order (or repeated)")
        last = max(last, sk)
        sealed = leaves.get(sk)
        if sealed is None:
            problems.append(f"line {n}: event {event.get('id')} is in no digest")
        elif model.fingerprint(event) != sealed[0]:
            problems.append(f"line {n}: event {event.get('id')} differs from what digest line {sealed[2]} sealed")
        seen.add(sk)
    lo, hi, at = str(header.get("since", "")), str(header.get("until", "")) + "~", str(header.get("exported_at", ""))
    for sk, (_, ttl, n) in sorted(leaves.items()):
        expired = ttl and timeutil.iso_ms(ttl) <= at
        if lo <= sk <= hi and sk not in seen and not expired:
            problems.append(f"event {sk.split('#', 1)[-1]} sealed by the digest on line {n} is missing")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Verify an audit export with the digest key's public half.")
    parser.add_argument("file", help="the export (NDJSON) as downloaded")
    parser.add_argument(
        "--key", required=True, help="a file holding public_key_pem (or GET /api/audit/public-key's JSON)"
    )
    args = parser.parse_args(argv)
    key_text = Path(args.key).read_text()
    if key_text.lstrip().startswith("{"):
        key_text = json.loads(key_text)["public_key_pem"]
    problems = check(Path(args.file).read_text(), key_text)
    for problem in problems:
        print(problem, file=sys.stderr)
    if not problems:
        print(f"{args.file}: complete, untampered and signed by that key")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
