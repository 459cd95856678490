"""SQS fair queues, emulated in moto: on a standard queue whose messages carry a MessageGroupId
(a fair queue's tenant; Inkwell's articles queue: the job's user), a receive delivers first the
messages of the groups with the fewest messages in flight, so a group with a large backlog does
not hold back the others, as SQS does on AWS (moto delivers in arrival order only).

The order of a receive: the k-th visible message of group g comes at `in_flight(g) + k`, ties in
arrival order; messages without a group come as if each were its own group. Nothing else changes
(visibility, receive counts, redrive, delays). `install()` patches moto's `Queue.messages` (the
visible messages a receive walks), in the stack's moto process and in-process (benchmarks, tests).
"""

from __future__ import annotations

from collections import Counter
from typing import Any

_installed: dict[str, Any] = {}


def fair_order(visible: list[Any], in_flight: Counter[str]) -> list[Any]:
    """`visible` (moto messages, in arrival order) in fair delivery order."""
    if not any(m.group_id for m in visible):
        return visible
    rank: Counter[str] = Counter()
    keyed = []
    for index, message in enumerate(visible):
        group = message.group_id
        if group is None:
            keyed.append((0, index, message))
            continue
        keyed.append((in_flight[group] + rank[group], index, message))
        rank[group] += 1
    return [message for _, _, message in sorted(keyed, key=lambda k: (k[0], k[1]))]


def install() -> None:
    """Make moto's standard queues deliver fairly between message groups (idempotent)."""
    from moto.sqs import models

    if "messages" in _installed:
        return
    original = models.Queue.messages
    _installed["messages"] = original

    def messages(self: Any) -> list[Any]:
        visible = original.fget(self)
        if self.fifo_queue:
            return visible
        # received and not deleted (moto's pending set), and not visible again: in flight
        in_flight: Counter[str] = Counter(m.group_id for m in self.pending_messages if m.group_id and not m.visible)
        return fair_order(visible, in_flight)

    models.Queue.messages = property(messages)  # type: ignore[method-assign,assignment]


def uninstall() -> None:
    """Back to moto's arrival order (the benchmark measures both)."""
    from moto.sqs import models

    if "messages" in _installed:
        models.Queue.messages = _installed.pop("messages")  # type: ignore[method-assign]
