"""The app the e2e stack serves: Inkwell's own, plus two probes that exist only to drive the
emulators (imported by the stack's subprocess through INKWELL_LOCAL_APP, never by app.py).

`e2e_probe` consumes the `e2e-probe` queue (visibility 1 s, 2 attempts, so redelivery and the
dead-letter queue take seconds) and fails or raises on request; `e2e_tick` is a schedule. Both
record what they saw in the settings table under scope `e2e#<tag>`, which tests Query.
"""

from __future__ import annotations

import json
from typing import Any

from app import app
from chalicelib import aws, catalog, config


class _QuickQueue(catalog.Queue):
    @property
    def visibility_timeout(self) -> int:
        return 1


PROBE_QUEUE = _QuickQueue("e2e-probe", attempts=2, batch_size=2, function_timeout=5)
EXTRA_QUEUES = (PROBE_QUEUE,)


def record(tag: str, key: str, item: dict[str, Any]) -> None:
    aws.table("settings").put_item(Item={"scope": f"e2e#{tag}", "key": key, "value": json.dumps(item)})


@app.on_sqs_message(queue=config.get().resource_name(PROBE_QUEUE.name), batch_size=PROBE_QUEUE.batch_size)
def e2e_probe(event: Any) -> dict[str, Any]:
    failures = []
    for message in event:
        raw = message.to_dict()
        body = json.loads(message.body)
        count = raw["attributes"]["ApproximateReceiveCount"]
        record(body["tag"], f"{body['name']}#{count}", {"messageId": raw["messageId"], "record": raw})
        if body.get("outcome") == "raise":
            raise RuntimeError("the probe was asked to raise")
        if body.get("outcome") == "fail":
            failures.append({"itemIdentifier": raw["messageId"]})
    return {"batchItemFailures": failures}


@app.schedule("rate(1 day)", description="e2e probe schedule")
def e2e_tick(event: Any) -> dict[str, Any]:
    raw = event.to_dict()
    record("schedule", raw["id"], raw)
    return {"seen": raw["id"]}
