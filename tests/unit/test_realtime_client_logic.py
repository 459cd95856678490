"""The Python client's pure parts: reconnect backoff and the per-room cursor that makes resume
lose nothing and repeat nothing; and a frame it sends in the background."""

from __future__ import annotations

import asyncio
import gc
import json
import weakref
from typing import Any

import pytest
from inkwell_realtime.client import RealtimeClient
from inkwell_realtime.tracking import RoomCursor, backoff_delay


@pytest.mark.parametrize("attempt", range(12))
@pytest.mark.parametrize("rand", [0.0, 0.5, 0.999999])
def test_backoff_stays_between_one_and_thirty_seconds(attempt, rand):
    assert 1.0 <= backoff_delay(attempt, rand) <= 30.0


def test_backoff_grows_exponentially_then_caps():
    ceilings = [backoff_delay(n, 0.999999) for n in range(8)]
    assert ceilings[:5] == pytest.approx([1, 2, 4, 8, 16], rel=1e-5)
    assert ceilings[5:] == pytest.approx([30, 30, 30], rel=1e-5)


def test_jitter_spreads_clients_dropped_together():
    assert backoff_delay(4, 0.0) == 8.0 and backoff_delay(4, 0.5) == 12.0
    assert backoff_delay(10_000, 0.5) == 22.5  # huge attempt counts do not overflow


def test_a_cursor_delivers_each_seq_once():
    cursor: RoomCursor[str] = RoomCursor(last=3)
    assert [cursor.accept(s, f"e{s}") for s in (4, 5, 5, 3, 1)] == [["e4"], ["e5"], [], [], []]
    assert cursor.last == 5 and not cursor.has_gap


def test_an_early_event_waits_for_the_hole_below_it_then_all_go_in_order():
    cursor: RoomCursor[str] = RoomCursor(last=3)
    assert cursor.accept(6, "e6") == [] and cursor.has_gap and cursor.last == 3
    assert cursor.accept(5, "e5") == []
    assert cursor.accept(6, "e6") == []  # a replay of an early arrival is a duplicate
    assert cursor.accept(4, "e4") == ["e4", "e5", "e6"]
    assert cursor.last == 6 and not cursor.has_gap


def test_a_hole_no_replay_could_fill_is_given_up_after_a_complete_resume():
    cursor: RoomCursor[str] = RoomCursor(last=3)
    cursor.accept(9, "e9")
    cursor.accept(7, "e7")
    assert cursor.settle() == ["e7", "e9"]
    assert cursor.last == 9 and not cursor.has_gap
    assert cursor.accept(8, "e8") == []
    assert RoomCursor(last=2).settle() == []  # nothing ahead: nothing changes


class SlowSocket:
    """A connection whose send waits on a future that only the sending task holds."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self.waiting: weakref.ref[asyncio.Future[None]] | None = None

    async def send(self, raw: str) -> None:
        future: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.waiting = weakref.ref(future)
        await future
        self.sent.append(json.loads(raw))


def test_a_resume_sent_in_the_background_survives_garbage_collection_until_sent():
    async def scenario() -> tuple[list[dict[str, Any]], int]:
        client = RealtimeClient("http://127.0.0.1:1", "token")
        ws = SlowSocket()
        client._ws = ws  # type: ignore[assignment]
        client.cursors["r"] = RoomCursor(last=3)
        client._handle(json.dumps({"type": "resumed", "room": "r", "complete": False, "next_after": 7}))
        await asyncio.sleep(0)  # the send starts and waits
        gc.collect()
        future = ws.waiting() if ws.waiting else None
        assert future is not None, "the sending task was garbage-collected mid-flight"
        future.set_result(None)
        for _ in range(3):
            await asyncio.sleep(0)
        return ws.sent, len(client._sends)

    sent, still_kept = asyncio.run(scenario())
    assert sent == [{"action": "resume", "room": "r", "after": 7}]
    assert still_kept == 0  # released once sent
