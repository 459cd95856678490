"""What a real-time client must remember to lose nothing and repeat nothing: per room, the seqs
it has delivered; and how long to wait before reconnecting. Pure (no I/O), unit-tested.

A `RoomCursor` delivers each seq of a room at most once. Everything up to `last` is delivered;
seqs that arrived early (a concurrent emitter's event overtook an earlier one) wait in `ahead`
until the hole below them fills. On reconnect the client resumes the room after `last`, so a
hole is filled by the replay and the early arrivals are not delivered twice.
"""

from __future__ import annotations

BACKOFF_FIRST = 1.0
BACKOFF_CAP = 30.0


def backoff_delay(attempt: int, rand: float, first: float = BACKOFF_FIRST, cap: float = BACKOFF_CAP) -> float:
    """Seconds to wait before reconnect attempt `attempt` (0-based): exponential from `first`,
    capped at `cap`, with "equal jitter" (between half and all of it, never below `first`), so
    that clients dropped together do not come back together. `rand` is uniform in [0, 1)."""
    ceiling = min(cap, first * 2 ** min(attempt, 32))
    return max(first, ceiling / 2 + rand * ceiling / 2)


class RoomCursor:
    def __init__(self, last: int = 0) -> None:
        self.last = last
        self.ahead: set[int] = set()

    def accept(self, seq: int) -> bool:
        """True when `seq` is new (deliver it), False for a duplicate."""
        if seq <= self.last or seq in self.ahead:
            return False
        if seq == self.last + 1:
            self.last = seq
            while self.last + 1 in self.ahead:
                self.ahead.remove(self.last + 1)
                self.last += 1
        else:
            self.ahead.add(seq)
        return True

    @property
    def has_gap(self) -> bool:
        return bool(self.ahead)

    def settle(self) -> None:
        """After a complete resume: a hole that the replay did not fill is gone for good (past
        retention), so stop waiting for it."""
        if self.ahead:
            self.last = max(self.ahead)
            self.ahead.clear()
