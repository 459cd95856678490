"""SQS fair queues as the local stack emulates them (`local.fair_sqs`): a group with a backlog
does not hold back the others; messages without a group keep their order."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from local.fair_sqs import fair_order


@dataclass
class Msg:
    group_id: str | None
    n: int


def test_a_noisy_group_s_backlog_is_interleaved_with_the_quiet_groups():
    visible = [Msg("noisy", i) for i in range(100)] + [Msg(f"u{u}", u) for u in range(3)]
    order = fair_order(visible, Counter())
    assert [m.group_id for m in order[:6]] == ["noisy", "u0", "u1", "u2", "noisy", "noisy"]


def test_groups_with_messages_in_flight_come_after_the_others():
    visible = [Msg("noisy", 0), Msg("noisy", 1), Msg("quiet", 0)]
    order = fair_order(visible, Counter({"noisy": 5}))
    assert [m.group_id for m in order] == ["quiet", "noisy", "noisy"]


def test_without_groups_the_arrival_order_is_kept():
    visible = [Msg(None, i) for i in range(5)]
    assert fair_order(visible, Counter()) == visible
