"""Threads that are reused, as Lambda reuses a warm container and its clients.

`Workers.submit(fn)` runs `fn` on an idle worker thread, or on a new one when none is idle: never
more waiting than a thread per call, as with a thread per call, but a thread (and what it keeps
in thread-local storage: the app's DynamoDB resource, built in tens of milliseconds) outlives the
call. The HTTP servers run each connection this way, the SQS pollers each invocation.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable

from local import logs


class Workers:
    def __init__(self, name: str) -> None:
        self._name = name
        self._calls: queue.SimpleQueue[Callable[[], None]] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._idle = 0
        self.threads = 0

    def submit(self, call: Callable[[], None]) -> None:
        with self._lock:
            spawn = self._idle == 0
            if spawn:
                self.threads += 1
            else:
                self._idle -= 1
        self._calls.put(call)
        if spawn:
            threading.Thread(target=self._work, name=f"{self._name}-{self.threads}", daemon=True).start()

    def _work(self) -> None:
        while True:
            call = self._calls.get()
            try:
                call()
            except Exception:
                logs.log.exception("%s: a call failed", self._name)
            with self._lock:
                self._idle += 1
