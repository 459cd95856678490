"""Exponential backoff with jitter, from SQS's `ApproximateReceiveCount`.

Pure: the worker turns the delay into a `ChangeMessageVisibility` on the failed record, so the
queue itself holds the message back; nothing sleeps. The delay after the n-th delivery is
`base * 2**(n-1)` seconds (2 s, then 4 s with the default base) times a jitter factor in
[1, 1 + JITTER), rounded to the whole seconds SQS accepts. The jitter only adds, so that the
gaps grow by at least a second or two whatever the draw (the n-th ends, at 1.25x, before the
(n+1)-th begins, at 2x): retries of jobs that failed together spread out, and a client watching
sees "about 2 s, then about 4 s" even through a poller's latency.
"""

from __future__ import annotations

import random
from collections.abc import Callable

JITTER = 0.25
MAX_DELAY = 15 * 60  # beyond this a job is better off failing and being retried by an admin


def delay(receive_count: int, base: float = 2.0, rng: Callable[[], float] = random.random) -> int:
    """Seconds to hide a message that failed on its `receive_count`-th delivery (>= 1)."""
    n = max(1, receive_count)
    factor = 1 + JITTER * rng()
    return max(1, min(MAX_DELAY, round(base * 2 ** (n - 1) * factor)))
