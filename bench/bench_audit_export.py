"""One audit export of 100,000 events (`INKWELL_BENCH_EXPORT_EVENTS`) as the `cleanup/audit_export`
job streams it (`export.begin`, `export.write`: the range's events in canonical order, its
digests, a signed summary, NDJSON sent in parts of `export.PART_BYTES`), then the offline check of the file (`make audit-verify`). The events and their
ten hourly digests are built in memory and served by an in-memory reader instead of DynamoDB
(moto needs minutes per 10,000 items, which would measure moto): the figure is the job's own time
and memory, plus the reads it makes on AWS (Query pages of 1 MB, 4 shards per hour)."""

from __future__ import annotations

import os
import tempfile
import time
import tracemalloc
from typing import Any


def main() -> None:
    os.environ.setdefault("INKWELL_STAGE", "local")
    from chalicelib import config, secret, timeutil
    from chalicelib.audit import chain, export, model, offline, sealer, signing
    from chalicelib.audit.actions import classify

    events = int(os.environ.get("INKWELL_BENCH_EXPORT_EVENTS", "100000"))
    config.reset()
    key = secret.get(config.AUDIT_DIGEST_KEY)
    now = float(int(time.time()))
    start = model.hour_start(now) - 10 * 3600
    step = 10 * 3600 / events
    cls = classify("article.status_changed")
    by_hour: dict[str, list[dict[str, Any]]] = {}
    for n in range(events):
        at = start + n * step
        item = model.build(
            "article.status_changed",
            cls,
            user_id=f"u{n % 50}",
            ip="10.0.0.1",
            user_agent="bench",
            request_id=f"r{n}",
            resource=("article", f"a{n % 997}"),
            details={"n": n, "status": "published"},
            now=at,
        )
        placed = model.place(item, at, at, key)
        by_hour.setdefault(model.hour_of(at), []).append(placed)
    heads, parts, prev = [], {}, ""
    for seq, (hour, items) in enumerate(sorted(by_hour.items()), 1):
        items.sort(key=lambda i: i["sk"])
        a = timeutil.iso_ms(model.hour_start(timeutil.parse_iso(items[0]["ts"])))
        b = timeutil.iso_ms(timeutil.parse_iso(a) + 3600)
        digest = chain.make_digest(seq, a, b, prev, [chain.leaf(i) for i in items], sealer.sign)
        for n, p in enumerate(digest.pop("parts")):
            parts[f"{a}#{b}#p{n:04d}"] = "\n".join(p)
        heads.append({**digest, "hour": hour, "seg": a, "parts": len(parts) - sum(int(h["parts"]) for h in heads)})
        prev = digest["hash"]

    class Memory(export.Source):
        """The events and digests served from memory in place of DynamoDB's Query pages."""

        def __init__(self) -> None:
            pass

        def events(self, hour: str, lo: str, hi: str) -> Any:
            return (i for i in by_hour.get(hour, []) if lo <= i["sk"] <= hi)

        def digest_hour(self, hour: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
            return [h for h in heads if h["hour"] == hour], parts

        def heads(self, hour: str) -> list[dict[str, Any]]:
            return [h for h in heads if h["hour"] == hour]

    class Sink(export.Parts):
        """The parts as S3 would get them: kept on disk, so the file can be checked after."""

        def __init__(self, path: str) -> None:
            super().__init__("bench", "bench-upload")
            self.file = open(path, "wb")  # noqa: SIM115 - closed by complete()

        def put(self, data: bytes) -> None:
            self.file.write(data)
            self.etags.append(f"part{len(self.etags) + 1}")

        def complete(self) -> None:
            self.file.close()

    path = os.path.join(tempfile.mkdtemp(), "export.ndjson")
    sink = Sink(path)
    tracemalloc.start()
    started = time.perf_counter()
    state = export.begin(start, start + 10 * 3600 - 0.001, now, Memory())
    done = export.write(state, Memory(), export.Writer(sink, dict(state), lambda: 1e9))
    built = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    text = open(path).read()  # noqa: SIM115
    count = sum(1 for line in text.splitlines() if line.startswith('{"event"'))
    started = time.perf_counter()
    problems = offline.check(text, signing.public_key()["public_key_pem"])
    checked = time.perf_counter() - started
    size = len(text.encode())
    # 1 MB pages, a page per shard-hour at least; the digests' hours twice (heads, then leaves)
    queries = 10 * model.SHARDS + size // 1_000_000 + 2 * 10
    print(
        f"audit export: {count:,} events in one job -> {built:.1f} s to stream {size / 1e6:.0f} MB of NDJSON "
        f"in {len(sink.etags)} parts of {export.PART_BYTES / 2**20:.0f} MiB, peak {peak / 1e6:.0f} MB of Python "
        f"memory; on AWS about {queries} Query pages and {len(sink.etags) + 2} S3 requests"
    )
    print(f"  offline verify (make audit-verify): {checked:.1f} s, {len(problems)} problems")
    if count != events or problems or not done:
        raise SystemExit(f"export incomplete or not verified: {problems[:5]}")


if __name__ == "__main__":
    main()
