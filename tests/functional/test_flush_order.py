"""The order in which app.py's middleware flushes the per-invocation buffers, checked by what each
flush leaves for the ones after it: the audit's activity joins the realtime events waiting for the
end, and the metrics count the audit's writes and the realtime flush's posts."""

from __future__ import annotations

import json
from typing import Any

import pytest

from chalicelib import audit, runtime
from chalicelib.realtime import emitters, live, rooms, store
from chalicelib.realtime import sender as sender_module
from tests.functional.ws_support import FakeManagement


@pytest.fixture
def management(aws_mock, monkeypatch: pytest.MonkeyPatch) -> FakeManagement:
    fake = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: fake)
    return fake


@pytest.fixture
def reservations(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    found: list[tuple[str, int]] = []
    reserve = store.EventLog.reserve

    def counted(self: store.EventLog, room: str, count: int = 1) -> Any:
        found.append((room, count))
        return reserve(self, room, count)

    monkeypatch.setattr(store.EventLog, "reserve", counted)
    return found


def _emf(out: str) -> dict[str, float]:
    """Metric name -> value of the EMF documents written to stdout."""
    found: dict[str, float] = {}
    for line in out.splitlines():
        if line.startswith('{"_aws"'):
            doc = json.loads(line)
            for metric in doc["_aws"]["CloudWatchMetrics"][0]["Metrics"]:
                found[metric["Name"]] = found.get(metric["Name"], 0) + doc[metric["Name"]]
    return found


def test_each_end_flush_leaves_its_work_to_the_buffers_after_it(management, reservations, capsys, logged_errors):
    import app

    # GIVEN an admin room that has a counter and, while the invocation runs, nobody in it
    admin = {"id": "admin-1", "email": "admin@example.com", "role": "admin", "jti": "j"}
    live.connections().open("gone", admin, [rooms.ADMIN], "https://gw/api")
    live.connections().close("gone")
    reservations.clear()

    def handler() -> None:
        emitters.emit_system_alert("info", "stored at once")  # reads the room: nobody in it
        emitters.emit_system_alert("info", "waits for the end")
        audit.record("queue.pause", resource=("queue", "emails"))  # critical: written at once
        audit.record("article.create", resource=("article", "a" * 32))  # buffered for the end
        live.connections().open("late", admin, [rooms.ADMIN], "https://gw/api")  # joins meanwhile

    # WHEN the invocation runs as app.py's middleware runs every handler
    app.middleware.run(runtime.Invocation(kind="sqs", request_id="r"), handler)

    # THEN the audit flush came first: its `activity` waited with the alert, one reservation for all
    assert reservations == [(rooms.ADMIN, 1), (rooms.ADMIN, 3)]
    heard = [(f["seq"], f["type"]) for f in management.take("late")]
    assert heard == [(2, "system.alert"), (3, "activity"), (4, "activity")]
    # AND the metrics came last: they count both audit writes and the realtime flush's posts
    counted = _emf(capsys.readouterr().out)
    assert counted["AuditWrites"] == 2
    assert counted["WebSocketPosts"] == 3
    # AND no buffer was written after its flush
    assert logged_errors == []


def test_app_flushes_every_buffer_once_in_its_declared_order():
    import app
    from chalicelib.audit import logger
    from chalicelib.jobs import timeline
    from chalicelib.observe import metrics
    from chalicelib.realtime import delivery

    assert app.middleware.buffers == (logger.BUFFER, delivery.WAITING, timeline.BUFFER, metrics.BUFFER)
