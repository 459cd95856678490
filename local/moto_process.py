"""The embedded moto server in a process of its own (`python -m local.moto_process PORT`).

It prints the port it listens on (or `error <errno> <message>`) as its first line, and exits
when its parent is gone. Running moto apart from the app, the gateways and the pollers lets the
two share the machine's cores instead of one interpreter lock (`make bench`: `bench_load`).
SQS queues never deliver to mapped functions themselves (moto would run them through Docker
inside SendMessage, consuming messages): the stack's pollers are the delivery path, as Lambda's
own pollers are on AWS; the mappings stay readable and updatable through the API.
"""

from __future__ import annotations

import errno
import os
import sys
import time
from typing import Any


class _NoDelivery(dict[str, Any]):
    def __setitem__(self, key: str, value: Any) -> None:
        pass  # a mapping never attaches to the queue


def _detach_delivery() -> None:
    from moto.sqs import models

    init = models.Queue.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: N807
        init(self, *args, **kwargs)
        self.lambda_event_source_mappings = _NoDelivery()

    models.Queue.__init__ = __init__  # type: ignore[method-assign]


def main(port: int) -> None:
    from moto.server import ThreadedMotoServer

    _detach_delivery()
    parent = os.getppid()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    failed: list[BaseException] = []
    entry = server._server_entry

    def guarded() -> None:
        try:
            entry()
        except BaseException as exc:  # werkzeug exits when the port is taken
            failed.append(exc)
            server._server_ready_event.set()

    server._server_entry = guarded  # type: ignore[method-assign]
    server.start()
    if failed:
        code = errno.EADDRINUSE if isinstance(failed[0], SystemExit) else 0
        print(f"error {code} {failed[0]!r}", flush=True)
        sys.exit(2)
    print(server.get_host_and_port()[1], flush=True)
    while os.getppid() == parent:
        time.sleep(0.5)
    os._exit(0)


if __name__ == "__main__":
    main(int(sys.argv[1]))
