"""Exponential backoff with jitter, from SQS's `ApproximateReceiveCount`.

Pure: the worker turns the delay into a `ChangeMessageVisibility` on the failed record, so the
queue itself holds the message back; nothing sleeps. The delay after the n-th delivery is
`base * 2**(n-1)` seconds (about 2 s, then 4 s with the default base) times a jitter factor in
[1 - JITTER, 1 + JITTER], rounded to the whole seconds SQS accepts. With JITTER = 0.25 the gaps
still always grow: the n-th lies in [0.75, 1.25] * base * 2**(n-1), which ends before the (n+1)-th
begins.
"""

from __future__ import annotations

import random
from collections.abc import Callable

JITTER = 0.25
MAX_DELAY = 15 * 60  # beyond this a job is better off failing and being retried by an admin


def delay(receive_count: int, base: float = 2.0, rng: Callable[[], float] = random.random) -> int:
    """Seconds to hide a message that failed on its `receive_count`-th delivery (>= 1)."""
    n = max(1, receive_count)
    factor = 1 + JITTER * (2 * rng() - 1)
    return max(1, min(MAX_DELAY, round(base * 2 ** (n - 1) * factor)))
