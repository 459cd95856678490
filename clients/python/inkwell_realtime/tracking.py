"""What a real-time client must remember to lose nothing and repeat nothing: per room, the seqs
it has delivered; and how long to wait before reconnecting. Pure (no I/O), unit-tested.

A `RoomCursor` delivers each seq of a room once and in order. Everything up to `last` is
delivered; events that arrived early (live events overtaking a replay after a reconnect, or a
concurrent emitter's event overtaking an earlier one) wait in `ahead` until the hole below them
fills. The client resumes the room after `last`, so the replay fills the hole.
"""

from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0


def backoff_delay(attempt: int, rand: float, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0-based): exponential from `first`,
    capped at `cap`, with "equal jitter" (between half and all of it, never below `first`), so
    that clients dropped together do not come back together. `rand` is uniform in [0, 1)."""
    ceiling = min(cap, first * 2 ** min(attempt, 32))
    return max(first, ceiling / 2 + rand * ceiling / 2)


class RoomCursor(Generic[T]):
    def __init__(self, last: int = 0) -> None:
        self.last = last
        self.ahead: dict[int, T] = {}

    def accept(self, seq: int, event: T) -> list[T]:
        """The events now ready, in seq order: `event` and any it unblocks; [] for a duplicate
        or for an early arrival (held until the hole below it fills)."""
        if seq <= self.last or seq in self.ahead:
            return []
        if seq != self.last + 1:
            self.ahead[seq] = event
            return []
        ready = [event]
        self.last = seq
        while self.last + 1 in self.ahead:
            self.last += 1
            ready.append(self.ahead.pop(self.last))
        return ready

    @property
    def has_gap(self) -> bool:
        return bool(self.ahead)

    def settle(self) -> list[T]:
        """After a complete resume: a hole that the replay did not fill is gone for good (past
        retention), so release what waited above it, in order."""
        ready = [self.ahead[seq] for seq in sorted(self.ahead)]
        if self.ahead:
            self.last = max(self.ahead)
            self.ahead.clear()
        return ready
