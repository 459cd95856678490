"""The embedded moto server in a process of its own (`python -m local.moto_process PORT`).

It prints the port it listens on (or `error <errno> <message>`) as its first line, and exits
when its parent is gone. Running moto apart from the app, the gateways and the pollers lets the
two share the machine's cores instead of one interpreter lock (`make bench`: `bench_load`).
SQS queues never deliver to mapped functions themselves (moto would run them through Docker
inside SendMessage, consuming messages): the stack's pollers are the delivery path, as Lambda's
own pollers are on AWS; the mappings stay readable and updatable through the API. DynamoDB
requests are served one at a time (`serialize_dynamodb`).
"""

from __future__ import annotations

import errno
import logging
import os
import re
import sys
import time
from typing import Any

from local import fair_sqs, moto_transactions

# Signed requests of these services go to one backend per (region, service, X-Amz-Target prefix)
# whatever their path: the dispatcher's answer is kept instead of worked out again under its lock.
_CACHED_SERVICES = frozenset({"dynamodb", "sqs", "lambda", "events", "iam", "sts", "ssm", "logs", "monitoring"})
_SCOPE = re.compile(r"Credential=[^/]+/\d{8}/([^/]+)/([^/]+)/aws4_request")


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


def serialize_dynamodb(assign: Any = setattr) -> None:
    """One DynamoDB request at a time, as AWS applies each atomically. moto's TransactWriteItems
    deep-copies each table it touches (to roll back) while other threads of the server change it
    ("dictionary changed size during iteration", a 500), and a rollback would put back a copy
    without their writes. moto's work holds the interpreter lock anyway: what stays concurrent
    is reading requests and writing answers."""
    import functools
    import threading

    from moto.dynamodb.responses import DynamoHandler

    lock = threading.Lock()
    call_action = DynamoHandler.call_action

    @functools.wraps(call_action)
    def one_at_a_time(self: Any) -> Any:
        with lock:
            return call_action(self)

    assign(DynamoHandler, "call_action", one_at_a_time)


def _cache_dispatch() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    find = DomainDispatcherApplication.get_application
    found: dict[tuple[str, str, str], Any] = {}

    def get_application(self: Any, environ: dict[str, Any]) -> Any:
        scope = _SCOPE.search(environ.get("HTTP_AUTHORIZATION", ""))
        path = environ.get("PATH_INFO", "")
        if not scope or scope[2] not in _CACHED_SERVICES or path.startswith(("/moto-api", "/latest/")):
            return find(self, environ)
        key = (scope[1], scope[2], environ.get("HTTP_X_AMZ_TARGET", "").split(".")[0])
        if key not in found:
            found[key] = find(self, environ)
        return found[key]

    DomainDispatcherApplication.get_application = get_application  # type: ignore[method-assign]


def _keep_alive() -> None:
    """Keep HTTP connections open between requests. werkzeug closes every connection after its
    response (`Connection: close`), because http.server cannot skip a request body the app left
    unread; so every AWS call opened a TCP connection, and moto's server a thread for it. Here a
    request's body is a stream limited to its Content-Length, drained after the response, and the
    connection stays open (a chunked body still closes it): botocore's pooled connections then
    serve call after call, as AWS's endpoints do. werkzeug's own drain after each response (it
    reads whatever the socket holds next, which on a kept connection is the next request) finds
    nothing to read."""
    from werkzeug import serving
    from werkzeug.serving import WSGIRequestHandler
    from werkzeug.wsgi import LimitedStream

    class _NothingToDrain:
        EVENT_READ = 1

        class DefaultSelector:
            def register(self, *args: Any) -> None: ...

            def select(self, timeout: float | None = None) -> list[Any]:
                return []

            def close(self) -> None: ...

    serving.selectors = _NothingToDrain  # type: ignore[assignment]  # its one use: that drain

    make_environ, run_wsgi, send_header = (
        WSGIRequestHandler.make_environ,
        WSGIRequestHandler.run_wsgi,
        WSGIRequestHandler.send_header,
    )

    def make_environ_limited(self: Any) -> Any:
        environ = make_environ(self)
        self.inkwell_body = None
        if not environ.get("wsgi.input_terminated"):  # not chunked
            try:
                length = int(environ.get("CONTENT_LENGTH") or 0)
            except ValueError:
                return environ
            self.inkwell_body = environ["wsgi.input"] = LimitedStream(self.rfile, max(0, length))
        return environ

    def run_wsgi_drained(self: Any) -> None:
        run_wsgi(self)
        body = getattr(self, "inkwell_body", None)
        if body is None:
            self.close_connection = True
        else:
            body.exhaust()  # what the app left unread, so the next request line is where it belongs

    def send_header_kept(self: Any, keyword: str, value: str) -> None:
        if keyword.lower() == "connection" and value.lower() == "close" and getattr(self, "inkwell_body", None):
            return
        send_header(self, keyword, value)

    WSGIRequestHandler.make_environ = make_environ_limited  # type: ignore[method-assign]
    WSGIRequestHandler.run_wsgi = run_wsgi_drained  # type: ignore[method-assign]
    WSGIRequestHandler.send_header = send_header_kept  # type: ignore[method-assign]


def main(port: int) -> None:
    from moto.server import ThreadedMotoServer
    from werkzeug.serving import WSGIRequestHandler

    # werkzeug sends a response's headers and body in separate writes: with Nagle's algorithm on,
    # the body waits for the client's delayed ACK of the headers (~40 ms on Linux) on every call.
    WSGIRequestHandler.disable_nagle_algorithm = True

    for noisy in ("werkzeug", "moto"):  # werkzeug would log every request (a fifth of the time)
        logging.getLogger(noisy).setLevel(logging.ERROR)
    _detach_delivery()
    serialize_dynamodb()
    fair_sqs.install()  # SQS fair queues (MessageGroupId on a standard queue), which moto lacks
    moto_transactions.install()  # TransactWriteItems without copying whole tables, which moto does
    _cache_dispatch()
    _keep_alive()
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
