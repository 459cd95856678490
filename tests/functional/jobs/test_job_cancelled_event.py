"""A cancelled job is announced: one `JobEvent("cancelled")` when the cancel wins, delivered as
`job.cancelled` to the job's rooms (admins, and the user who caused it) like `job.completed`."""

from __future__ import annotations

from typing import Any

import pytest

from chalicelib.jobs import enqueue, service
from chalicelib.realtime import live
from chalicelib.realtime import sender as sender_module
from tests.conftest import body
from tests.functional.ws_support import FakeManagement


@pytest.fixture
def management(aws_mock: None, monkeypatch: pytest.MonkeyPatch) -> FakeManagement:
    fake = FakeManagement()
    monkeypatch.setattr(sender_module, "management_client", lambda url: fake)
    return fake


def join(connection_id: str, room: str, user_id: str, role: str = "editor") -> None:
    user = {"id": user_id, "email": f"{user_id}@example.com", "role": role, "jti": "jti"}
    live.connections().open(connection_id, user, [room], "https://gw/api")


def job_frames(management: FakeManagement, connection_id: str) -> list[tuple[str, dict[str, Any]]]:
    return [(f["type"], f["data"]) for f in management.take(connection_id) if f["type"].startswith("job.")]


def test_a_cancelled_generation_is_announced_to_admins_and_its_author_once(
    api, poller, generator, clock, job_events, management
):
    # GIVEN an editor's delayed generation, the editor, another editor and an admin connected
    api.token("admin")
    editor, other = api.user("editor")["id"], api.user("editor-2")["id"]
    article = body(api.post("/api/articles", {"title": "Tides", "topic": "How tides work"}, as_="editor"))
    job_id = body(api.post(f"/api/articles/{article['id']}/generate", {"delay_seconds": 1200}, as_="editor"))["job_id"]
    join("author", f"user:{editor}", editor)
    join("other", f"user:{other}", other)
    join("admin", "admin", "admin-1", role="admin")
    # WHEN the editor cancels it, and its message arrives later
    assert api.post(f"/api/jobs/{job_id}/cancel", as_="editor").status_code == 200
    clock.advance(1300)
    poller.drain("articles")
    # THEN one cancelled event was published, with the job as cancelled
    assert [(e.kind, e.job["id"], e.job["state"]) for e in job_events] == [("cancelled", job_id, "cancelled")]
    # AND the author and the admins heard `job.cancelled` once, nobody else did
    announced = {"job_id": job_id, "queue": "articles", "attempts": 0}
    assert job_frames(management, "author") == [("job.cancelled", announced)]
    assert job_frames(management, "admin") == [("job.cancelled", announced)]
    assert job_frames(management, "other") == []
    assert generator.requests == []


def test_a_job_nobody_caused_is_announced_to_admins(clock, job_events, management):
    join("admin", "admin", "admin-1", role="admin")
    job = enqueue("emails", "send", {"to": "x"}, delay_seconds=600)
    service.cancel(job["id"])
    assert [e.kind for e in job_events] == ["cancelled"]
    assert job_frames(management, "admin") == [
        ("job.cancelled", {"job_id": job["id"], "queue": "emails", "attempts": 0})
    ]


def test_a_refused_cancel_announces_nothing(poller, register, clock, job_events, management):
    register("emails", "send", lambda job, ctx: {})
    job = enqueue("emails", "send", {})
    poller.run_once("emails")
    with pytest.raises(service.errors.JobStateRefused):
        service.cancel(job["id"])
    assert "cancelled" not in [e.kind for e in job_events]
