"""Write requests and time for 1,000 buffered audit events (target: at most 42 requests: 40 of events, 2 more of the manifests that ride with them), on
moto in-process, counted at the botocore level so that retries would show too. They are
TransactWriteItems of Puts (no writer may delete), which DynamoDB bills at two write units an
item (up to 1 KB): the items written are printed with them."""

from __future__ import annotations

import os
import time
from collections import Counter
from typing import Any

EVENTS = 1000


def main() -> None:
    os.environ.setdefault("INKWELL_STAGE", "local")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "testing")
    from moto import mock_aws

    from chalicelib import audit, aws, config, runtime
    from infra import provision

    config.reset()
    aws.reset()
    middleware = runtime.Middleware(buffers=[audit.logger.BUFFER])  # as app.py's: the audit flush at the end
    with mock_aws():
        provision.provision(aws.client("dynamodb"), aws.client("sqs"))
        client = aws.table("audit_events").meta.client
        calls: Counter[str] = Counter()
        items: Counter[str] = Counter()

        def count(model: Any, params: dict[str, Any], **_: Any) -> None:
            calls.update([model.name])
            items.update({model.name: len(params.get("TransactItems", [])) or 1})

        client.meta.events.register("before-parameter-build.dynamodb.*", count)

        def handler() -> None:
            for n in range(EVENTS):
                audit.record("article.status_changed", resource=("article", f"a{n % 37}"), details={"n": n})

        start = time.perf_counter()
        middleware.run(runtime.Invocation(kind="sqs", request_id="bench"), handler)
        elapsed = time.perf_counter() - start
        writes = calls["BatchWriteItem"] + calls["TransactWriteItems"] + calls["PutItem"]
        print(f"audit: {EVENTS} buffered events -> {writes} write requests (target <= 42), {dict(calls)}")
        written = items["TransactWriteItems"] + items["PutItem"]
        print(f"  {written} items written in transactions: {2 * written} write units (2 an item up to 1 KB)")
        print(f"  {elapsed * 1000:.0f} ms in all, {elapsed / EVENTS * 1e6:.0f} us per event (moto in-process)")

        calls.clear()
        start = time.perf_counter()
        middleware.run(
            runtime.Invocation(kind="rest", request_id="bench-critical"),
            lambda: [audit.record("settings.update", resource=("setting", f"k{n}")) for n in range(100)],
        )
        elapsed = time.perf_counter() - start
        print(f"  for comparison, 100 critical events -> {calls['PutItem']} PutItem, {elapsed * 10:.1f} ms each")

        # The admin room's `activity` for every event, sent per flush (every ACTIVITY_BATCH events
        # of a long invocation, and at its end), not per event. An admin connected once (the room's
        # counter is kept), nobody is connected now: stored for resume, no posts. The emitters are
        # subscribed and their flush ends the invocation, as in app.py.
        from chalicelib import events
        from chalicelib.audit import logger
        from chalicelib.realtime import delivery, emitters, live, rooms

        live.event_log().open_room(rooms.ADMIN, joined=0)
        unsubscribe = events.subscribe(events.AuditRecorded, emitters.on_audit)
        with_realtime = runtime.Middleware(buffers=[logger.BUFFER, delivery.WAITING])
        by_table: Counter[str] = Counter()

        def table_of(model: Any, params: dict[str, Any], **_: Any) -> None:
            named = [t.get("TableName", "?") for entry in params.get("TransactItems", []) for t in entry.values()]
            for name in params.get("RequestItems") or named[:1] or [params.get("TableName", "?")]:
                by_table[f"{model.name} {name.removeprefix(config.get().resource_name('') + '-')}"] += 1

        client.meta.events.register("before-parameter-build.dynamodb.*", table_of)
        try:
            with_realtime.run(runtime.Invocation(kind="sqs", request_id="bench-activity"), handler)
        finally:
            unsubscribe()
        realtime = {k: v for k, v in by_table.items() if "audit_events" not in k}
        stored, _ = live.event_log().replay(rooms.ADMIN, 0, 1000)
        print(
            f"  with the realtime emitters, the {EVENTS} events also go out as `activity` "
            f"({EVENTS // logger.ACTIVITY_BATCH} batches, {len(stored)} stored in the admin room) "
            f"for {sum(realtime.values())} more requests: {realtime}"
        )


if __name__ == "__main__":
    main()
